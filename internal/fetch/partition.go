package fetch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Offsets that [Fetcher.Assign] takes besides a real offset: where to start
// a partition that has no committed offset. They are also the two policies
// of [Config.Reset].
const (
	// OffsetEarliest is the partition's first retained record.
	OffsetEarliest int64 = -2
	// OffsetLatest is the end of the partition: the high watermark, or the
	// last stable offset in read-committed mode.
	OffsetLatest int64 = -1
)

// ErrRevoked is returned by [Partition.Next] once the partition was revoked
// or the fetcher closed.
var ErrRevoked = errors.New("fetch: partition revoked")

// placement is where a partition stands on its way to being fetched.
type placement int8

const (
	needLeader placement = iota // waiting for metadata to name its leader
	needOffset                  // leader known; the start offset is to be listed
	fetching                    // attached to its leader's source
)

// Partition is one assigned partition: the engine keeps its fetch position
// and buffers what its leader returned; its consumer takes the records, in
// offset order, with [Partition.Next]. Next and the Release of the chunks it
// returns are meant for one consumer goroutine; the other methods are safe
// for concurrent use.
type Partition struct {
	f     *Fetcher
	topic string
	id    int32

	wake chan struct{}          // cap 1: Next has something to look at
	hwm  atomic.Int64           // high watermark of the last response, -1 before
	src  atomic.Pointer[source] // the source fetching it, nil when none

	// Guarded by f.mu: where the partition is fetched from.
	place  placement
	leader int32
	epoch  int32 // current leader epoch from metadata, -1 when unknown
	reset  int64 // where needOffset starts: OffsetEarliest or OffsetLatest

	mu sync.Mutex
	// gen changes whenever the fetch position is set anew (start offset,
	// reset, revocation) or the partition moves: a response to a request
	// made before is dropped.
	gen    uint64
	offset int64 // the next offset to fetch, once pending is decoded
	// unpositioned: offset is not known yet; it is looked up (ListOffsets)
	// at reset (guarded by f.mu) before the partition can be fetched.
	unpositioned bool
	inflight     bool      // in a fetch request awaiting its response
	pending      *rawChunk // fetched, not yet decoded (at most one: its end is unknown until then)
	held         int64     // bytes charged to the budget: pending and unreleased chunks
	ratio        float64   // decoded bytes per byte on the wire, of the last chunk
	need         int32     // the largest batch seen to need more than a fetch size
	stuck        bool      // the last fetch returned part of one batch: ask first next time
	hot          bool      // the last fetch returned records (or none was made yet)
	err          error     // fatal: returned by Next once pending chunks are taken
	revoked      bool
}

// rawChunk is one partition's part of a fetch response, not yet decoded.
type rawChunk struct {
	resp   PartitionResponse // Records: this partition's bytes only
	offset int64             // the offset it was fetched from
	gen    uint64
	charge int64
}

// Chunk is what one fetch returned for a partition, decoded: records to
// deliver in offset order, and the offset after them. Records alias the
// chunk's buffers; call Release once they are no longer needed, so that the
// partition's share of the buffer budget frees up.
type Chunk struct {
	// Records are the records to deliver, in offset order: control batches
	// and (read-committed) aborted records are not among them.
	Records []Record
	// NextOffset is the offset after everything this chunk covered,
	// transaction markers, aborted records and compaction gaps included:
	// once Records are processed, committing NextOffset is safe.
	NextOffset int64
	// HighWatermark is the partition's high watermark when it was fetched.
	HighWatermark int64
	// LastStableOffset is the partition's last stable offset when it was
	// fetched (-1 when unknown).
	LastStableOffset int64

	p        *Partition
	gen      uint64
	charge   int64
	released atomic.Bool
}

// Topic returns the partition's topic.
func (p *Partition) Topic() string { return p.topic }

// ID returns the partition's index.
func (p *Partition) ID() int32 { return p.id }

// HighWatermark returns the high watermark the last fetch response reported
// (it is updated by empty responses too), or -1 before the first.
func (p *Partition) HighWatermark() int64 { return p.hwm.Load() }

// Next returns the next chunk of records, waiting until one is fetched or
// ctx ends. It decodes on the caller's goroutine, so a consumer of many
// partitions decodes them in parallel. It returns [ErrRevoked] after
// revocation, and an error naming the partition and offset when fetching it
// cannot go on: a record batch that cannot be decoded (*[BatchError]), or a
// partition error other than the ones the engine recovers from (leader
// changes, offsets out of range), such as an authorization failure. The
// records before a bad batch are returned first.
func (p *Partition) Next(ctx context.Context) (*Chunk, error) {
	for {
		p.mu.Lock()
		if p.revoked {
			p.mu.Unlock()
			return nil, ErrRevoked
		}
		if rc := p.pending; rc != nil {
			p.mu.Unlock()
			if c, err := p.decode(rc); c != nil || err != nil {
				return c, err
			}
			continue
		}
		if err := p.err; err != nil {
			p.mu.Unlock()
			return nil, err
		}
		p.mu.Unlock()
		select {
		case <-p.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// decode turns the pending chunk into records and moves the fetch position
// past it. It returns nil, nil when the chunk yields nothing to hand out.
func (p *Partition) decode(rc *rawChunk) (*Chunk, error) {
	d, derr := DecodeRecords(&rc.resp, rc.offset, p.f.decodeOpts)
	charge := chargeOf(len(rc.resp.Records), d.Records)

	p.mu.Lock()
	if p.pending != rc || p.gen != rc.gen || p.revoked {
		p.mu.Unlock() // dropped meanwhile (revoked, or the position was reset): its charge went with it
		return nil, nil
	}
	p.pending = nil
	p.offset = d.NextOffset
	p.ratio = float64(charge) / float64(max(len(rc.resp.Records), 1))
	p.held += charge - rc.charge
	p.f.budget.held.Add(charge - rc.charge)
	noProgress := d.Truncated && d.Batches == 0 && derr == nil
	if noProgress {
		// The next batch is larger than the fetch size: ask for all of it,
		// first in the request (a broker always returns the first
		// partition's first batch whole).
		p.need = max(p.need, batchNeed(rc.resp.Records))
	}
	p.stuck = noProgress
	end := rc.resp.HighWatermark
	if p.f.cfg.Isolation == ReadCommitted && rc.resp.LastStableOffset >= 0 {
		end = rc.resp.LastStableOffset
	}
	p.hot = d.NextOffset < end
	if derr != nil {
		p.err = fmt.Errorf("fetch: %s[%d] at offset %d: %w", p.topic, p.id, d.NextOffset, derr)
	}
	progressed := d.NextOffset > rc.offset
	c := &Chunk{Records: d.Records, NextOffset: d.NextOffset, HighWatermark: rc.resp.HighWatermark,
		LastStableOffset: rc.resp.LastStableOffset, p: p, gen: p.gen, charge: charge}
	if !progressed && len(d.Records) == 0 {
		p.held -= charge
		p.f.budget.held.Add(-charge)
		c = nil
	}
	err := p.err
	p.mu.Unlock()
	p.kickSource() // the position is known again
	if c == nil && err != nil && len(d.Records) == 0 {
		return nil, err
	}
	return c, nil
}

// batchNeed returns the bytes the batch at the start of a record set needs
// (its offset, length field and length), or twice what is there when even
// its length is cut off.
func batchNeed(records []byte) int32 {
	if len(records) < batchOffsetsSize {
		return int32(max(2*len(records), minFetchBytes))
	}
	n := int64(batchOffsetsSize) + int64(int32(binary.BigEndian.Uint32(records[8:12])))
	return int32(min(max(n, int64(len(records))+1), int64(1)<<30))
}

// Release returns the chunk's bytes to the budget. The records must not be
// used afterwards. Calling it again does nothing.
func (c *Chunk) Release() {
	if c == nil || !c.released.CompareAndSwap(false, true) {
		return
	}
	p := c.p
	p.mu.Lock()
	if !p.revoked { // revocation released everything
		p.held -= c.charge
		p.f.budget.held.Add(-c.charge)
	}
	p.mu.Unlock()
	p.kickSource()
}

// signal wakes the partition's consumer.
func (p *Partition) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// kickSource tells the partition's source that it may be fetchable again.
func (p *Partition) kickSource() {
	if s := p.src.Load(); s != nil {
		s.kick()
	}
}
