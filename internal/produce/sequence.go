package produce

import (
	"math"
	"time"
)

// batch is a partition's records sent together. Once sent, a batch keeps
// its records and, with idempotence, its producer identity and base
// sequence: a retry resends the same bytes, which the broker deduplicates
// if the first attempt was written after all.
type batch struct {
	p     *partition
	recs  []*Record
	bytes int
	id    identity
	enc   *encBuf // the encoded batch, kept for retries

	attempts     int
	inflight     bool
	maybeWritten bool // an attempt ended without a definite answer
	expired      bool // its records were reported already (failed): never sent again, kept only while in flight
	stale        bool // its sequence chain broke: its records go back to the queue
}

func (b *batch) deadline() time.Time { return b.recs[0].deadline }

func (b *batch) release() {
	putEncBuf(b.enc)
	b.enc = nil
}

// incSeq advances a sequence number by n, wrapping at math.MaxInt32 as
// Kafka does.
func incSeq(seq int32, n int) int32 {
	return int32((int64(seq) + int64(n)) % (math.MaxInt32 + 1))
}

// Sequence rules (idempotence), after KIP-98 and KIP-360 as the Java client
// applies them, simplified by giving each partition's chain its own producer
// identity:
//
//   - A batch keeps its identity and base sequence for every attempt. After a
//     failure the partition sends nothing new until all its requests in
//     flight have returned, then resends its unsettled batches in order.
//   - OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID or
//     INVALID_PRODUCER_EPOCH for a batch that is not the oldest unsettled one
//     means an earlier batch is missing: that one is resent first, this one
//     after it. For the oldest one, nothing the producer still holds can
//     fill the gap (the broker lost the producer's state, or an earlier
//     batch failed or expired): the chain breaks there.
//   - A broken chain restarts under a fresh producer ID at sequence 0, once
//     nothing of the partition is in flight and every batch before the
//     break is settled: the batches from the break on were rejected, so no
//     record of them is in the log, and they go back to the head of the
//     queue to be batched again. A fresh producer ID rather than a bumped
//     epoch: Kafka answers InitProducerId without a transactional ID with a
//     new ID anyway, and other partitions keep their chains.
//   - A batch the broker certainly did not write and that is failed for good
//     (a permanent error, its delivery timeout) breaks the chain of the
//     batches sent after it at once; with none, it gives its sequence
//     numbers back. A batch rejected as too large breaks the chain at
//     itself, its records going back one per batch. A batch whose outcome is
//     unknown (a lost response) gives nothing back; if it was not written,
//     the batch after it hits the gap and breaks the chain.
//   - A batch that reaches its delivery timeout is failed with an error that
//     says whether it may have been written. If it was in flight, it stays
//     until its response comes, to settle the chain, but is never resent.

// indexOf returns the position of b in the partition's batches, -1 if gone.
func (p *partition) indexOf(b *batch) int {
	for i, x := range p.batches {
		if x == b {
			return i
		}
	}
	return -1
}

// remove drops b from the partition's batches.
func (p *partition) remove(b *batch) {
	i := p.indexOf(b)
	if i < 0 {
		return
	}
	copy(p.batches[i:], p.batches[i+1:])
	p.batches[len(p.batches)-1] = nil
	p.batches = p.batches[:len(p.batches)-1]
	if i < p.next {
		p.next--
	}
	b.release()
}

// isOldest reports whether b is the partition's oldest unsettled batch of its
// chain.
func (p *partition) isOldest(b *batch) bool {
	for _, x := range p.batches {
		if x.stale {
			continue
		}
		return x == b
	}
	return false
}

// breakChain marks b and every later batch stale: they go back to the queue
// and get a fresh producer ID once nothing before them is unsettled.
func (p *partition) breakChain(b *batch) {
	i := p.indexOf(b)
	if i < 0 {
		return
	}
	for _, x := range p.batches[i:] {
		x.stale = true
	}
	p.rechain = true
	p.failing = true
}

// giveBack returns the sequence numbers of b, which failed for good after a
// definite rejection, when no batch was sent after it.
func (p *partition) giveBack(b *batch) {
	if b.id.seq < 0 || b.maybeWritten || p.rechain || len(p.batches) == 0 || p.batches[len(p.batches)-1] != b {
		return
	}
	p.nextSeq = b.id.seq
}

// settle runs when none of a partition's batches is in flight: after a
// failure, its unsettled batches are sent again from the oldest; a broken
// chain restarts once only its stale batches are left.
func (p *partition) settle(now time.Time) {
	if p.inflight > 0 {
		return
	}
	if p.failing {
		p.failing = false
		p.next = 0
	}
	if !p.rechain {
		return
	}
	for _, b := range p.batches {
		if !b.stale {
			return // settle the batches before the break under the old chain first
		}
	}
	var back []*Record
	for _, b := range p.batches {
		if !b.expired {
			back = append(back, b.recs...)
		}
		b.release()
	}
	clear(p.batches)
	p.batches = p.batches[:0]
	p.next = 0
	p.rechain = false
	p.requeue(back, now)
	if p.idGen > 0 {
		p.needFresh = true
	}
}
