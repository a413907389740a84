package mq

import (
	"context"
	"sync"
	"time"
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
		if proc.s.batching() {
			go ls.runBatches(ch)
		} else {
			go ls.run(ch)
		}
	}
	return ls
}

// runBatches is run for consumers with batch handlers: each lane hands its
// messages over in batches (the messages of a batch are in order but, the
// lanes sharing the partition, not consecutive offsets).
func (ls *laneSet[T]) runBatches(ch <-chan inbound) {
	defer ls.wg.Done()
	cfg := &ls.proc.s.c.cfg
	var batch []inbound
	var buf batchBuf[T] // reused by processBatch
	var carry *inbound  // received, but over the byte cap of the batch before
	stopped, closed := false, false
	for !closed || carry != nil {
		var first inbound
		if carry != nil {
			first, carry = *carry, nil
		} else {
			m, ok := <-ch
			if !ok {
				return
			}
			first = m
		}
		batch = append(batch[:0], first)
		bytes := first.size()
		var timer *time.Timer
		var linger <-chan time.Time
		if cfg.batchLinger > 0 {
			timer = time.NewTimer(cfg.batchLinger)
			linger = timer.C
		}
		for !closed && !cfg.batchFull(len(batch), bytes) {
			var next inbound
			var ok, got bool
			select {
			case next, ok = <-ch:
				got = true
			default:
				if linger != nil {
					select {
					case next, ok = <-ch:
						got = true
					case <-linger:
					}
				}
			}
			if !got {
				break
			}
			if !ok {
				closed = true // handle what was gathered, then stop
				break
			}
			size := next.size()
			if cfg.batchOverflows(len(batch), bytes, size) {
				carry = &next
				break
			}
			batch = append(batch, next)
			bytes += size
		}
		if timer != nil {
			timer.Stop()
		}
		// As in run: what was dispatched is handled unless the consumer
		// failed or the shutdown timeout passed.
		if stopped || ls.proc.hard.Err() != nil || ls.proc.s.fatalErr() != nil {
			stopped = true
			continue
		}
		if !ls.proc.processBatch(batch, &buf) {
			stopped = true
		}
		clear(batch)
	}
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
