// Package backoff computes exponential retry delays with jitter.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy describes an exponential backoff: the n-th retry (n starting at 1)
// waits Initial*Multiplier^(n-1), capped at Max, with ±Jitter (a fraction in
// [0,1]) applied at random.
type Policy struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     float64
}

// Delay returns the wait before retry number n (n >= 1).
func (p Policy) Delay(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := float64(p.Initial)
	mult := p.Multiplier
	if mult < 1 {
		mult = 1
	}
	for i := 1; i < n && d < float64(p.Max); i++ {
		d *= mult
	}
	if p.Max > 0 && d > float64(p.Max) {
		d = float64(p.Max)
	}
	if p.Jitter > 0 {
		// Uniform in [d*(1-j), d*(1+j)].
		d = d * (1 - p.Jitter + 2*p.Jitter*rand.Float64())
	}
	if d < 0 {
		d = 0
	}
	return time.Duration(d)
}
