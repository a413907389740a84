package fetch

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
)

// IsolationLevel is a Fetch request's isolation level; its values are the
// protocol's.
type IsolationLevel int8

const (
	// ReadUncommitted delivers every data record, aborted or not (Java's
	// default). Transaction markers are still dropped.
	ReadUncommitted IsolationLevel = 0
	// ReadCommitted delivers only records of committed transactions and
	// non-transactional records, up to the last stable offset.
	ReadCommitted IsolationLevel = 1
)

// DefaultMaxBatchBytes is the default bound on a batch's decompressed
// records: 256 MiB, far above what brokers accept by default (1 MiB batches,
// message.max.bytes) even at high compression ratios.
const DefaultMaxBatchBytes = 256 << 20

// Options tune [DecodeRecords]. The zero value reads uncommitted with
// DefaultMaxBatchBytes.
type Options struct {
	// Isolation must match the isolation level the Fetch request asked for:
	// the broker fills AbortedTransactions only for read-committed fetches.
	Isolation IsolationLevel
	// MaxBatchBytes bounds one batch's decompressed records section; a
	// larger batch is a BatchError with ErrBatchTooLarge. 0 means
	// DefaultMaxBatchBytes.
	MaxBatchBytes int
}

// Decoded is what one partition's record set yields.
type Decoded struct {
	// Records are the records to deliver, in offset order.
	Records []Record
	// NextOffset is the offset to fetch next: after the last batch read,
	// control batches and skipped aborted batches included (so committing it
	// moves past transaction markers), never past the last stable offset in
	// read-committed mode, never below the fetch offset.
	NextOffset int64
	// Truncated reports that the record set ended with a partial batch (the
	// broker cuts record sets at the requested size). Truncated with no
	// complete batch means no progress: the batch at NextOffset is larger
	// than the partition's fetch size.
	Truncated bool
	// LeaderEpoch is the partition leader epoch of the last batch read (-1
	// when none was): with NextOffset, the position to validate after a
	// leader change (KIP-320), as the Java client keeps it.
	LeaderEpoch int32
	// Batches counts the complete batches read, ControlBatches the
	// transaction markers among them, AbortedBatches the batches dropped as
	// aborted (read-committed).
	Batches, ControlBatches, AbortedBatches int
}

// controlAbort is the type of an abort marker (the key of a control record
// is version int16, type int16: 0 abort, 1 commit).
const controlAbort = 0

// DecodeRecords decodes the record set of p, fetched from fetchOffset, into
// the records a consumer delivers.
//
//   - Records before fetchOffset are skipped (a broker returns whole
//     batches, which can start before it).
//   - Control batches are never returned, in any isolation mode.
//   - In read-committed mode, the batches of aborted transactions are
//     dropped, as the Java client's CompletedFetch does: an aborted
//     transaction of p.AbortedTransactions makes its producer "aborted" from
//     the first batch whose last offset reaches the transaction's first
//     offset, until that producer's abort marker; transactional batches of
//     an aborted producer are dropped. Records at or past
//     p.LastStableOffset are not returned.
//
// p.Err is not looked at: a caller handles partition errors first.
//
// On a batch that cannot be decoded, DecodeRecords returns the records
// before it with NextOffset at that batch, and a *BatchError.
func DecodeRecords(p *PartitionResponse, fetchOffset int64, opts Options) (Decoded, error) {
	d := Decoded{NextOffset: fetchOffset, LeaderEpoch: -1}
	limit := limitOrDefault(opts.MaxBatchBytes)
	readCommitted := opts.Isolation == ReadCommitted

	stable := int64(math.MaxInt64) // records from here on are not returned
	var txns abortedTxns
	if readCommitted {
		if p.LastStableOffset >= 0 {
			stable = p.LastStableOffset
		}
		txns.init(p.AbortedTransactions)
	}

	if n := countRecords(p.Records); n > 0 {
		d.Records = make([]Record, 0, n)
	}
	data := p.Records
	for len(data) > 0 {
		b, recs, n, err := parseBatchHeader(data)
		if errors.Is(err, ErrTruncated) {
			d.Truncated = true
			break
		}
		if err != nil {
			return d, err
		}
		data = data[n:]
		if b.BaseOffset >= stable {
			break
		}
		d.Batches++
		d.LeaderEpoch = b.PartitionLeaderEpoch
		next := min(b.NextOffset(), stable)

		if readCommitted && b.ProducerID != -1 {
			txns.beginUpTo(b.LastOffset())
			if b.Attributes.Control() {
				if isAbortMarker(&b, recs, limit) {
					txns.end(b.ProducerID)
				}
			} else if b.Attributes.Transactional() && txns.aborted(b.ProducerID) {
				d.AbortedBatches++
				d.NextOffset = max(d.NextOffset, next)
				continue
			}
		}
		if b.Attributes.Control() {
			d.ControlBatches++
			d.NextOffset = max(d.NextOffset, next)
			continue
		}
		if b.NextOffset() <= d.NextOffset {
			continue // wholly before the fetch offset
		}

		first := len(d.Records)
		d.Records, err = decodeRecordsSection(&b, recs, d.Records, limit)
		if err != nil {
			clear(d.Records[first:])
			d.Records = d.Records[:first]
			return d, &BatchError{Offset: b.BaseOffset, NextOffset: b.NextOffset(), Magic: b.Magic, Err: err}
		}
		// Keep the records in [NextOffset, stable); a batch's offsets
		// increase, and compaction leaves gaps, so filter rather than index.
		kept := d.Records[:first]
		for _, r := range d.Records[first:] {
			if r.Offset >= d.NextOffset && r.Offset < stable {
				kept = append(kept, r)
			}
		}
		clear(d.Records[len(kept):]) // drop references to filtered records' buffers
		d.Records = kept
		d.NextOffset = max(d.NextOffset, next)
	}
	return d, nil
}

// countRecords adds up the record counts of the complete v2 batches of a
// record set, to size the result once. The sum is capped by what the bytes
// could hold uncompressed, so hostile counts do not allocate.
func countRecords(data []byte) int {
	limit := len(data) / minRecordSize
	n := 0
	for len(data) >= batchHeaderSize && n < limit {
		size := batchOffsetsSize + int64(binary.BigEndian.Uint32(data[8:]))
		if size < batchHeaderSize || size > int64(len(data)) || data[magicPos] != magicV2 {
			break
		}
		n += max(int(int32(binary.BigEndian.Uint32(data[57:]))), 0)
		data = data[size:]
	}
	return min(n, limit)
}

// isAbortMarker reads the control record of a control batch: an ABORT
// marker ends its producer's aborted transaction. One that cannot be read is
// not taken as an abort marker (as in the Java client, whose check needs a
// parsable first record).
func isAbortMarker(b *Batch, recs []byte, limit int) bool {
	rs, err := decodeRecordsSection(b, recs, nil, limit)
	if err != nil || len(rs) == 0 || len(rs[0].Key) < controlRecordSize {
		return false
	}
	return int16(binary.BigEndian.Uint16(rs[0].Key[2:])) == controlAbort
}

// abortedTxns tracks, for one partition response, which producers are inside
// an aborted transaction (Java's abortedTransactions priority queue and
// abortedProducerIds set).
type abortedTxns struct {
	pending []AbortedTxn // by first offset, not yet reached
	active  map[int64]struct{}
}

func (t *abortedTxns) init(list []AbortedTxn) {
	if len(list) == 0 {
		return
	}
	t.pending = slices.Clone(list)
	slices.SortStableFunc(t.pending, func(a, b AbortedTxn) int {
		switch {
		case a.FirstOffset < b.FirstOffset:
			return -1
		case a.FirstOffset > b.FirstOffset:
			return 1
		}
		return 0
	})
	t.active = make(map[int64]struct{}, min(len(list), 16))
}

// beginUpTo marks as aborted the producers of the transactions starting at
// or before offset.
func (t *abortedTxns) beginUpTo(offset int64) {
	for len(t.pending) > 0 && t.pending[0].FirstOffset <= offset {
		t.active[t.pending[0].ProducerID] = struct{}{}
		t.pending = t.pending[1:]
	}
}

func (t *abortedTxns) end(producerID int64) { delete(t.active, producerID) }

func (t *abortedTxns) aborted(producerID int64) bool {
	_, ok := t.active[producerID]
	return ok
}
