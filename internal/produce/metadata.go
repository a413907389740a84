package produce

import (
	"errors"
	"fmt"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// metaState schedules metadata refreshes. Guarded by Engine.mu.
type metaState struct {
	want     bool      // something needs fresh metadata
	running  bool      // a fetch is under way
	last     time.Time // when the last fetch ended
	failures int       // fetches in a row that failed or left something unresolved
	err      error     // the last fetch's error
}

const (
	// metaMinInterval spaces the refreshes that errors ask for.
	metaMinInterval = 50 * time.Millisecond
	// missingConfirm is how long metadata must keep saying a topic does not
	// exist before its records fail: a topic being created is unknown to
	// some brokers for a moment.
	missingConfirm = 500 * time.Millisecond
)

// loop runs the engine's housekeeping: delivery timeouts, metadata
// refreshes and the producer ID.
func (e *Engine) loop() {
	defer e.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		e.mu.Lock()
		done, wake, next := e.expire(now)
		next = earliest(next, e.scheduleMetadata(now))
		next = earliest(next, e.scheduleProducerID(now))
		e.mu.Unlock()
		e.report(done)
		for _, s := range wake {
			s.signal()
		}

		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		var tc <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			tc = timer.C
		}
		select {
		case <-e.wake:
		case <-tc:
		case <-e.ctx.Done():
			return
		}
	}
}

// expire fails the records whose delivery deadline passed and returns the
// next deadline. e.mu must be held.
func (e *Engine) expire(now time.Time) (done []finished, wake []*sink, next time.Time) {
	for _, t := range e.topics {
		k := 0
		for k < len(t.pending) && !now.Before(t.pending[k].deadline) {
			done = append(done, finished{t.pending[k], e.timeoutError(t.pending[k], t.name, -1, false, t.pendingError(e))})
			k++
		}
		if k > 0 {
			rest := copy(t.pending, t.pending[k:])
			clear(t.pending[rest:])
			t.pending = t.pending[:rest]
		}
		if len(t.pending) > 0 {
			next = earliest(next, t.pending[0].deadline)
		}
		for _, p := range t.parts {
			changed := false
			for i := 0; i < len(p.batches); i++ {
				b := p.batches[i]
				if b.expired {
					continue
				}
				if now.Before(b.deadline()) {
					next = earliest(next, b.deadline())
					continue
				}
				maybe := b.maybeWritten || b.inflight
				for _, r := range b.recs {
					done = append(done, finished{r, e.timeoutError(r, t.name, p.id, maybe, r.lastErr)})
				}
				b.expired = true
				if !b.inflight {
					e.dropBatch(b)
					i--
					changed = true
				}
			}
			k := 0
			for k < len(p.queue) && !now.Before(p.queue[k].deadline) {
				r := p.queue[k]
				done = append(done, finished{r, e.timeoutError(r, t.name, p.id, false, r.lastErr)})
				k++
			}
			if k > 0 {
				p.unqueue(k, now)
				changed = true
			}
			if len(p.queue) > 0 {
				next = earliest(next, p.queue[0].deadline)
			}
			if changed {
				p.settle(now)
				if p.sink != nil {
					wake = append(wake, p.sink)
				}
			}
		}
	}
	return done, wake, next
}

// timeoutError is the error of a record that reached its delivery
// deadline; maybe says an attempt may have written it.
func (e *Engine) timeoutError(r *Record, topic string, partition int32, maybe bool, last error) error {
	var err error
	if partition < 0 {
		err = fmt.Errorf("mq: delivery timeout after %v to topic %q", e.cfg.DeliveryTimeout, topic)
	} else {
		err = fmt.Errorf("mq: delivery timeout after %v to %s[%d]", e.cfg.DeliveryTimeout, topic, partition)
	}
	if maybe {
		err = fmt.Errorf("%w (it may have been written: its last attempt had no answer)", err)
	}
	if last != nil {
		err = fmt.Errorf("%w: last error: %w", err, last)
	}
	return err
}

// pendingError is why the topic's records are still waiting.
func (t *topic) pendingError(e *Engine) error {
	if t.err != nil {
		return t.err
	}
	return e.meta.err
}

// scheduleMetadata starts a metadata fetch when one is due and returns when
// the next one will be. e.mu must be held.
func (e *Engine) scheduleMetadata(now time.Time) time.Time {
	if e.meta.running || len(e.topics) == 0 {
		return time.Time{}
	}
	due := e.meta.last.Add(e.cfg.MetadataMaxAge)
	if e.meta.want {
		wait := metaMinInterval
		if e.meta.failures > 0 {
			wait = max(wait, e.backoff(e.meta.failures))
		}
		due = e.meta.last.Add(wait)
	}
	if now.Before(due) {
		return due
	}
	topics := make([]string, 0, len(e.topics))
	for name := range e.topics {
		topics = append(topics, name)
	}
	e.meta.running = true
	e.meta.want = false
	e.wg.Add(1)
	go e.fetchMetadata(topics)
	return time.Time{}
}

// fetchMetadata fetches the topics' metadata and applies it.
func (e *Engine) fetchMetadata(topics []string) {
	defer e.wg.Done()
	md, err := e.client.Metadata(e.ctx, topics)
	now := time.Now()

	e.mu.Lock()
	e.meta.running = false
	e.meta.last = now
	var (
		done []finished
		wake []*sink
	)
	switch {
	case e.ctx.Err() != nil:
	case err != nil:
		e.meta.err = err
		e.meta.failures++
		e.meta.want = true
		if e.cfg.Fatal(err) {
			for _, t := range e.topics {
				for _, r := range t.pending {
					done = append(done, finished{r, fmt.Errorf("mq: metadata for topic %q: %w", t.name, err)})
				}
				clear(t.pending)
				t.pending = t.pending[:0]
			}
		}
		e.log.Debug("metadata refresh failed", zap.Int("failures", e.meta.failures), zap.Error(err))
	default:
		e.meta.err = nil
		var unresolved bool
		done, wake, unresolved = e.applyMetadata(md, now)
		if unresolved {
			e.meta.failures++
			e.meta.want = true
		} else {
			e.meta.failures = 0
		}
	}
	e.mu.Unlock()
	e.report(done)
	for _, s := range wake {
		s.signal()
	}
	e.signal()
}

// applyMetadata updates brokers, leaders and partition counts, and routes
// the records waiting for them. unresolved reports something that needs
// another look soon (a partition without leader, a topic not there yet).
// e.mu must be held.
func (e *Engine) applyMetadata(md *wire.Metadata, now time.Time) (done []finished, wake []*sink, unresolved bool) {
	for id, b := range md.Brokers {
		e.brokers[id] = b.Addr
		if s := e.sinks[id]; s != nil && s.addr != b.Addr {
			s.addr = b.Addr
			wake = append(wake, s)
		}
	}
	for name, t := range e.topics {
		tm, ok := md.Topics[name]
		if !ok {
			unresolved = true
			continue
		}
		switch {
		case tm.Err == nil && len(tm.Partitions) > 0:
			t.err, t.missing, t.missingSince, t.confirmedMissing = nil, 0, time.Time{}, false
			if e.updatePartitions(t, tm, now, &wake) {
				unresolved = true
			}
			var still bool
			done, still = e.routePending(t, now, done, &wake)
			unresolved = unresolved || still
		case errors.Is(tm.Err, kafka.UnknownTopicOrPartition) || tm.Err == nil:
			t.err = fmt.Errorf("mq: topic %q does not exist (topics are never auto-created by mq): %w", name, kafka.UnknownTopicOrPartition)
			if t.missing == 0 {
				t.missingSince = now
			}
			t.missing++
			if t.parts == nil && (t.confirmedMissing || (t.missing >= 2 && now.Sub(t.missingSince) >= missingConfirm)) {
				t.confirmedMissing = true
				for _, r := range t.pending {
					done = append(done, finished{r, t.err})
				}
				clear(t.pending)
				t.pending = t.pending[:0]
			} else if len(t.pending) > 0 || t.parts != nil {
				unresolved = true
			}
		case transient(tm.Err):
			t.err = fmt.Errorf("mq: metadata for topic %q: %w", name, tm.Err)
			unresolved = true
		default:
			t.err = fmt.Errorf("mq: metadata for topic %q: %w", name, tm.Err)
			for _, r := range t.pending {
				done = append(done, finished{r, t.err})
			}
			clear(t.pending)
			t.pending = t.pending[:0]
		}
	}
	return done, wake, unresolved
}

// updatePartitions applies a topic's partitions; it reports whether one has
// no leader. e.mu must be held.
func (e *Engine) updatePartitions(t *topic, tm wire.TopicMetadata, now time.Time, wake *[]*sink) (leaderless bool) {
	for len(t.parts) < len(tm.Partitions) {
		id := int32(len(t.parts))
		t.parts = append(t.parts, &partition{t: t, id: id, leader: -1, leaderEpoch: -1})
		t.ids = append(t.ids, int(id))
	}
	for _, pm := range tm.Partitions {
		if pm.ID < 0 || int(pm.ID) >= len(t.parts) {
			continue
		}
		p := t.parts[pm.ID]
		if pm.LeaderEpoch >= 0 && p.leaderEpoch > pm.LeaderEpoch {
			leaderless = true // a broker behind the others answered: ask again
			continue
		}
		leader := pm.Leader
		if _, known := e.brokers[leader]; !known || (pm.Err != nil && !errors.Is(pm.Err, kafka.ReplicaNotAvailable)) {
			leader = -1
		}
		if leader < 0 {
			leaderless = true
		}
		p.leaderEpoch = pm.LeaderEpoch
		if s := e.setLeader(p, leader, now); s != nil {
			*wake = append(*wake, s)
		}
	}
	return leaderless
}

// setLeader moves p to leader's sink (none for -1) and returns the sink to
// wake. A partition with batches in flight on its old sink is sent by the
// new one once they have returned. e.mu must be held.
func (e *Engine) setLeader(p *partition, leader int32, now time.Time) *sink {
	if leader == p.leader && (leader < 0 || p.sink != nil) {
		return nil
	}
	old := p.sink
	p.leader = leader
	p.sink = nil
	if old != nil {
		for i, x := range old.parts {
			if x == p {
				old.parts[i] = old.parts[len(old.parts)-1]
				old.parts[len(old.parts)-1] = nil
				old.parts = old.parts[:len(old.parts)-1]
				break
			}
		}
	}
	if leader < 0 {
		return nil
	}
	s := e.sinkLocked(leader)
	s.parts = append(s.parts, p)
	p.sink = s
	// A retry waits out its backoff against the broker that failed it,
	// not against a new leader.
	if old != nil && old != s {
		p.retryAt = time.Time{}
		p.pipelined = false
	}
	return s
}

// routePending moves a topic's waiting records to their partitions. A
// record for a partition the topic does not have fails (the metadata was
// just refreshed for it). still reports records left waiting. e.mu must be
// held.
func (e *Engine) routePending(t *topic, now time.Time, done []finished, wake *[]*sink) ([]finished, bool) {
	if len(t.pending) == 0 {
		return done, false
	}
	pending := t.pending
	t.pending = nil
	for _, r := range pending {
		if e.cfg.ManualPartitions && int(r.Partition) >= len(t.parts) {
			done = append(done, finished{r, fmt.Errorf("mq: partition %d of topic %q does not exist (it has %d): %w",
				r.Partition, t.name, len(t.parts), kafka.UnknownTopicOrPartition)})
			continue
		}
		p := t.parts[e.choose(t, r)]
		p.enqueue(r, false, now)
		if p.sink != nil {
			*wake = append(*wake, p.sink)
		}
	}
	return done, false
}
