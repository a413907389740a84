package check

import (
	"cmp"
	"container/heap"
	"slices"
	"time"
)

// Stall is the longest time one partition had work and made no progress.
type Stall struct {
	Partition int
	Duration  time.Duration
	From, To  int64 // unix nanos: when the stall began and when it ended
}

// PartitionStalls returns, per partition, its longest stall, computed from
// the producer's acknowledgements and the consumers' handled records:
//
//   - A partition has work at instant t when one of its acknowledged
//     records (an A line, at the time the producer saw the ack) has not been
//     handled by t. A record handled before its ack was seen is never work.
//   - It makes progress at every first handling of one of its records (the
//     first H line for that offset, by any consumer process). Redeliveries are
//     not progress.
//   - Its stall at t is t minus the latest of: its last progress before t,
//     the ack time of its oldest pending record, and the start of observation
//     (the first handling of any record, so that the consumer's start-up is
//     not a stall).
//
// A record never handled counts as pending until end (unix nanos). Partitions
// that never had work are absent.
func PartitionStalls(producer []ProducerLine, lifetimes []Lifetime, end int64) map[int]Stall {
	type po struct {
		p int
		o int64
	}
	first := make(map[po]int64) // first handling of each offset
	obsStart := int64(-1)
	for _, lt := range lifetimes {
		for _, ev := range lt.Events {
			if ev.Type != EvHandled {
				continue
			}
			k := po{ev.H.Partition, ev.H.Offset}
			if t, ok := first[k]; !ok || ev.Time < t {
				first[k] = ev.Time
			}
			if obsStart < 0 || ev.Time < obsStart {
				obsStart = ev.Time
			}
		}
	}
	if obsStart < 0 {
		return map[int]Stall{}
	}
	acks := make(map[int][]pending)
	for _, l := range producer {
		if l.Tag == 'A' {
			acks[l.Partition] = append(acks[l.Partition], pending{at: l.Time, off: l.Offset})
		}
	}
	handles := make(map[int][]pending)
	for k, t := range first {
		handles[k.p] = append(handles[k.p], pending{at: t, off: k.o})
	}

	out := make(map[int]Stall)
	byTime := func(a, b pending) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.off, b.off)) }
	for p, as := range acks {
		slices.SortFunc(as, byTime)
		hs := handles[p]
		slices.SortFunc(hs, byTime)
		var best Stall
		var q pendingHeap
		next := 0
		last := obsStart // the latest progress so far
		// stallUntil accounts for the stall that ends at t.
		stallUntil := func(t int64) {
			for next < len(as) && as[next].at <= t {
				heap.Push(&q, as[next])
				next++
			}
			for q.Len() > 0 {
				if h, ok := first[po{p, q[0].off}]; ok && h < t {
					heap.Pop(&q) // handled before t: not pending
					continue
				}
				break
			}
			if q.Len() == 0 {
				return
			}
			from := max(last, q[0].at, obsStart)
			if d := time.Duration(t - from); d > best.Duration {
				best = Stall{Partition: p, Duration: d, From: from, To: t}
			}
		}
		for _, h := range hs {
			stallUntil(h.at)
			last = max(last, h.at)
		}
		stallUntil(end)
		best.Partition = p
		out[p] = best
	}
	return out
}

// MaxStall returns the longest of the stalls (zero when there are none).
func MaxStall(stalls map[int]Stall) Stall {
	var best Stall
	for _, s := range stalls {
		if s.Duration > best.Duration || (s.Duration == best.Duration && best.Duration > 0 && s.Partition < best.Partition) {
			best = s
		}
	}
	return best
}

// MaxSendLatency returns the producer line with the longest time from the
// send call to its outcome (acknowledged or failed; rejected sends have no
// outcome), and whether there was one.
func MaxSendLatency(producer []ProducerLine) (ProducerLine, bool) {
	var best ProducerLine
	found := false
	for _, l := range producer {
		if (l.Tag == 'A' || l.Tag == 'F') && (!found || l.LatencyUs > best.LatencyUs) {
			best, found = l, true
		}
	}
	return best, found
}

// pending is an acknowledged record (at: its ack time) or a first handling
// (at: its handling time).
type pending struct {
	at  int64
	off int64
}

// pendingHeap orders pending records by ack time (oldest first).
type pendingHeap []pending

func (h pendingHeap) Len() int { return len(h) }
func (h pendingHeap) Less(i, j int) bool {
	return h[i].at < h[j].at || (h[i].at == h[j].at && h[i].off < h[j].off)
}
func (h pendingHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pendingHeap) Push(x any)   { *h = append(*h, x.(pending)) }
func (h *pendingHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
