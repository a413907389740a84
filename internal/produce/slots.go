package produce

import (
	"context"
	"sync"
	"sync/atomic"
)

// slots bounds the records buffered or in flight (Config.MaxBuffered).
// Taking a slot is one atomic operation while slots are free, and the
// engine frees the slots of a whole batch at once: a channel used as a
// semaphore cost two channel operations per record, contended between the
// producing goroutines and the engine's.
type slots struct {
	max     int64
	used    atomic.Int64
	waiting atomic.Int64 // goroutines blocked in acquire

	mu   sync.Mutex
	free chan struct{} // closed (and replaced) when slots are freed while someone waits
}

func newSlots(max int) *slots {
	return &slots{max: int64(max), free: make(chan struct{})}
}

// tryAcquire takes a slot if one is free.
func (s *slots) tryAcquire() bool {
	for {
		n := s.used.Load()
		if n >= s.max {
			return false
		}
		if s.used.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// acquire takes a slot, waiting for one until ctx ends (its error) or
// closing is closed (ErrClosed).
func (s *slots) acquire(ctx context.Context, closing <-chan struct{}) error {
	if s.tryAcquire() {
		return nil
	}
	for {
		s.mu.Lock()
		free := s.free
		s.mu.Unlock()
		// Counted as waiting before looking again: a release either sees
		// the waiter or frees the slot this look finds (both atomics are
		// sequentially consistent), so no wake-up is lost.
		s.waiting.Add(1)
		if s.tryAcquire() {
			s.waiting.Add(-1)
			return nil
		}
		select {
		case <-free:
			s.waiting.Add(-1)
			if s.tryAcquire() {
				return nil
			}
		case <-ctx.Done():
			s.waiting.Add(-1)
			return ctx.Err()
		case <-closing:
			s.waiting.Add(-1)
			return ErrClosed
		}
	}
}

// release frees n slots and wakes the goroutines waiting for one.
func (s *slots) release(n int) {
	if n <= 0 {
		return
	}
	s.used.Add(-int64(n))
	if s.waiting.Load() > 0 {
		s.mu.Lock()
		close(s.free)
		s.free = make(chan struct{})
		s.mu.Unlock()
	}
}
