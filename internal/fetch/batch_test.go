package fetch

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// codecCases are every codec a v2 batch can use, with snappy both framed
// (Java, kafka-go) and raw (librdkafka).
var codecCases = []struct {
	name      string
	attrs     Attributes
	rawSnappy bool
}{
	{"none", 0, false},
	{"gzip", Attributes(compress.Gzip), false},
	{"snappy-xerial", Attributes(compress.Snappy), false},
	{"snappy-raw", Attributes(compress.Snappy), true},
	{"lz4", Attributes(compress.Lz4), false},
	{"zstd", Attributes(compress.Zstd), false},
}

// mixedRecords has null and empty keys, values and header values, and a
// large compressible value.
func mixedRecords() []testRecord {
	return []testRecord{
		{key: nil, value: []byte("null key"), offsetDelta: 0},
		{key: []byte{}, value: []byte{}, tsDelta: 1, offsetDelta: 1},
		{key: []byte("tombstone"), value: nil, tsDelta: 2, offsetDelta: 2},
		{key: []byte("headers"), value: []byte("v"), tsDelta: 3, offsetDelta: 3, headers: []kafka.Header{
			{Key: "null", Value: nil}, {Key: "empty", Value: []byte{}}, {Key: "", Value: []byte("empty key")},
			{Key: "bin", Value: []byte{0, 0xff, 0}},
		}},
		{key: []byte("big"), value: bytes.Repeat([]byte("0123456789abcdef"), 4096), tsDelta: -5, offsetDelta: 4},
	}
}

// requireSameRecord compares a decoded record with what was encoded,
// including nil versus empty.
func requireSameRecord(t *testing.T, want testRecord, base, baseTS int64, got Record) {
	t.Helper()
	require.Equal(t, base+want.offsetDelta, got.Offset)
	requireSameBytes(t, want.key, got.Key, "key")
	requireSameBytes(t, want.value, got.Value, "value")
	require.Len(t, got.Headers, len(want.headers))
	if len(want.headers) == 0 {
		require.Nil(t, got.Headers)
	}
	for i, h := range want.headers {
		require.Equal(t, h.Key, got.Headers[i].Key)
		requireSameBytes(t, h.Value, got.Headers[i].Value, "header "+h.Key)
	}
	require.Equal(t, time.UnixMilli(baseTS+want.tsDelta), got.Timestamp)
}

func requireSameBytes(t *testing.T, want, got []byte, what string) {
	t.Helper()
	require.Equal(t, want == nil, got == nil, "%s: null must stay null and empty stay empty (want %q, got %q)", what, want, got)
	require.Equal(t, string(want), string(got), what)
}

func TestDecodeBatchCodecs(t *testing.T) {
	for _, c := range codecCases {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestBatch(1000, 0)
			tb.attrs, tb.rawSnappy = c.attrs, c.rawSnappy
			tb.records = mixedRecords()
			data := tb.encode(t)
			if c.attrs.Compression() != compress.None {
				require.Less(t, len(data), 4096, "the batch should be compressed")
			}
			// Another batch after it must not be read.
			data = append(data, newTestBatch(2000, 1).encode(t)...)

			b, n, err := DecodeBatch(data, 0)
			require.NoError(t, err)
			require.Equal(t, len(tb.encode(t)), n)
			require.Equal(t, int64(1000), b.BaseOffset)
			require.Equal(t, int8(2), b.Magic)
			require.Equal(t, c.attrs.Compression(), b.Attributes.Compression())
			require.Equal(t, int32(3), b.PartitionLeaderEpoch)
			require.Equal(t, int32(4), b.LastOffsetDelta)
			require.Equal(t, int64(1005), b.NextOffset())
			require.Equal(t, int32(5), b.NumRecords)
			require.Len(t, b.Records, 5)
			for i, want := range tb.records {
				requireSameRecord(t, want, 1000, tb.baseTS, b.Records[i])
				require.Equal(t, CreateTime, b.Records[i].TimestampType)
				require.Equal(t, int32(3), b.Records[i].LeaderEpoch)
				require.Equal(t, int64(-1), b.Records[i].ProducerID)
				require.False(t, b.Records[i].Transactional)
			}
		})
	}
}

// Byte slices are clipped: appending to a key cannot overwrite the value
// that follows it in the buffer.
func TestDecodeBatchSlicesAreClipped(t *testing.T) {
	tb := newTestBatch(0, 1)
	data := tb.encode(t)
	b, _, err := DecodeBatch(data, 0)
	require.NoError(t, err)
	r := b.Records[0]
	require.Equal(t, len(r.Key), cap(r.Key))
	_ = append(r.Key, 'X')
	require.Equal(t, "v0", string(r.Value))
}

func TestDecodeBatchLogAppendTime(t *testing.T) {
	for _, c := range codecCases {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestBatch(7, 3)
			tb.attrs = c.attrs | AttrLogAppendTime
			tb.rawSnappy = c.rawSnappy
			tb.maxTS = 1_800_000_000_123 // the broker's time, not the producer's
			b, _, err := DecodeBatch(tb.encode(t), 0)
			require.NoError(t, err)
			require.Equal(t, LogAppendTime, b.Attributes.TimestampType())
			for _, r := range b.Records {
				require.Equal(t, LogAppendTime, r.TimestampType)
				require.Equal(t, time.UnixMilli(1_800_000_000_123), r.Timestamp)
			}
		})
	}
}

func TestDecodeBatchNoTimestamp(t *testing.T) {
	tb := newTestBatch(0, 1)
	tb.baseTS, tb.maxTS = -1, -1
	b, _, err := DecodeBatch(tb.encode(t), 0)
	require.NoError(t, err)
	require.True(t, b.Records[0].Timestamp.IsZero())
}

func TestDecodeBatchTransactionalAttributes(t *testing.T) {
	b, _, err := DecodeBatch(newTestBatch(0, 2).txn(42).encode(t), 0)
	require.NoError(t, err)
	require.True(t, b.Attributes.Transactional())
	require.False(t, b.Attributes.Control())
	require.Equal(t, int64(42), b.ProducerID)
	for _, r := range b.Records {
		require.True(t, r.Transactional)
		require.Equal(t, int64(42), r.ProducerID)
	}

	b, _, err = DecodeBatch(controlBatch(9, 42, true).encode(t), 0)
	require.NoError(t, err)
	require.True(t, b.Attributes.Control())
	require.Len(t, b.Records, 1)
	require.Equal(t, []byte{0, 0, 0, 0}, b.Records[0].Key)
}

// Flipping any bit the CRC covers is a typed corruption error, never a
// panic or wrong records.
func TestDecodeBatchCorruptCRC(t *testing.T) {
	for _, c := range codecCases {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestBatch(50, 0)
			tb.attrs, tb.rawSnappy = c.attrs, c.rawSnappy
			tb.records = mixedRecords()[:4] // small: every byte is flipped
			good := tb.encode(t)
			for i := crcPos; i < len(good); i++ {
				data := bytes.Clone(good)
				data[i] ^= 0x10
				_, _, err := DecodeBatch(data, 0)
				var be *BatchError
				require.ErrorAs(t, err, &be, "byte %d", i)
				require.ErrorIs(t, err, ErrCorruptBatch, "byte %d", i)
				require.Equal(t, int64(50), be.Offset)
				require.Equal(t, int64(-1), be.NextOffset)
			}
		})
	}
}

// withCRC recomputes the CRC of a batch edited after encoding.
func withCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[crcPos:], crc32.Checksum(b[attributesPos:], castagnoli))
	return b
}

// Batches whose CRC is right but whose content contradicts itself.
func TestDecodeBatchCorruptContent(t *testing.T) {
	good := newTestBatch(0, 3).encode(t)
	tests := []struct {
		name string
		edit func([]byte) []byte
	}{
		{"more records than stated", func(b []byte) []byte { binary.BigEndian.PutUint32(b[57:], 2); return b }},
		{"fewer records than stated", func(b []byte) []byte { binary.BigEndian.PutUint32(b[57:], 4); return b }},
		{"negative record count", func(b []byte) []byte { binary.BigEndian.PutUint32(b[57:], 0xffffffff); return b }},
		{"hostile record count", func(b []byte) []byte { binary.BigEndian.PutUint32(b[57:], 1<<30); return b }},
		{"record past the last offset delta", func(b []byte) []byte { binary.BigEndian.PutUint32(b[23:], 1); return b }},
		{"negative last offset delta", func(b []byte) []byte { binary.BigEndian.PutUint32(b[23:], 0xfffffff0); return b }},
		{"record length past the end", func(b []byte) []byte { b[batchHeaderSize] = 0x7e; return b }},
		{"negative record length", func(b []byte) []byte { b[batchHeaderSize] = 0x01; return b }},
		{"key length past the record", func(b []byte) []byte { b[batchHeaderSize+4] = 0x7e; return b }},
		{"key length below -1", func(b []byte) []byte { b[batchHeaderSize+4] = 0x03; return b }},
		{"unknown codec", func(b []byte) []byte { b[attributesPos+1] |= 6; return b }},
		{"garbage gzip", func(b []byte) []byte { b[attributesPos+1] |= byte(compress.Gzip); return b }},
		{"garbage snappy", func(b []byte) []byte { b[attributesPos+1] |= byte(compress.Snappy); return b }},
		{"garbage lz4", func(b []byte) []byte { b[attributesPos+1] |= byte(compress.Lz4); return b }},
		{"garbage zstd", func(b []byte) []byte { b[attributesPos+1] |= byte(compress.Zstd); return b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeBatch(withCRC(tt.edit(bytes.Clone(good))), 0)
			var be *BatchError
			require.ErrorAs(t, err, &be)
			if tt.name == "unknown codec" {
				require.ErrorIs(t, err, ErrUnsupportedCompression)
			} else {
				require.ErrorIs(t, err, ErrCorruptBatch)
			}
		})
	}
}

// Records out of offset order, or repeating an offset, are corrupt: they
// would be delivered twice or out of order.
func TestDecodeBatchOffsetOrder(t *testing.T) {
	for _, deltas := range [][]int64{{0, 2, 1}, {0, 1, 1}, {-1, 0, 1}} {
		tb := newTestBatch(0, 3)
		for i, d := range deltas {
			tb.records[i].offsetDelta = d
		}
		tb.lastOffsetDelta = 2
		_, _, err := DecodeBatch(tb.encode(t), 0)
		require.ErrorIs(t, err, ErrCorruptBatch, "deltas %v", deltas)
	}
}

// Every strict prefix of a batch is truncated, and says so without reading
// anything.
func TestDecodeBatchTruncated(t *testing.T) {
	tb := newTestBatch(0, 0)
	tb.attrs = Attributes(compress.Lz4)
	tb.records = mixedRecords()
	data := tb.encode(t)
	for n := range len(data) {
		_, used, err := DecodeBatch(data[:n], 0)
		require.ErrorIs(t, err, ErrTruncated, "prefix %d", n)
		require.Zero(t, used)
	}
}

func TestDecodeBatchBadLength(t *testing.T) {
	data := newTestBatch(0, 1).encode(t)
	for _, l := range []int32{-1, 0, 4, 40} {
		d := bytes.Clone(data)
		binary.BigEndian.PutUint32(d[8:], uint32(l))
		_, _, err := DecodeBatch(d, 0)
		require.ErrorIs(t, err, ErrCorruptBatch, "length %d", l)
	}
}

// A v0/v1 message set entry is reported with its offset and where to go on.
func TestDecodeBatchLegacyMagic(t *testing.T) {
	for _, magic := range []int8{0, 1, 3} {
		// offset, size, crc, magic, attributes, (timestamp), key -1, value
		msg := binary.BigEndian.AppendUint32(nil, 0) // crc (not checked)
		msg = append(msg, byte(magic), 0)
		if magic == 1 {
			msg = binary.BigEndian.AppendUint64(msg, 1_700_000_000_000)
		}
		msg = binary.BigEndian.AppendUint32(msg, 0xffffffff)
		msg = binary.BigEndian.AppendUint32(msg, 1)
		msg = append(msg, 'x')
		entry := binary.BigEndian.AppendUint64(nil, 77)
		entry = binary.BigEndian.AppendUint32(entry, uint32(len(msg)))
		entry = append(entry, msg...)

		_, n, err := DecodeBatch(entry, 0)
		require.ErrorIs(t, err, ErrUnsupportedMagic)
		var be *BatchError
		require.ErrorAs(t, err, &be)
		require.Equal(t, BatchError{Offset: 77, NextOffset: 78, Magic: magic, Err: be.Err}, *be)
		require.Equal(t, len(entry), n)
	}
}

func TestDecodeBatchTooLarge(t *testing.T) {
	for _, c := range codecCases {
		t.Run(c.name, func(t *testing.T) {
			tb := newTestBatch(0, 0)
			tb.attrs, tb.rawSnappy = c.attrs, c.rawSnappy
			tb.records = mixedRecords() // about 64 KiB uncompressed
			data := tb.encode(t)
			_, _, err := DecodeBatch(data, 60_000)
			require.ErrorIs(t, err, ErrBatchTooLarge)
			_, _, err = DecodeBatch(data, 70_000)
			require.NoError(t, err)
		})
	}
}

// A raw snappy block claiming a huge decoded length is rejected before
// anything is allocated for it.
func TestDecodeBatchSnappyLengthBomb(t *testing.T) {
	tb := newTestBatch(0, 1)
	tb.attrs = Attributes(compress.Snappy)
	data := tb.encode(t)
	// Replace the records section with a block header claiming 100 MiB
	// (below the default limit of DecodeBatch).
	block := binary.AppendUvarint(nil, 100<<20)
	block = append(block, 0, 'x') // a 1-byte literal
	data = append(data[:batchHeaderSize], block...)
	binary.BigEndian.PutUint32(data[8:], uint32(len(data)-batchOffsetsSize))
	data = withCRC(data)
	allocated := bytesAllocated(func() {
		_, _, err := DecodeBatch(data, 0)
		require.ErrorIs(t, err, ErrCorruptBatch)
	})
	require.Less(t, allocated, uint64(4096))
}

// kafka-go's own encoder (what its Writer produces) decodes to the same
// records, for every codec.
func TestDecodeBatchFromKafkaGoEncoder(t *testing.T) {
	for _, c := range codecCases {
		if c.rawSnappy {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			ts := time.UnixMilli(1_700_000_000_000)
			var in []protocol.Record
			for i, r := range mixedRecords() {
				var hs []protocol.Header
				for _, h := range r.headers {
					hs = append(hs, protocol.Header(h))
				}
				in = append(in, protocol.Record{Time: ts.Add(time.Duration(i) * time.Millisecond),
					Key: protocol.NewBytes(r.key), Value: protocol.NewBytes(r.value), Headers: hs})
			}
			rs := protocol.RecordSet{Version: 2, Attributes: protocol.Attributes(c.attrs), Records: protocol.NewRecordReader(in...)}
			var buf bytes.Buffer
			_, err := rs.WriteTo(&buf)
			require.NoError(t, err)
			data := buf.Bytes()[4:] // size prefix

			b, n, err := DecodeBatch(data, 0)
			require.NoError(t, err)
			require.Equal(t, len(data), n)
			require.Len(t, b.Records, len(in))
			for i, want := range mixedRecords() {
				want.tsDelta, want.offsetDelta = int64(i), int64(i)
				requireSameRecord(t, want, 0, ts.UnixMilli(), b.Records[i])
			}
		})
	}
}

func TestAttributes(t *testing.T) {
	a := Attributes(compress.Zstd) | AttrLogAppendTime | AttrTransactional
	assert.Equal(t, compress.Zstd, a.Compression())
	assert.Equal(t, LogAppendTime, a.TimestampType())
	assert.True(t, a.Transactional())
	assert.False(t, a.Control())
	assert.Equal(t, "LogAppendTime", a.TimestampType().String())
	assert.Equal(t, "CreateTime", CreateTime.String())
}
