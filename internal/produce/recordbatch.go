package produce

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// The engine encodes each partition's batch itself, as a Kafka v2 record
// batch (KIP-98), and sends it in a raw produce request. Compared with
// handing records to kafka-go's protocol encoder this lets a request encode
// its batches in parallel before it leaves, lets a retry resend the same
// bytes, carries the producer ID, epoch and base sequence of idempotence,
// and lets snappy use s2's fast encoder on one block per batch (kafka-go's
// default is the slower "better" level in 32 KiB xerial blocks, which cost
// a third of the producer's CPU in benchmarks). Every other codec is
// kafka-go's own. Consumers, kcat and the Java client read these batches
// byte for byte: the interop tests check every codec.

// Compression is a record batch codec, numbered as in Kafka's batch
// attributes (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
type Compression int8

// Codecs.
const (
	CompressionNone   Compression = 0
	CompressionGzip   Compression = 1
	CompressionSnappy Compression = 2
	CompressionLz4    Compression = 3
	CompressionZstd   Compression = 4
)

// Snappy batches are one raw snappy block written by s2's fast encoder
// (s2.EncodeSnappy), as franz-go and librdkafka write them; the Java client,
// kcat and kafka-go read both raw and xerial-framed snappy (the interop tests
// check). Xerial framing (kafka-go's default, 32 KiB blocks) took twice the
// CPU: s2 clears its hash table for every block. The block is encoded
// straight into the batch's buffer, sized beforehand: no writer copies the
// records in between.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchHeaderSize is the v2 record batch header, from baseOffset to
// recordCount, plus the 4-byte size prefix of the produce request field.
const batchHeaderSize = 4 + 61

// identity is what a batch carries for idempotence: the producer ID and
// epoch and the sequence number of its first record. noIdentity (all -1)
// marks a batch of a producer without idempotence.
type identity struct {
	producerID int64
	epoch      int16
	seq        int32
}

var noIdentity = identity{producerID: -1, epoch: -1, seq: -1}

// encBuf holds one encoded batch.
type encBuf struct {
	out  []byte // size prefix + header + records (compressed or not)
	recs []byte // uncompressed records, when compressing
}

var encBufs = sync.Pool{New: func() any { return new(encBuf) }}

// maxPooledBatch bounds the encode buffers kept for reuse.
const maxPooledBatch = 4 << 20

func putEncBuf(b *encBuf) {
	if b != nil && cap(b.out) <= maxPooledBatch && cap(b.recs) <= maxPooledBatch {
		b.out, b.recs = b.out[:0], b.recs[:0]
		encBufs.Put(b)
	}
}

// encodeBatch encodes recs as one v2 record batch carrying id, preceded by
// its int32 size as a produce request carries it, into b.out. A record with
// a zero Time is stamped with now.
func encodeBatch(b *encBuf, recs []*Record, codec Compression, id identity, now time.Time) error {
	if len(recs) == 0 {
		return fmt.Errorf("mq: empty record batch")
	}
	first := recs[0].Time
	if first.IsZero() {
		first = now
	}
	firstTS := first.UnixMilli()
	maxTS := firstTS

	// Sized beforehand from the records' estimated sizes (an over-estimate)
	// so that appending never regrows a buffer of a megabyte.
	est := 0
	for _, r := range recs {
		est += r.size
	}
	if est == 0 { // records not sized by the engine (tests)
		for _, r := range recs {
			est += r.Size()
		}
	}
	out := grow(b.out[:0], batchHeaderSize+est)
	out = out[:batchHeaderSize]
	records := out
	if codec != CompressionNone {
		records = grow(b.recs[:0], est)
	}
	for i, r := range recs {
		ts := firstTS
		if !r.Time.IsZero() {
			ts = r.Time.UnixMilli()
		}
		maxTS = max(maxTS, ts)
		records = appendRecord(records, r.Key, r.Value, r.Headers, ts-firstTS, int64(i))
	}
	switch codec {
	case CompressionNone:
		out = records
	case CompressionSnappy:
		b.recs = records
		n := s2.MaxEncodedLen(len(records))
		if n < 0 {
			return fmt.Errorf("mq: compress batch: %w", s2.ErrTooLarge)
		}
		out = grow(out, batchHeaderSize+n)
		out = out[:batchHeaderSize+len(s2.EncodeSnappy(out[batchHeaderSize:batchHeaderSize+n], records))]
	default:
		b.recs = records
		w := compress.Compression(codec).Codec().NewWriter((*appendWriter)(&out))
		if _, err := w.Write(records); err != nil {
			return fmt.Errorf("mq: compress batch: %w", err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("mq: compress batch: %w", err)
		}
	}

	h := out[:batchHeaderSize]
	be := binary.BigEndian
	be.PutUint32(h[0:], uint32(len(out)-4))   // size of the record set field
	be.PutUint64(h[4:], 0)                    // base offset
	be.PutUint32(h[12:], uint32(len(out)-16)) // batch length: after this field
	be.PutUint32(h[16:], 0xffffffff)          // partition leader epoch: -1
	h[20] = 2                                 // magic
	// h[21:25]: CRC, below
	be.PutUint16(h[25:], uint16(codec)&7)                      // attributes: compression only
	be.PutUint32(h[27:], uint32(len(recs)-1))                  // last offset delta
	be.PutUint64(h[31:], uint64(firstTS))                      // first timestamp
	be.PutUint64(h[39:], uint64(maxTS))                        // max timestamp
	be.PutUint64(h[47:], uint64(id.producerID))                // producer id
	be.PutUint16(h[55:], uint16(id.epoch))                     // producer epoch
	be.PutUint32(h[57:], uint32(id.seq))                       // base sequence
	be.PutUint32(h[61:], uint32(len(recs)))                    // record count
	be.PutUint32(h[21:], crc32.Checksum(out[25:], castagnoli)) // attributes to the end
	b.out = out
	return nil
}

// appendRecord appends one v2 record. A nil key, value or header value is
// encoded as null (-1).
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

// grow returns b with room for n bytes in all, keeping its contents: one
// allocation of the size asked, where append would double its way there.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b
	}
	c := make([]byte, len(b), n)
	copy(c, b)
	return c
}

// appendWriter is an io.Writer that appends to a byte slice.
type appendWriter []byte

func (w *appendWriter) Write(p []byte) (int, error) {
	*w = append(*w, p...)
	return len(p), nil
}
