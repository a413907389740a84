package mq

import (
	"context"
	"sync"
	"time"

	"github.com/mqkit/mq/internal/partition"
	"github.com/segmentio/kafka-go"
)

// laneSet runs a partition's messages in several ordered lanes.
type laneSet[T any] struct {
	proc  *processor[T]
	ps    *partitionState
	chans []chan *kafka.Message
	wg    sync.WaitGroup
}

func startLanes[T any](proc *processor[T], ps *partitionState, n int) *laneSet[T] {
	ls := &laneSet[T]{proc: proc, ps: ps, chans: make([]chan *kafka.Message, n)}
	for i := range ls.chans {
		ch := make(chan *kafka.Message, 8)
		ls.chans[i] = ch
		ls.wg.Add(1)
		go ls.run(ch)
	}
	return ls
}

func (ls *laneSet[T]) run(ch <-chan *kafka.Message) {
	defer ls.wg.Done()
	stopped := false
	for m := range ch {
		if stopped || ls.proc.soft.Err() != nil {
			stopped = true
			continue // drain: nothing past a stop is processed or committed
		}
		if !ls.proc.process(m) {
			stopped = true // failed for good or stopping: it stays uncommitted
			continue
		}
		ls.ps.tracker.Done(m.Offset)
		ls.ps.lastProgress.Store(time.Now().UnixNano())
	}
}

// dispatch hands m to its lane, waiting while the lane is full. It reports
// false when ctx ended first.
func (ls *laneSet[T]) dispatch(ctx context.Context, m *kafka.Message) bool {
	var i int
	if m.Key != nil {
		i = int(uint32(partition.Murmur2(m.Key)) % uint32(len(ls.chans)))
	} else {
		i = int(m.Offset % int64(len(ls.chans)))
	}
	select {
	case ls.chans[i] <- m:
		return true
	case <-ctx.Done():
		return false
	}
}

// stop closes the lanes and waits for their in-flight messages.
func (ls *laneSet[T]) stop() {
	for _, ch := range ls.chans {
		close(ch)
	}
	ls.wg.Wait()
}
