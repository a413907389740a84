package backoff

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDelayGrowsAndCaps(t *testing.T) {
	p := Policy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Multiplier: 2}
	assert.Equal(t, 10*time.Millisecond, p.Delay(1))
	assert.Equal(t, 20*time.Millisecond, p.Delay(2))
	assert.Equal(t, 40*time.Millisecond, p.Delay(3))
	assert.Equal(t, 100*time.Millisecond, p.Delay(10))
	assert.Equal(t, 100*time.Millisecond, p.Delay(1000), "must not overflow")
	assert.Equal(t, 10*time.Millisecond, p.Delay(0))
}

func TestJitterStaysInBounds(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.2}
	seen := map[time.Duration]bool{}
	for i := 0; i < 1000; i++ {
		d := p.Delay(2)
		assert.GreaterOrEqual(t, d, 160*time.Millisecond)
		assert.LessOrEqual(t, d, 240*time.Millisecond)
		seen[d] = true
	}
	assert.Greater(t, len(seen), 10, "jitter should spread delays")
}
