package fetch

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/segmentio/kafka-go/compress"
	"github.com/stretchr/testify/require"
)

func offsetsOf(recs []Record) []int64 {
	out := make([]int64, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Offset)
	}
	return out
}

func span(from, to int64) []int64 { // [from, to)
	var out []int64
	for o := from; o < to; o++ {
		out = append(out, o)
	}
	return out
}

func concat(parts ...[]int64) []int64 {
	var out []int64
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func partition(t *testing.T, lso int64, aborted []AbortedTxn, batches ...testBatch) *PartitionResponse {
	return &PartitionResponse{Topic: "t", HighWatermark: lso, LastStableOffset: lso, LogStartOffset: 0,
		AbortedTransactions: aborted, PreferredReadReplica: -1, Records: recordSet(t, batches...)}
}

var bothModes = []struct {
	name string
	iso  IsolationLevel
}{{"read-uncommitted", ReadUncommitted}, {"read-committed", ReadCommitted}}

func TestDecodeRecordsPlain(t *testing.T) {
	last := newTestBatch(7, 3)
	last.leaderEpoch = 4 // a leader change before the last batch
	p := partition(t, 10, nil, newTestBatch(0, 4), newTestBatch(4, 3), last)
	for _, m := range bothModes {
		t.Run(m.name, func(t *testing.T) {
			d, err := DecodeRecords(p, 0, Options{Isolation: m.iso})
			require.NoError(t, err)
			require.Equal(t, span(0, 10), offsetsOf(d.Records))
			require.Equal(t, int64(10), d.NextOffset)
			require.False(t, d.Truncated)
			require.Equal(t, 3, d.Batches)
			require.Equal(t, int32(4), d.LeaderEpoch)
			require.Equal(t, int32(3), d.Records[6].LeaderEpoch)
			require.Equal(t, int32(4), d.Records[7].LeaderEpoch)
			require.Equal(t, "k9", string(d.Records[9].Key))
		})
	}
}

// The broker returns whole batches: records before the fetch offset are
// skipped, even inside a compressed batch.
func TestDecodeRecordsFromMidBatch(t *testing.T) {
	for _, c := range codecCases {
		t.Run(c.name, func(t *testing.T) {
			b1, b2 := newTestBatch(0, 5), newTestBatch(5, 5)
			b1.attrs, b2.attrs = c.attrs, c.attrs
			p := partition(t, 10, nil, b1, b2)
			d, err := DecodeRecords(p, 3, Options{})
			require.NoError(t, err)
			require.Equal(t, span(3, 10), offsetsOf(d.Records))
			require.Equal(t, int64(10), d.NextOffset)

			// A fetch offset past every batch yields nothing and keeps it.
			d, err = DecodeRecords(p, 12, Options{})
			require.NoError(t, err)
			require.Empty(t, d.Records)
			require.Equal(t, int64(12), d.NextOffset)
		})
	}
}

// Compaction removes records but keeps a batch's last offset: the next
// offset is after the batch, not after its last surviving record; an empty
// batch still moves it.
func TestDecodeRecordsCompactedBatches(t *testing.T) {
	b1 := newTestBatch(0, 3)
	b1.records[1].offsetDelta, b1.records[2].offsetDelta = 4, 6
	b1.lastOffsetDelta = 9
	empty := newTestBatch(10, 0)
	empty.lastOffsetDelta = 4
	empty.producerID, empty.producerEpoch = 5, 0
	p := partition(t, 20, nil, b1, empty)
	d, err := DecodeRecords(p, 0, Options{})
	require.NoError(t, err)
	require.Equal(t, []int64{0, 4, 6}, offsetsOf(d.Records))
	require.Equal(t, int64(15), d.NextOffset)
	require.Equal(t, 2, d.Batches)
}

// Control batches (transaction markers) are never delivered, in either
// mode, and the next offset moves past them, including a trailing one, so
// a consumer's lag reaches 0.
func TestDecodeRecordsDropsControlBatches(t *testing.T) {
	const pid = 11
	p := partition(t, 9, nil,
		newTestBatch(0, 3).txn(pid), controlBatch(3, pid, false), // committed
		newTestBatch(4, 3).txn(pid), controlBatch(7, pid, true), // aborted
		controlBatch(8, pid, false),
	)
	for _, m := range bothModes {
		t.Run(m.name, func(t *testing.T) {
			d, err := DecodeRecords(p, 0, Options{Isolation: m.iso})
			require.NoError(t, err)
			require.Equal(t, int64(9), d.NextOffset)
			require.Equal(t, 3, d.ControlBatches)
			for _, r := range d.Records {
				require.True(t, r.Transactional)
				require.Equal(t, int64(pid), r.ProducerID)
			}
			// No aborted list: read-committed keeps the aborted records
			// too (the broker sends the list whenever they are present).
			require.Equal(t, concat(span(0, 3), span(4, 7)), offsetsOf(d.Records))
		})
	}

	// Only markers from the fetch offset on: nothing to deliver, progress.
	d, err := DecodeRecords(partition(t, 9, nil, controlBatch(7, pid, true), controlBatch(8, pid, false)), 7, Options{})
	require.NoError(t, err)
	require.Empty(t, d.Records)
	require.Equal(t, int64(9), d.NextOffset)
}

// Two producers interleave; one's transactions abort across several
// batches, and it has a committed transaction before and after.
func TestDecodeRecordsAbortedTransactions(t *testing.T) {
	const a, b = 100, 200
	batches := []testBatch{
		newTestBatch(0, 2).txn(a), controlBatch(2, a, false), // a commits 0-1
		newTestBatch(3, 2).txn(a),  // a aborts 3-4, 7-8
		newTestBatch(5, 2).txn(b),  // b commits 5-6, 10
		newTestBatch(7, 2).txn(a),  //
		newTestBatch(9, 1),         // non-transactional
		newTestBatch(10, 1).txn(b), //
		controlBatch(11, a, true),
		controlBatch(12, b, false),
		newTestBatch(13, 2).txn(a), controlBatch(15, a, false), // a commits 13-14
		newTestBatch(16, 2).txn(b), controlBatch(18, b, true), // b aborts 16-17
	}
	aborted := []AbortedTxn{{ProducerID: b, FirstOffset: 16}, {ProducerID: a, FirstOffset: 3}} // any order
	for _, c := range []Attributes{0, Attributes(compress.Lz4)} {
		for i := range batches {
			if !batches[i].attrs.Control() {
				batches[i].attrs |= c
			}
		}
		p := partition(t, 19, aborted, batches...)

		d, err := DecodeRecords(p, 0, Options{Isolation: ReadCommitted})
		require.NoError(t, err)
		require.Equal(t, []int64{0, 1, 5, 6, 9, 10, 13, 14}, offsetsOf(d.Records))
		require.Equal(t, int64(19), d.NextOffset)
		require.Equal(t, 3, d.AbortedBatches)
		require.Equal(t, 5, d.ControlBatches)

		d, err = DecodeRecords(p, 0, Options{Isolation: ReadUncommitted})
		require.NoError(t, err)
		require.Equal(t, []int64{0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 16, 17}, offsetsOf(d.Records))
		require.Equal(t, int64(19), d.NextOffset)
		require.Zero(t, d.AbortedBatches)

		// From the middle of the aborted transaction.
		d, err = DecodeRecords(p, 8, Options{Isolation: ReadCommitted})
		require.NoError(t, err)
		require.Equal(t, []int64{9, 10, 13, 14}, offsetsOf(d.Records))
	}
}

// The same producer id aborting a transaction after committing one in the
// same response: only the aborted one's batches are dropped (the list's
// first offset decides where it starts).
func TestDecodeRecordsAbortStartsAtFirstOffset(t *testing.T) {
	const a = 7
	p := partition(t, 8, []AbortedTxn{{ProducerID: a, FirstOffset: 4}},
		newTestBatch(0, 3).txn(a), controlBatch(3, a, false),
		newTestBatch(4, 3).txn(a), controlBatch(7, a, true),
	)
	d, err := DecodeRecords(p, 0, Options{Isolation: ReadCommitted})
	require.NoError(t, err)
	require.Equal(t, span(0, 3), offsetsOf(d.Records))
	require.Equal(t, int64(8), d.NextOffset)
}

// Read-committed returns nothing at or past the last stable offset and does
// not move the next offset past it; read-uncommitted ignores it.
func TestDecodeRecordsLastStableOffset(t *testing.T) {
	p := partition(t, 0, nil, newTestBatch(0, 4), newTestBatch(4, 4).txn(3), newTestBatch(8, 2))
	p.LastStableOffset = 6 // inside the second batch (a broker keeps it at batch starts; be safe anyway)
	d, err := DecodeRecords(p, 0, Options{Isolation: ReadCommitted})
	require.NoError(t, err)
	require.Equal(t, span(0, 6), offsetsOf(d.Records))
	require.Equal(t, int64(6), d.NextOffset)

	p.LastStableOffset = 4
	d, err = DecodeRecords(p, 0, Options{Isolation: ReadCommitted})
	require.NoError(t, err)
	require.Equal(t, span(0, 4), offsetsOf(d.Records))
	require.Equal(t, int64(4), d.NextOffset)

	d, err = DecodeRecords(p, 0, Options{Isolation: ReadUncommitted})
	require.NoError(t, err)
	require.Equal(t, span(0, 10), offsetsOf(d.Records))

	p.LastStableOffset = -1 // unknown: no limit
	d, err = DecodeRecords(p, 0, Options{Isolation: ReadCommitted})
	require.NoError(t, err)
	require.Equal(t, span(0, 10), offsetsOf(d.Records))
}

// A record set cut inside a batch ends cleanly; the next fetch starts at
// the partial batch.
func TestDecodeRecordsTruncatedTail(t *testing.T) {
	full := recordSet(t, newTestBatch(0, 3), newTestBatch(3, 3))
	first := len(newTestBatch(0, 3).encode(t))
	for cut := first; cut < len(full); cut++ {
		p := &PartitionResponse{LastStableOffset: 6, Records: full[:cut]}
		d, err := DecodeRecords(p, 0, Options{})
		require.NoError(t, err, "cut %d", cut)
		require.Equal(t, span(0, 3), offsetsOf(d.Records), "cut %d", cut)
		require.Equal(t, int64(3), d.NextOffset)
		require.Equal(t, cut > first, d.Truncated, "cut %d", cut)
		require.Equal(t, 1, d.Batches)
	}
	// No complete batch: no progress, and it says so.
	d, err := DecodeRecords(&PartitionResponse{Records: full[:first-1]}, 0, Options{})
	require.NoError(t, err)
	require.Empty(t, d.Records)
	require.True(t, d.Truncated)
	require.Zero(t, d.Batches)
	require.Zero(t, d.NextOffset)
}

// A corrupt batch after good ones: the good records come back with the
// error, and the next offset stops at the bad batch.
func TestDecodeRecordsCorruptBatch(t *testing.T) {
	good := recordSet(t, newTestBatch(0, 3))
	bad := newTestBatch(3, 3).encode(t)
	bad[len(bad)-1] ^= 1
	p := &PartitionResponse{Records: append(append(bytes.Clone(good), bad...), newTestBatch(6, 3).encode(t)...)}
	d, err := DecodeRecords(p, 0, Options{})
	require.ErrorIs(t, err, ErrCorruptBatch)
	var be *BatchError
	require.ErrorAs(t, err, &be)
	require.Equal(t, int64(3), be.Offset)
	require.Equal(t, span(0, 3), offsetsOf(d.Records))
	require.Equal(t, int64(3), d.NextOffset)

	// Corrupt records (right CRC) in a batch after good ones: same.
	bad = newTestBatch(3, 3).encode(t)
	bad[batchHeaderSize] = 0x7e
	p.Records = append(bytes.Clone(good), withCRC(bad)...)
	d, err = DecodeRecords(p, 0, Options{})
	require.ErrorIs(t, err, ErrCorruptBatch)
	require.ErrorAs(t, err, &be)
	require.Equal(t, int64(6), be.NextOffset) // the header is trusted
	require.Equal(t, span(0, 3), offsetsOf(d.Records))
	require.Equal(t, int64(3), d.NextOffset)
}

func TestDecodeRecordsNullRecordSet(t *testing.T) {
	d, err := DecodeRecords(&PartitionResponse{}, 42, Options{Isolation: ReadCommitted})
	require.NoError(t, err)
	require.Equal(t, Decoded{NextOffset: 42, LeaderEpoch: -1}, d)
}

// Record counts in batch headers are claims: a set of small batches each
// claiming a billion records allocates in proportion to its bytes.
func TestDecodeRecordsHostileCounts(t *testing.T) {
	var set []byte
	for i := range 100 {
		b := newTestBatch(int64(i), 1).encode(t)
		binary.BigEndian.PutUint32(b[57:], 1<<30)
		set = append(set, withCRC(b)...)
	}
	p := &PartitionResponse{Records: set}
	allocated := bytesAllocated(func() {
		_, err := DecodeRecords(p, 0, Options{})
		require.ErrorIs(t, err, ErrCorruptBatch)
	})
	require.Less(t, allocated, uint64(20*len(set)), "allocated %d bytes for %d", allocated, len(set))
}

// bytesAllocated returns the heap bytes one call of f allocates, on
// average over a few calls after a first one (which may fill pools).
func bytesAllocated(f func()) uint64 {
	const runs = 10
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}
