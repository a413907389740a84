package main

import (
	"bufio"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// result is one run of one system on one workload. Unknown figures are NaN.
type result struct {
	Msgs    int64   `json:"msgs"`
	Secs    float64 `json:"secs"`
	MsgsSec float64 `json:"msgs_sec"`
	MBSec   float64 `json:"mb_sec"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Allocs  float64 `json:"allocs_per_msg"`
	RSS     float64 `json:"rss_mib"`
	Wait    float64 `json:"wait_ms,omitempty"` // measured mean handler wait
	Note    string  `json:"note,omitempty"`

	// Workload h: Secs is from the consumer's start to the last record.
	FirstToLast float64 `json:"first_to_last_s"`
	Sockets     float64 `json:"sockets"`    // peak open sockets
	Goroutines  float64 `json:"goroutines"` // peak goroutines
}

func nan() float64 { return math.NaN() }

func newResult() result {
	return result{MsgsSec: nan(), MBSec: nan(), P50: nan(), P99: nan(), Allocs: nan(), RSS: nan(),
		FirstToLast: nan(), Sockets: nan(), Goroutines: nan()}
}

// jsonResult carries NaN through JSON as null.
type jsonResult struct {
	Msgs    int64    `json:"msgs"`
	Secs    float64  `json:"secs"`
	MsgsSec *float64 `json:"msgs_sec"`
	MBSec   *float64 `json:"mb_sec"`
	P50     *float64 `json:"p50_ms"`
	P99     *float64 `json:"p99_ms"`
	Allocs  *float64 `json:"allocs_per_msg"`
	RSS     *float64 `json:"rss_mib"`
	Wait    float64  `json:"wait_ms,omitempty"`
	Note    string   `json:"note,omitempty"`

	FirstToLast *float64 `json:"first_to_last_s,omitempty"`
	Sockets     *float64 `json:"sockets,omitempty"`
	Goroutines  *float64 `json:"goroutines,omitempty"`
}

func ptr(f float64) *float64 {
	if math.IsNaN(f) {
		return nil
	}
	return &f
}

func val(p *float64) float64 {
	if p == nil {
		return nan()
	}
	return *p
}

func (r result) toJSON() jsonResult {
	return jsonResult{r.Msgs, r.Secs, ptr(r.MsgsSec), ptr(r.MBSec), ptr(r.P50), ptr(r.P99), ptr(r.Allocs), ptr(r.RSS), r.Wait, r.Note,
		ptr(r.FirstToLast), ptr(r.Sockets), ptr(r.Goroutines)}
}

func (j jsonResult) toResult() result {
	return result{j.Msgs, j.Secs, val(j.MsgsSec), val(j.MBSec), val(j.P50), val(j.P99), val(j.Allocs), val(j.RSS), j.Wait, j.Note,
		val(j.FirstToLast), val(j.Sockets), val(j.Goroutines)}
}

// percentiles returns p50 and p99 in milliseconds.
func percentiles(lat []time.Duration) (p50, p99 float64) {
	if len(lat) == 0 {
		return nan(), nan()
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		i = max(0, min(i, len(s)-1))
		return float64(s[i]) / float64(time.Millisecond)
	}
	return q(0.50), q(0.99)
}

func median(xs []float64) float64 {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return nan()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// vmHWM reads a process's peak resident set size (VmHWM) in bytes.
func vmHWM(pid string) (int64, bool) {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fs := strings.Fields(v)
			if len(fs) >= 1 {
				kb, err := strconv.ParseInt(fs[0], 10, 64)
				if err == nil {
					return kb * 1024, true
				}
			}
		}
	}
	return 0, false
}

// allocMeter counts heap allocations between start and stop.
type allocMeter struct{ before uint64 }

func startAllocs() allocMeter {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return allocMeter{ms.Mallocs}
}

func (a allocMeter) perMsg(n int64) float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if n <= 0 {
		return nan()
	}
	return float64(ms.Mallocs-a.before) / float64(n)
}
