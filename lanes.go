package mq

import (
	"context"
	"sync"
)

// laneSet runs a partition's messages in several ordered lanes.
type laneSet[T any] struct {
	proc  *processor[T]
	ps    *partitionState
	chans []chan inbound
	wg    sync.WaitGroup
}

// laneQueue is how many messages a partition's lanes buffer together ahead
// of their handlers.
const laneQueue = 1024

func startLanes[T any](proc *processor[T], ps *partitionState, n int) *laneSet[T] {
	ls := &laneSet[T]{proc: proc, ps: ps, chans: make([]chan inbound, n)}
	// Each lane buffers a share of the partition's queue, so that one busy
	// key does not stall the others at once (head-of-line blocking).
	buf := max(8, laneQueue/n)
	for i := range ls.chans {
		ch := make(chan inbound, buf)
		ls.chans[i] = ch
		ls.wg.Add(1)
		go ls.run(ch)
	}
	return ls
}

func (ls *laneSet[T]) run(ch <-chan inbound) {
	defer ls.wg.Done()
	stopped := false
	for m := range ch {
		// A graceful stop or a revoke still processes what was already
		// dispatched (bounded by the shutdown timeout, which cancels the
		// handlers' context): dropping it would make the commit point stop at
		// the first dropped message and redeliver everything other lanes
		// finished past it. A failure stops the lane.
		if stopped || ls.proc.hard.Err() != nil || ls.proc.s.fatalErr() != nil {
			stopped = true
			continue
		}
		if !ls.proc.process(m) {
			stopped = true // failed for good or stopping: it stays uncommitted
			continue
		}
		ls.ps.finish(m.rec.Offset)
	}
}

// dispatch hands m to its lane, waiting while the lane is full. It reports
// false when ctx ended first.
func (ls *laneSet[T]) dispatch(ctx context.Context, m inbound) bool {
	var i int
	if m.rec.Key != nil {
		// Not murmur2: the partitioner already used it, so within one
		// partition murmur2(key) mod the partition count is fixed and would
		// leave most lanes idle.
		i = int(fnv1a(m.rec.Key) % uint32(len(ls.chans)))
	} else {
		i = int(m.rec.Offset % int64(len(ls.chans)))
	}
	select {
	case ls.chans[i] <- m:
		return true
	case <-ctx.Done():
		return false
	}
}

// fnv1a is the 32-bit FNV-1a hash.
func fnv1a(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// stop closes the lanes and waits for their in-flight messages.
func (ls *laneSet[T]) stop() {
	for _, ch := range ls.chans {
		close(ch)
	}
	ls.wg.Wait()
}
