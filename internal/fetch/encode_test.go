package fetch

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/compress/snappy"
)

// A v2 record batch encoder for tests. appendRecord is the root package's
// (recordbatch.go); the batch header takes every field as given, so tests
// can write what mq's producer never does: producer ids, transactional and
// control batches, LogAppendTime, offset gaps, raw snappy.

type testRecord struct {
	key, value  []byte
	headers     []kafka.Header
	tsDelta     int64
	offsetDelta int64
}

type testBatch struct {
	baseOffset      int64
	leaderEpoch     int32
	attrs           Attributes // compression included
	rawSnappy       bool       // snappy without xerial framing
	lastOffsetDelta int32      // -1: the last record's offset delta
	baseTS, maxTS   int64
	producerID      int64
	producerEpoch   int16
	baseSequence    int32
	records         []testRecord
}

// newTestBatch returns a batch at baseOffset of records with keys k0, k1...
// and values v0, v1..., one millisecond apart, non-transactional.
func newTestBatch(baseOffset int64, n int) testBatch {
	b := testBatch{baseOffset: baseOffset, leaderEpoch: 3, lastOffsetDelta: -1,
		baseTS: 1_700_000_000_000, producerID: -1, producerEpoch: -1, baseSequence: -1}
	for i := range n {
		b.records = append(b.records, testRecord{
			key:         []byte("k" + strconv.Itoa(int(baseOffset)+i)),
			value:       []byte("v" + strconv.Itoa(int(baseOffset)+i)),
			tsDelta:     int64(i),
			offsetDelta: int64(i),
		})
	}
	b.maxTS = b.baseTS + int64(max(n-1, 0))
	return b
}

// txn marks b as transactional for producer pid.
func (b testBatch) txn(pid int64) testBatch {
	b.attrs |= AttrTransactional
	b.producerID, b.producerEpoch, b.baseSequence = pid, 0, 0
	return b
}

// controlBatch is a transaction marker of producer pid at offset.
func controlBatch(offset, pid int64, abort bool) testBatch {
	typ := int16(1)
	if abort {
		typ = 0
	}
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), uint16(typ))
	value := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, 0), 7) // version, coordinator epoch
	b := testBatch{baseOffset: offset, leaderEpoch: 3, attrs: AttrControl | AttrTransactional,
		lastOffsetDelta: -1, baseTS: 1_700_000_000_000, maxTS: 1_700_000_000_000,
		producerID: pid, baseSequence: -1, records: []testRecord{{key: key, value: value}}}
	return b
}

func (b testBatch) encode(t testing.TB) []byte {
	t.Helper()
	var recs []byte
	for _, r := range b.records {
		recs = appendRecord(recs, r.key, r.value, r.headers, r.tsDelta, r.offsetDelta)
	}
	if c := b.attrs.Compression(); c != compress.None {
		var buf bytes.Buffer
		codec := c.Codec()
		if b.rawSnappy {
			codec = &snappy.Codec{Framing: snappy.Unframed}
		}
		w := codec.NewWriter(&buf)
		if _, err := w.Write(recs); err != nil {
			t.Fatalf("compress: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("compress: %v", err)
		}
		recs = buf.Bytes()
	}
	lod := b.lastOffsetDelta
	if lod < 0 && len(b.records) > 0 {
		lod = int32(b.records[len(b.records)-1].offsetDelta)
	}
	be := binary.BigEndian
	out := be.AppendUint64(nil, uint64(b.baseOffset))
	out = be.AppendUint32(out, uint32(batchHeaderSize-batchOffsetsSize+len(recs)))
	out = be.AppendUint32(out, uint32(b.leaderEpoch))
	out = append(out, magicV2)
	out = be.AppendUint32(out, 0) // CRC, below
	out = be.AppendUint16(out, uint16(b.attrs))
	out = be.AppendUint32(out, uint32(lod))
	out = be.AppendUint64(out, uint64(b.baseTS))
	out = be.AppendUint64(out, uint64(b.maxTS))
	out = be.AppendUint64(out, uint64(b.producerID))
	out = be.AppendUint16(out, uint16(b.producerEpoch))
	out = be.AppendUint32(out, uint32(b.baseSequence))
	out = be.AppendUint32(out, uint32(len(b.records)))
	out = append(out, recs...)
	be.PutUint32(out[crcPos:], crc32.Checksum(out[attributesPos:], castagnoli))
	return out
}

// recordSet concatenates encoded batches.
func recordSet(t testing.TB, batches ...testBatch) []byte {
	var out []byte
	for _, b := range batches {
		out = append(out, b.encode(t)...)
	}
	return out
}

// appendRecord, appendNullBytes, nullBytesLen and varintLen are copied from
// the root package's recordbatch.go.

func appendRecord(dst, key, value []byte, headers []kafka.Header, tsDelta, offsetDelta int64) []byte {
	n := 1 + varintLen(tsDelta) + varintLen(offsetDelta) + nullBytesLen(key) + nullBytesLen(value) +
		varintLen(int64(len(headers)))
	for _, h := range headers {
		n += varintLen(int64(len(h.Key))) + len(h.Key) + nullBytesLen(h.Value)
	}
	dst = binary.AppendVarint(dst, int64(n))
	dst = append(dst, 0) // record attributes
	dst = binary.AppendVarint(dst, tsDelta)
	dst = binary.AppendVarint(dst, offsetDelta)
	dst = appendNullBytes(dst, key)
	dst = appendNullBytes(dst, value)
	dst = binary.AppendVarint(dst, int64(len(headers)))
	for _, h := range headers {
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendNullBytes(dst, h.Value)
	}
	return dst
}

func appendNullBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

func nullBytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63) // zigzag
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}
