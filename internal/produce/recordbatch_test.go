package produce

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var allCodecs = []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLz4, CompressionZstd}

// Batches encoded by the engine decode, with kafka-go's own protocol
// decoder, to the same keys, values (null, empty and large), headers,
// timestamps and producer identity, for every codec.
func TestEncodeBatchRoundTrip(t *testing.T) {
	t0 := time.UnixMilli(1_764_000_000_123)
	big := []byte(strings.Repeat("chat message body ", 20_000)) // > one xerial block
	recs := []*Record{
		{Key: []byte("k0"), Time: t0, Value: []byte(`{"id":0}`)},
		{Key: nil, Time: t0.Add(-5 * time.Millisecond), Value: nil},
		{Key: []byte{}, Time: t0.Add(7 * time.Millisecond), Value: []byte{},
			Headers: []kafka.Header{{Key: "a", Value: []byte("1")}, {Key: "nil", Value: nil}, {Key: "", Value: []byte{}}}},
		{Key: []byte("big"), Time: t0.Add(time.Millisecond), Value: big},
	}
	for _, id := range []identity{noIdentity, {producerID: 7001, epoch: 3, seq: 2_147_483_000}} {
		for _, codec := range allCodecs {
			t.Run(fmt.Sprintf("%d/%d", id.producerID, codec), func(t *testing.T) {
				var b encBuf
				for range 2 { // the second time reuses the buffers
					require.NoError(t, encodeBatch(&b, recs, codec, id, time.Now()))
					var rs protocol.RecordSet
					_, err := rs.ReadFrom(bytes.NewReader(b.out))
					require.NoError(t, err)
					assert.EqualValues(t, 2, rs.Version)
					assert.EqualValues(t, codec, rs.Attributes.Compression())
					batch := recordBatch(t, rs.Records)
					assert.Equal(t, id.producerID, batch.ProducerID)
					assert.Equal(t, id.epoch, batch.ProducerEpoch)
					assert.Equal(t, id.seq, batch.BaseSequence)
					assert.False(t, rs.Attributes.Transactional())
					for i, want := range recs {
						got, err := rs.Records.ReadRecord()
						require.NoError(t, err, "record %d", i)
						assert.EqualValues(t, i, got.Offset)
						assert.Equal(t, want.Time.UnixMilli(), got.Time.UnixMilli(), "record %d time", i)
						assert.Equal(t, want.Key == nil, got.Key == nil, "record %d null key", i)
						assert.Equal(t, want.Value == nil, got.Value == nil, "record %d null value", i)
						assert.Equal(t, string(want.Key), readAll(t, got.Key), "record %d key", i)
						assert.Equal(t, string(want.Value), readAll(t, got.Value), "record %d value", i)
						require.Len(t, got.Headers, len(want.Headers))
						for j, h := range want.Headers {
							assert.Equal(t, h.Key, got.Headers[j].Key)
							assert.Equal(t, h.Value == nil, got.Headers[j].Value == nil, "header %q null", h.Key)
							assert.Equal(t, string(h.Value), string(got.Headers[j].Value))
						}
					}
					_, err = rs.Records.ReadRecord()
					assert.ErrorIs(t, err, io.EOF)
				}
			})
		}
	}
}

// kafka-go's decoder checks nothing about the CRC, the broker does: the
// header carries the CRC-32C of everything from the attributes on, so it
// covers the producer identity and changes with the body.
// A pooled buffer that held a larger batch encodes a smaller one to the
// same bytes as a fresh buffer: the header and sizes are all rewritten.
func TestEncodeBatchReusedBufferSameBytes(t *testing.T) {
	t0 := time.UnixMilli(1_764_000_000_000)
	big := make([]*Record, 200)
	for i := range big {
		big[i] = &Record{Key: []byte(fmt.Sprint("big-", i)), Value: []byte(strings.Repeat("x", 900)), Time: t0}
	}
	small := []*Record{{Key: []byte("k"), Value: []byte("small"), Time: t0}, {Key: nil, Value: nil, Time: t0.Add(time.Second)}}
	id := identity{producerID: 9, epoch: 1, seq: 5}
	for _, codec := range allCodecs {
		var reused, fresh encBuf
		require.NoError(t, encodeBatch(&reused, big, codec, noIdentity, t0))
		require.NoError(t, encodeBatch(&reused, small, codec, id, t0))
		require.NoError(t, encodeBatch(&fresh, small, codec, id, t0))
		assert.Equal(t, fresh.out, reused.out, "codec %d", codec)
	}
}

func TestEncodeBatchChecksum(t *testing.T) {
	recs := []*Record{{Key: []byte("k"), Time: time.UnixMilli(1), Value: []byte("v")}}
	var a, b, c encBuf
	require.NoError(t, encodeBatch(&a, recs, CompressionNone, noIdentity, time.Now()))
	require.NoError(t, encodeBatch(&c, recs, CompressionNone, identity{producerID: 1, epoch: 0, seq: 0}, time.Now()))
	recs[0].Value = []byte("w")
	require.NoError(t, encodeBatch(&b, recs, CompressionNone, noIdentity, time.Now()))
	require.Equal(t, len(a.out), len(b.out))
	for _, buf := range [][]byte{a.out, b.out, c.out} {
		assert.Equal(t, crc32.Checksum(buf[25:], castagnoli), binary.BigEndian.Uint32(buf[21:25]))
	}
	assert.NotEqual(t, a.out[21:25], b.out[21:25])
	assert.NotEqual(t, a.out[21:25], c.out[21:25])
	assert.Equal(t, uint32(len(a.out)-4), binary.BigEndian.Uint32(a.out[0:4]))
}

// recordBatch returns the one record batch kafka-go decoded (it wraps
// batches in a stream).
func recordBatch(t *testing.T, r protocol.RecordReader) *protocol.RecordBatch {
	t.Helper()
	if s, ok := r.(*protocol.RecordStream); ok {
		require.Len(t, s.Records, 1)
		r = s.Records[0]
	}
	b, ok := r.(*protocol.RecordBatch)
	require.True(t, ok, "a record batch, not %T", r)
	return b
}

func readAll(t *testing.T, b protocol.Bytes) string {
	t.Helper()
	if b == nil {
		return ""
	}
	data, err := io.ReadAll(b)
	require.NoError(t, err)
	return string(data)
}

func BenchmarkEncodeBatch(b *testing.B) {
	value := []byte(fmt.Sprintf(`{"id":1,"body":%q}`, strings.Repeat("hello world ", 80)))
	recs := make([]*Record, 1000)
	for i := range recs {
		recs[i] = &Record{Key: []byte(fmt.Sprintf("conv-%d", i)), Time: time.Now(), Value: value}
	}
	for _, codec := range []Compression{CompressionNone, CompressionSnappy} {
		b.Run(fmt.Sprint(codec), func(b *testing.B) {
			var buf encBuf
			b.ReportAllocs()
			b.SetBytes(int64(len(recs) * len(value)))
			b.ResetTimer()
			for range b.N {
				if err := encodeBatch(&buf, recs, codec, noIdentity, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzEncodeBatch: whatever the bytes, a batch decodes to what was encoded.
func FuzzEncodeBatch(f *testing.F) {
	f.Add([]byte("k"), []byte(`{"id":1}`), "h", []byte("v"), uint8(0), int64(0), false)
	f.Add([]byte{}, []byte{}, "", []byte{}, uint8(2), int64(-5), true)
	f.Add([]byte(nil), []byte(strings.Repeat("x", 70000)), "trace", []byte(nil), uint8(4), int64(1<<40), false)
	f.Fuzz(func(t *testing.T, key, value []byte, hkey string, hval []byte, codec uint8, delta int64, nilKey bool) {
		if nilKey {
			key = nil
		}
		c := Compression(codec % 5)
		t0 := time.UnixMilli(1_764_000_000_000)
		delta = delta % (1 << 40)
		recs := []*Record{
			{Key: key, Time: t0, Headers: []kafka.Header{{Key: hkey, Value: hval}}, Value: value},
			{Key: value, Time: t0.Add(time.Duration(delta) * time.Millisecond), Value: key},
		}
		id := identity{producerID: delta, epoch: int16(codec), seq: int32(delta)}
		var b encBuf
		require.NoError(t, encodeBatch(&b, recs, c, id, time.Now()))
		var rs protocol.RecordSet
		_, err := rs.ReadFrom(bytes.NewReader(b.out))
		require.NoError(t, err)
		batch := recordBatch(t, rs.Records)
		require.Equal(t, id.producerID, batch.ProducerID)
		require.Equal(t, id.epoch, batch.ProducerEpoch)
		require.Equal(t, id.seq, batch.BaseSequence)
		for i, want := range recs {
			got, err := rs.Records.ReadRecord()
			require.NoError(t, err)
			require.Equal(t, want.Time.UnixMilli(), got.Time.UnixMilli(), "record %d", i)
			require.Equal(t, want.Key == nil, got.Key == nil, "record %d null key", i)
			require.Equal(t, want.Value == nil, got.Value == nil, "record %d null value", i)
			require.Equal(t, string(want.Key), readAll(t, got.Key))
			require.Equal(t, string(want.Value), readAll(t, got.Value))
			require.Len(t, got.Headers, len(want.Headers))
			for j, h := range want.Headers {
				require.Equal(t, h.Key, got.Headers[j].Key)
				require.Equal(t, string(h.Value), string(got.Headers[j].Value))
			}
		}
	})
}
