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
	offset int64 // the next offset to fetch
	// unpositioned: offset is not known yet; it is looked up (ListOffsets)
	// at reset (guarded by f.mu) before the partition can be fetched.
	unpositioned bool
	// outOfRange: the position was out of range and is being looked up
	// again; the lookup's answer queues a Restarted chunk.
	outOfRange bool
	inflight   bool     // in a fetch request, until its response is decoded
	ready      []*Chunk // decoded, not yet taken by Next
	held       int64    // bytes charged to the budget: ready and unreleased chunks
	ratio      float64  // decoded bytes per byte on the wire, of the last chunk
	need       int32    // the largest batch seen to need more than a fetch size
	stuck      bool     // the last fetch returned part of one batch: ask first next time
	hot        bool     // more records to fetch: the last fetch did not reach the end (or none was made yet)
	err        error    // fatal: returned by Next once the ready chunks are taken
	revoked    bool
	paused     bool // left out of fetch requests (SetPaused)
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
	// Restarted marks a chunk without records that says the partition's
	// fetch position was out of range (beyond the log's end, or before its
	// start) and restarted at NextOffset, where [Config.Reset] says. It
	// comes after every chunk fetched before the restart. Offsets tracked
	// at or above NextOffset before it are not the records that follow:
	// the partition's consumption restarts at NextOffset, backwards too.
	Restarted bool

	p        *Partition
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
// ctx ends. It returns [ErrRevoked] after revocation, and an error naming
// the partition and offset when fetching it cannot go on: a record batch
// that cannot be decoded (*[BatchError]), or a partition error other than
// the ones the engine recovers from (leader changes, offsets out of range),
// such as an authorization failure. The records before a bad batch are
// returned first.
func (p *Partition) Next(ctx context.Context) (*Chunk, error) {
	for {
		p.mu.Lock()
		if p.revoked {
			p.mu.Unlock()
			return nil, ErrRevoked
		}
		if len(p.ready) > 0 {
			c := p.ready[0]
			p.ready[0] = nil
			p.ready = p.ready[1:]
			p.mu.Unlock()
			return c, nil
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

// SetPaused stops (true) or resumes (false) fetching the partition. A
// paused partition is left out of fetch requests; its position and the
// chunks it buffered stay, so Next still returns those, and fetching
// resumes where it stopped. A response to a request made before the pause
// is still accepted.
func (p *Partition) SetPaused(paused bool) {
	p.mu.Lock()
	changed := p.paused != paused
	p.paused = paused
	p.mu.Unlock()
	if changed && !paused {
		p.kickSource()
	}
}

// Paused reports whether the partition is paused.
func (p *Partition) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

// SeekTo moves the fetch position to offset (>= 0): the chunks buffered and
// not yet returned by Next are dropped, a response to a request made before
// is ignored, and the next chunk Next returns starts at offset (or, when
// offset is out of the partition's range, where [Config.Reset] says).
// Chunks Next returned before stay valid until released. It returns
// [ErrRevoked] after revocation.
func (p *Partition) SeekTo(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("fetch: %s[%d]: seek offset %d must be >= 0", p.topic, p.id, offset)
	}
	f := p.f
	f.mu.Lock()
	defer f.mu.Unlock()
	p.mu.Lock()
	if p.revoked {
		p.mu.Unlock()
		return ErrRevoked
	}
	p.gen++
	p.offset = offset
	wasUnpositioned := p.unpositioned
	p.unpositioned, p.outOfRange = false, false
	for _, c := range p.ready {
		c.released.Store(true)
		p.held -= c.charge
		f.budget.held.Add(-c.charge)
	}
	p.ready = nil
	p.hot, p.stuck = true, false
	p.mu.Unlock()
	if wasUnpositioned && p.place == needOffset {
		f.attachLocked(p) // the offset lookup's answer would be dropped
	}
	p.kickSource()
	return nil
}

// decoded is one partition's part of a response, decoded by its source.
type decoded struct {
	fp      fetchPart
	resp    *PartitionResponse
	d       Decoded
	err     error
	charge  int64
	wireLen int
}

// decode decodes a partition's record set. retain tells whether the
// records may point into buf beyond the decoding (uncompressed batches).
func (p *Partition) decode(fp fetchPart, pr *PartitionResponse, retained bool) decoded {
	d, err := DecodeRecords(pr, fp.offset, p.f.decodeOpts)
	raw := 0
	if retained {
		raw = len(pr.Records)
	}
	return decoded{fp: fp, resp: pr, d: d, err: err, charge: chargeOf(raw, d.Records), wireLen: len(pr.Records)}
}

// accept queues what decode produced and moves the fetch position past it,
// unless the partition moved on meanwhile.
func (p *Partition) accept(dc decoded) {
	d := dc.d
	p.mu.Lock()
	p.inflight = false
	if p.gen != dc.fp.gen || p.revoked {
		p.mu.Unlock()
		return
	}
	p.offset = d.NextOffset
	p.ratio = max(float64(dc.charge)/float64(max(dc.wireLen, 1)), 1)
	noProgress := d.Truncated && d.Batches == 0 && dc.err == nil
	if noProgress {
		// The next batch is larger than the fetch size: ask for all of it,
		// first in the request (a broker always returns the first
		// partition's first batch whole).
		p.need = max(p.need, batchNeed(dc.resp.Records))
	}
	p.stuck = noProgress
	end := dc.resp.HighWatermark
	if p.f.cfg.Isolation == ReadCommitted && dc.resp.LastStableOffset >= 0 {
		end = dc.resp.LastStableOffset
	}
	p.hot = d.NextOffset < end
	if dc.err != nil {
		p.err = fmt.Errorf("fetch: %s[%d] at offset %d: %w", p.topic, p.id, d.NextOffset, dc.err)
	}
	if len(d.Records) > 0 || d.NextOffset > dc.fp.offset {
		p.ready = append(p.ready, &Chunk{Records: d.Records, NextOffset: d.NextOffset, HighWatermark: dc.resp.HighWatermark,
			LastStableOffset: dc.resp.LastStableOffset, p: p, charge: dc.charge})
		p.held += dc.charge
		p.f.budget.held.Add(dc.charge)
	}
	p.mu.Unlock()
	p.signal()
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

// compressedOnly reports whether every complete batch of a record set is
// compressed: its records then point into buffers of their own, not into
// the record set.
func compressedOnly(records []byte) bool {
	for len(records) >= attributesPos+2 {
		size := int64(batchOffsetsSize) + int64(int32(binary.BigEndian.Uint32(records[8:12])))
		if size > int64(len(records)) {
			break // the partial batch at the end is not decoded
		}
		if records[magicPos] != magicV2 || Attributes(binary.BigEndian.Uint16(records[attributesPos:])).Compression() == 0 {
			return false
		}
		records = records[size:]
	}
	return true
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
