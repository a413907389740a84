package fetch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/segmentio/kafka-go/compress"
)

// Decompression writes each batch into a buffer of its own, sized exactly,
// because the decoded records alias it. Every codec is bounded by the
// caller's limit on the decompressed size, and no codec is allowed to
// allocate on the word of a header alone:
//   - snappy (xerial-framed, as the Java client and kafka-go write it, or a
//     raw block): each block states its decoded length; it is checked against
//     the limit and against the most a snappy block of that size can expand
//     to, then decoded straight into the output.
//   - zstd: a frame header states its window, which the decoder allocates;
//     the window is capped at zstdMaxWindow, the reference decoder's own
//     default limit, and the in-memory shortcut that trusts the stated
//     content size is bypassed.
//   - gzip and lz4 (kafka-go's codecs) have fixed-size state; their output
//     streams into a pooled buffer that stops at the limit.
// This package imports klauspost/compress, which kafka-go already depends
// on, for snappy and zstd, to set those bounds.

// zstdMaxWindow is the largest zstd window accepted: 128 MiB, window log 27,
// the limit of zstd's reference decoder without --long (what Java's zstd-jni
// accepts by default).
const zstdMaxWindow = 1 << 27

// maxPooledScratch bounds the streaming buffers kept for reuse.
const maxPooledScratch = 8 << 20

var scratchPool = sync.Pool{New: func() any { return new([]byte) }}

var zstdPool sync.Pool // *zstd.Decoder

// decompress returns the records section of a batch compressed with codec,
// in a new buffer of exactly its size, or an error wrapping ErrCorruptBatch,
// ErrBatchTooLarge or ErrUnsupportedCompression.
func decompress(codec compress.Compression, src []byte, limit int) ([]byte, error) {
	switch codec {
	case compress.Snappy:
		return decompressSnappy(src, limit)
	case compress.Gzip, compress.Lz4:
		r := codec.Codec().NewReader(bytes.NewReader(src))
		out, err := readLimited(r, limit)
		_ = r.Close() // returns the reader to kafka-go's pool; never fails
		return out, wrapCodec(codec, err)
	case compress.Zstd:
		d, _ := zstdPool.Get().(*zstd.Decoder)
		if d == nil {
			var err error
			d, err = zstd.NewReader(nil,
				zstd.WithDecoderConcurrency(1), // synchronous: no goroutines
				zstd.WithDecoderMaxWindow(zstdMaxWindow),
				zstd.WithDecoderMaxMemory(zstdMaxWindow),
			)
			if err != nil {
				return nil, fmt.Errorf("fetch: zstd decoder: %w", err)
			}
		}
		// plainReader hides bytes.Reader's Bytes method: given a byte slice
		// the decoder would decode it in memory, allocating whatever size
		// the frame header claims.
		var out []byte
		err := d.Reset(plainReader{bytes.NewReader(src)})
		if err == nil {
			out, err = readLimited(d, limit)
		}
		_ = d.Reset(plainReader{bytes.NewReader(nil)}) // drop the reference to src; EOF is expected
		zstdPool.Put(d)
		return out, wrapCodec(codec, err)
	default:
		return nil, fmt.Errorf("%w: codec %d", ErrUnsupportedCompression, codec)
	}
}

// plainReader is an io.Reader and nothing else.
type plainReader struct{ r io.Reader }

func (p plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

// wrapCodec marks a codec failure as corruption, leaving ErrBatchTooLarge as
// it is.
func wrapCodec(codec compress.Compression, err error) error {
	if err == nil || errors.Is(err, ErrBatchTooLarge) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrCorruptBatch, codec, err)
}

// readLimited reads r to its end into a pooled buffer that grows as data
// arrives (never ahead of it) and fails once more than limit bytes came out,
// then copies the result into a buffer of its exact size.
func readLimited(r io.Reader, limit int) ([]byte, error) {
	sp := scratchPool.Get().(*[]byte)
	buf := (*sp)[:0]
	defer func() {
		if cap(buf) <= maxPooledScratch {
			*sp = buf[:0]
			scratchPool.Put(sp)
		}
	}()
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return nil, fmt.Errorf("%w: more than %d bytes decompressed", ErrBatchTooLarge, limit)
			}
			// Grow by doubling, to at most one byte past the limit (enough
			// to tell that it was exceeded).
			buf = append(buf, make([]byte, min(max(cap(buf), 4096), limit+1-len(buf)))...)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(buf) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes decompressed", ErrBatchTooLarge, limit)
	}
	out := make([]byte, len(buf))
	copy(out, buf)
	return out, nil
}

// xerialMagic starts snappy data in the framing of the snappy-java library
// (what Kafka's Java client writes): the magic, a version and a minimum
// compatible version (int32 each), then chunks of int32 length + raw block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

// maxSnappyExpansion bounds what a snappy block can decode to: its densest
// element, a 3-byte copy, produces 64 bytes.
const maxSnappyExpansion = 22

// decompressSnappy decodes xerial-framed or raw snappy (librdkafka and some
// clients write raw blocks).
func decompressSnappy(src []byte, limit int) ([]byte, error) {
	var chunks [][]byte
	if len(src) >= xerialHeaderSize && bytes.Equal(src[:len(xerialMagic)], xerialMagic) {
		rest := src[xerialHeaderSize:]
		for len(rest) > 0 {
			if len(rest) < 4 {
				return nil, corrupt("snappy: truncated xerial chunk header")
			}
			n := binary.BigEndian.Uint32(rest)
			rest = rest[4:]
			if uint64(n) > uint64(len(rest)) {
				return nil, corrupt("snappy: xerial chunk of %d bytes, %d left", n, len(rest))
			}
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
	} else {
		chunks = [][]byte{src}
	}

	total := 0
	for _, c := range chunks {
		n, err := snappy.DecodedLen(c)
		if err != nil {
			return nil, wrapCodec(compress.Snappy, err)
		}
		if n > maxSnappyExpansion*len(c)+64 {
			return nil, corrupt("snappy: block of %d bytes claims %d decoded", len(c), n)
		}
		total += n
		if total > limit {
			return nil, fmt.Errorf("%w: more than %d bytes decompressed", ErrBatchTooLarge, limit)
		}
	}
	out := make([]byte, total)
	pos := 0
	for _, c := range chunks {
		d, err := snappy.Decode(out[pos:], c)
		if err != nil {
			return nil, wrapCodec(compress.Snappy, err)
		}
		pos += len(d)
	}
	return out[:pos], nil
}
