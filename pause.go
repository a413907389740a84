package mq

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqkit/mq/internal/fetch"
	"go.uber.org/zap"
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int
}

// compare orders partitions by topic, then partition number.
func (tp TopicPartition) compare(o TopicPartition) int {
	if d := strings.Compare(tp.Topic, o.Topic); d != 0 {
		return d
	}
	return cmp.Compare(tp.Partition, o.Partition)
}

// partitionControls is the consumer's pause and seek state, kept apart from
// any group generation: the paused set is applied to a partition whenever
// it starts (so a pause survives rebalances), and seeks asked for from the
// assigned hook wait for their partition to start.
type partitionControls struct {
	mu        sync.Mutex
	started   map[TopicPartition]*partitionState // the latest worker of each partition
	paused    map[TopicPartition]struct{}
	assigning map[TopicPartition]bool  // during the assigned hook: the partitions it was given
	seeks     map[TopicPartition]int64 // asked for in the assigned hook, for partitions not started yet
}

// Pause stops fetching the given partitions, or every partition the
// consumer owns when none is given. Work in flight finishes (the message,
// or batch, being handled, and the messages already queued in lanes); no
// other message of a paused partition is handed to a handler until it is
// resumed (a batch still gathering waits too). The consumer stays in its
// group and keeps its assignment, and commits what was handled. A paused
// partition stays paused until [KafkaConsumer.Resume], across rebalances
// too: a paused partition this member keeps, or gets back later, starts
// paused. Partitions the consumer does not own may be named: they start
// paused if they are assigned to it later (before Run, too). A paused
// partition is never stuck for the health checks, even when its in-flight
// handler hangs: [KafkaConsumer.Live] does not report it. Pause is safe
// for concurrent use.
func (c *KafkaConsumer[T]) Pause(partitions ...TopicPartition) {
	c.ctls.mu.Lock()
	defer c.ctls.mu.Unlock()
	parts := c.ownedLocked()
	if len(partitions) == 0 {
		for _, ps := range parts {
			partitions = append(partitions, TopicPartition{ps.topic, ps.id})
		}
	}
	if c.ctls.paused == nil {
		c.ctls.paused = make(map[TopicPartition]struct{})
	}
	for _, tp := range partitions {
		c.ctls.paused[tp] = struct{}{}
	}
	c.applyPausesLocked(parts)
}

// Resume resumes fetching and handling the given paused partitions, or
// every paused partition when none is given. They continue where they
// stopped: nothing fetched before the pause is lost or skipped. Resuming a
// partition that is not paused does nothing. Resume is safe for concurrent
// use.
func (c *KafkaConsumer[T]) Resume(partitions ...TopicPartition) {
	c.ctls.mu.Lock()
	defer c.ctls.mu.Unlock()
	if len(partitions) == 0 {
		clear(c.ctls.paused)
	}
	for _, tp := range partitions {
		delete(c.ctls.paused, tp)
	}
	c.applyPausesLocked(c.ownedLocked())
}

// Paused returns the paused partitions, sorted by topic and partition:
// those named by [KafkaConsumer.Pause] (or owned when it was called without
// arguments) and not resumed since, owned by the consumer or not.
func (c *KafkaConsumer[T]) Paused() []TopicPartition {
	c.ctls.mu.Lock()
	defer c.ctls.mu.Unlock()
	out := make([]TopicPartition, 0, len(c.ctls.paused))
	for tp := range c.ctls.paused {
		out = append(out, tp)
	}
	slices.SortFunc(out, TopicPartition.compare)
	return out
}

// Seek makes an owned partition continue at offset: the messages fetched
// and not yet handled are dropped (a message or batch being handled
// finishes first, its retries included, and with [WithLanes] so do the
// messages queued in the lanes), and the next message handed over is the
// one at offset (or, when offset is beyond the partition's range, where
// [WithStartOffset] says). The next commit for the partition commits
// offset, even backwards, so a restart continues from there too. Call it
// while the consumer owns the partition, from the [WithOnAssigned] hook
// for instance (a seek made there applies as the partition starts). It
// returns [ErrNotAssigned] for a partition the consumer does not own, and
// an error wrapping [ErrInvalidOption] for a negative offset. The seek
// happens asynchronously, in the partition's worker: if what was being
// handled (or queued in the lanes) fails for good and the recoverer stops
// the consumer ([StopRecoverer], the default), Run returns its
// [*HandlerError] and the seek is never applied, although Seek returned
// nil: nothing past the failed message is committed.
func (c *KafkaConsumer[T]) Seek(topic string, partition int, offset int64) error {
	if offset < 0 {
		return invalid("seek offset %d must be >= 0", offset)
	}
	tp := TopicPartition{topic, partition}
	c.ctls.mu.Lock()
	defer c.ctls.mu.Unlock()
	ps, assigning := c.ownerLocked(tp)
	if ps != nil {
		ps.ctl.requestSeek(offset)
		return nil
	}
	if assigning { // the assigned hook runs before the partition starts
		if c.ctls.seeks == nil {
			c.ctls.seeks = make(map[TopicPartition]int64)
		}
		c.ctls.seeks[tp] = offset
		return nil
	}
	return ErrNotAssigned
}

// workerDone reports whether the partition's worker ended.
func workerDone(ps *partitionState) bool {
	select {
	case <-ps.done:
		return true
	default:
		return false
	}
}

// SeekToTime makes an owned partition continue at the first message whose
// timestamp is at or after t, or at its end when there is none, as
// [KafkaConsumer.Seek] does; the offset is looked up with ListOffsets,
// under ctx. It returns [ErrNotAssigned] for a partition the consumer does
// not own.
func (c *KafkaConsumer[T]) SeekToTime(ctx context.Context, topic string, partition int, t time.Time) error {
	if !c.owns(topic, partition) {
		return ErrNotAssigned
	}
	a, err := newAdmin(c.brokers, []string{topic}, []AdminOption{WithClientID(c.cfg.clientID),
		WithDialTimeout(c.cfg.dialTimeout), WithTLS(c.cfg.tls), WithSASL(c.cfg.sasl), WithLogger(c.cfg.logger)})
	if err != nil {
		return err
	}
	defer a.close()
	if t.IsZero() {
		t = time.UnixMilli(0)
	}
	b, err := a.bounds(ctx, topic, []int{partition}, t)
	if err != nil {
		return err
	}
	return c.Seek(topic, partition, b[partition].atTime)
}

// owns reports whether the partition is assigned to the consumer, or being
// assigned (in the assigned hook).
func (c *KafkaConsumer[T]) owns(topic string, partition int) bool {
	c.ctls.mu.Lock()
	defer c.ctls.mu.Unlock()
	ps, assigning := c.ownerLocked(TopicPartition{topic, partition})
	return ps != nil || assigning
}

// ownerLocked returns the running worker of tp, if any, and whether tp is
// being assigned (in the assigned hook). c.ctls.mu is held.
func (c *KafkaConsumer[T]) ownerLocked(tp TopicPartition) (*partitionState, bool) {
	if ps := c.ctls.started[tp]; ps != nil && !workerDone(ps) {
		return ps, false
	}
	return nil, c.ctls.assigning[tp]
}

// wrapAssignedHook makes the assigned hook record which partitions it is
// given, so that a Seek made in it waits for them to start.
func (c *KafkaConsumer[T]) wrapAssignedHook() {
	user := c.cfg.onAssigned
	if user == nil {
		return
	}
	c.cfg.onAssigned = func(assigned map[string][]int) {
		c.ctls.mu.Lock()
		clear(c.ctls.seeks) // of partitions an earlier assignment never started
		c.ctls.assigning = make(map[TopicPartition]bool)
		for topic, ids := range assigned {
			for _, id := range ids {
				c.ctls.assigning[TopicPartition{topic, id}] = true
			}
		}
		c.ctls.mu.Unlock()
		defer func() {
			c.ctls.mu.Lock()
			c.ctls.assigning = nil
			c.ctls.mu.Unlock()
		}()
		user(assigned)
	}
}

// ownedLocked returns the partitions whose workers run, in no particular
// order, forgetting those that ended. c.ctls.mu is held.
func (c *KafkaConsumer[T]) ownedLocked() []*partitionState {
	var out []*partitionState
	for tp, ps := range c.ctls.started {
		if workerDone(ps) {
			delete(c.ctls.started, tp)
			continue
		}
		out = append(out, ps)
	}
	return out
}

// applyPausesLocked pauses or resumes the running partitions as the paused
// set says. c.ctls.mu is held.
func (c *KafkaConsumer[T]) applyPausesLocked(parts []*partitionState) {
	for _, ps := range parts {
		_, paused := c.ctls.paused[TopicPartition{ps.topic, ps.id}]
		ps.ctl.setPaused(paused)
		if fp := ps.fp.Load(); fp != nil {
			fp.SetPaused(paused)
		}
	}
}

// startControls is called as a partition starts, with its fetch
// partition: it applies the paused set and a seek asked for in the
// assigned hook, and publishes fp.
func (c *KafkaConsumer[T]) startControls(ps *partitionState, fp *fetch.Partition) {
	c.ctls.mu.Lock()
	defer c.ctls.mu.Unlock()
	tp := TopicPartition{ps.topic, ps.id}
	if c.ctls.started == nil {
		c.ctls.started = make(map[TopicPartition]*partitionState)
	}
	c.ctls.started[tp] = ps
	_, paused := c.ctls.paused[tp]
	ps.ctl.setPaused(paused)
	fp.SetPaused(paused)
	if off, ok := c.ctls.seeks[tp]; ok {
		delete(c.ctls.seeks, tp)
		ps.ctl.requestSeek(off)
	}
	ps.fp.Store(fp)
}

// partitionControl carries pause and seek requests to a partition's
// worker. Its zero value is ready to use.
type partitionControl struct {
	pendingFlag atomic.Bool // a pause or a seek is pending: the worker must look

	mu        sync.Mutex
	paused    bool
	seek      bool
	seekTo    int64
	seekReq   uint64 // seek requests made
	applied   uint64 // seeks the worker applied
	changed   chan struct{}
	interrupt context.CancelFunc // ends the worker's wait for records
}

func (pc *partitionControl) setPaused(paused bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.paused == paused {
		return
	}
	pc.paused = paused
	pc.notifyLocked()
}

func (pc *partitionControl) isPaused() bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.paused
}

func (pc *partitionControl) requestSeek(offset int64) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.seek, pc.seekTo = true, offset
	pc.seekReq++
	pc.notifyLocked()
}

func (pc *partitionControl) notifyLocked() {
	pc.pendingFlag.Store(pc.paused || pc.seek)
	if pc.changed != nil {
		close(pc.changed)
		pc.changed = nil
	}
	if pc.interrupt != nil {
		pc.interrupt()
	}
}

// pending reports whether the worker has a pause or seek to look at.
func (pc *partitionControl) pending() bool { return pc.pendingFlag.Load() }

// seeks returns how many seeks the worker applied.
func (pc *partitionControl) seeks() uint64 {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.applied
}

// nextContext returns a context for the worker's wait for records, which
// a pause or seek request ends.
func (pc *partitionControl) nextContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	pc.mu.Lock()
	if pc.paused || pc.seek {
		cancel()
	} else {
		pc.interrupt = cancel
	}
	pc.mu.Unlock()
	return ctx, func() {
		pc.mu.Lock()
		pc.interrupt = nil
		pc.mu.Unlock()
		cancel()
	}
}

// control applies the pause and seek requests of a partition before its
// worker hands over the next message: a seek drops what is pending (drop)
// and moves the fetch position and the commit point; a pause waits for the
// resume, keeping what is pending (a batch not handed over yet stays
// gathered). It reports false when the worker must stop.
func (s *session[T]) control(soft context.Context, ps *partitionState, fp *fetch.Partition, drop func()) bool {
	for soft.Err() == nil {
		ps.ctl.mu.Lock()
		paused, seek, off, req := ps.ctl.paused, ps.ctl.seek, ps.ctl.seekTo, ps.ctl.seekReq
		if ps.ctl.changed == nil {
			ps.ctl.changed = make(chan struct{})
		}
		changed := ps.ctl.changed
		ps.ctl.mu.Unlock()
		switch {
		case seek:
			drop()
			if soft.Err() != nil {
				// A message the lanes held failed for good (or the run is
				// stopping): the seek must not move the commit past it.
				return false
			}
			if err := fp.SeekTo(off); err != nil {
				return false // revoked: the worker is ending
			}
			ps.restartAt(off)
			ps.ctl.mu.Lock()
			if ps.ctl.seekReq == req {
				ps.ctl.seek = false
				ps.ctl.pendingFlag.Store(ps.ctl.paused)
			}
			ps.ctl.applied++
			ps.ctl.mu.Unlock()
			s.c.log.Info("partition sought", zap.String("topic", ps.topic), zap.Int("partition", ps.id), zap.Int64("offset", off))
		case paused:
			select {
			case <-changed:
			case <-soft.Done():
			}
			ps.lastProgress.Store(time.Now().UnixNano()) // a pause is no lack of progress
		default:
			return true
		}
	}
	return false
}
