package produce

import (
	"time"

	"github.com/segmentio/kafka-go"
)

// topic is the engine's view of one topic: its partitions once metadata
// described them, and the records waiting for that.
type topic struct {
	name    string
	parts   []*partition // by ID; nil until metadata described the topic
	ids     []int        // 0..len(parts)-1, for balancers
	pending []*Record    // waiting for metadata (or for a partition not seen yet)
	sticky  int          // the partition nil-key records go to; -1: none yet
	// stickyRecords and stickyBytes count what went to sticky since it was
	// chosen: a full batch's worth moves it on, sent or not.
	stickyRecords, stickyBytes int

	// err is the topic's last metadata error, for the records' errors.
	err error
	// missingSince is when metadata first said the topic does not exist
	// (zero: it did not); missing counts such answers in a row.
	missingSince time.Time
	missing      int
	// confirmedMissing: metadata said so for long enough to fail records.
	confirmedMissing bool
}

// partition is one partition's state: records not yet in a batch, and the
// batches sent and not yet settled. Guarded by Engine.mu.
type partition struct {
	t  *topic
	id int32

	leader      int32 // -1: none known
	leaderEpoch int32
	sink        *sink // the leader's sink; nil without a leader

	queue      []*Record // not yet in a batch, in order
	queueBytes int
	oldest     time.Time // when the oldest queued record's linger started
	urgent     bool      // a queued record must leave without lingering
	single     int       // records to send one per batch (after MESSAGE_TOO_LARGE)

	// batches were sent at least once and are not settled, in sequence
	// order; next indexes the first one to send again (len: none).
	batches []*batch
	next    int

	inflight     int   // batches of this partition in flight
	inflightSink *sink // where they are in flight
	failing      bool  // a batch failed: send nothing until inflight is 0
	pipelined    bool  // a batch succeeded since the last failure: more than one may be in flight
	retryAt      time.Time
	backoff      time.Duration

	// Idempotence: the producer identity of the partition's sequence chain
	// and the sequence number of the next new batch. idGen is the
	// generation of the producer ID in use (0: none yet); rechain asks for
	// a newer one once the chain's stale batches may be sent again.
	producerID int64
	epoch      int16
	nextSeq    int32
	idGen      int
	needFresh  bool
	rechain    bool // batches[i].stale are waiting to go back to the queue
}

// topicLocked returns the topic named name, creating it. e.mu must be held.
func (e *Engine) topicLocked(name string) (t *topic, created bool) {
	if t = e.topics[name]; t != nil {
		return t, false
	}
	t = &topic{name: name, sticky: -1}
	e.topics[name] = t
	return t, true
}

// route puts r where it waits to be sent: its partition's queue, or its
// topic's pending list while the topic's metadata is not known. It returns
// the sink to wake, and whether the metadata loop must be woken. e.mu must
// be held.
func (e *Engine) route(r *Record, urgent bool, now time.Time) (*sink, bool) {
	t, _ := e.topicLocked(r.Topic)
	if t.parts == nil || len(t.pending) > 0 || (e.cfg.ManualPartitions && int(r.Partition) >= len(t.parts)) {
		// No metadata yet, or none that shows the partition: wait for it.
		if urgent {
			r.urgent = true
		}
		t.pending = append(t.pending, r)
		e.meta.want = true
		return nil, true
	}
	p := t.parts[e.choose(t, r)]
	p.enqueue(r, urgent, now)
	if s := p.sink; s != nil && s.queuedRecord(p, r) {
		return s, false
	}
	return nil, false
}

// choose returns the partition of r in t, whose metadata is known. e.mu
// must be held.
func (e *Engine) choose(t *topic, r *Record) int {
	switch {
	case e.cfg.ManualPartitions:
		return int(r.Partition)
	case e.cfg.Balancer != nil:
		if p := e.cfg.Balancer.Balance(kafka.Message{Topic: t.name, Key: r.Key}, t.ids...); p >= 0 && p < len(t.parts) {
			return p
		}
		return 0
	case r.Key != nil:
		return javaPartitioner.Balance(kafka.Message{Topic: t.name, Key: r.Key}, t.ids...)
	}
	if t.sticky < 0 || t.sticky >= len(t.parts) || t.parts[t.sticky].leader < 0 ||
		t.stickyRecords >= e.cfg.BatchRecords || t.stickyBytes+r.size > e.cfg.BatchBytes {
		t.moveSticky()
	}
	t.stickyRecords++
	t.stickyBytes += r.size
	return t.sticky
}

// moveSticky moves nil-key records on to the next partition: when the
// sticky partition's batch leaves, or once a batch's worth went to it (a
// burst buffered faster than it is sent would otherwise all go to one
// partition), as the Java client does since 3.3.
func (t *topic) moveSticky() {
	t.sticky = t.nextSticky(t.sticky)
	t.stickyRecords, t.stickyBytes = 0, 0
}

// javaPartitioner hashes keys exactly like the Java client's default
// partitioner (murmur2, positive, modulo the partition count).
var javaPartitioner = kafka.Murmur2Balancer{}

// nextSticky returns the partition after after that has a leader (any
// partition when none has), for nil-key records: they stick to one
// partition until its batch leaves or is full, then move on (KIP-794), so
// that they form full batches; moving in order spreads them evenly.
func (t *topic) nextSticky(after int) int {
	n := len(t.parts)
	for i := 1; i <= n; i++ {
		c := (after + i + n) % n
		if t.parts[c].leader >= 0 {
			return c
		}
	}
	return (after + 1 + n) % n
}

// enqueue appends r to the partition's queue.
func (p *partition) enqueue(r *Record, urgent bool, now time.Time) {
	if len(p.queue) == 0 {
		p.oldest = now
	}
	p.queue = append(p.queue, r)
	p.queueBytes += r.size
	if urgent || r.urgent {
		p.urgent = true
	}
	r.Partition = p.id
}

// unqueue removes the first n records of the queue.
func (p *partition) unqueue(n int, now time.Time) []*Record {
	recs := make([]*Record, n)
	copy(recs, p.queue[:n])
	rest := copy(p.queue, p.queue[n:])
	clear(p.queue[rest:])
	p.queue = p.queue[:rest]
	for _, r := range recs {
		p.queueBytes -= r.size
	}
	if rest > 0 {
		p.oldest = now
	} else {
		p.urgent = false
	}
	return recs
}

// requeue puts records back at the head of the queue, in order.
func (p *partition) requeue(recs []*Record, now time.Time) {
	if len(recs) == 0 {
		return
	}
	q := make([]*Record, 0, len(recs)+len(p.queue))
	q = append(q, recs...)
	q = append(q, p.queue...)
	p.queue = q
	for _, r := range recs {
		p.queueBytes += r.size
	}
	p.oldest = now
	p.urgent = true // they were sent already: no lingering again
}
