package mq

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go/protocol"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Batches encoded by the producer decode, with kafka-go's own protocol
// decoder, to the same keys, values (null, empty and large), headers and
// timestamps, for every codec; the CRC is the one Kafka checks.
func TestEncodeBatchRoundTrip(t *testing.T) {
	t0 := time.UnixMilli(1_764_000_000_123)
	big := []byte(strings.Repeat("chat message body ", 20_000)) // > one xerial block
	recs := []*record[[]byte]{
		{msg: Message[[]byte]{Key: []byte("k0"), Time: t0}, value: []byte(`{"id":0}`)},
		{msg: Message[[]byte]{Key: nil, Time: t0.Add(-5 * time.Millisecond)}, value: nil},
		{msg: Message[[]byte]{Key: []byte{}, Time: t0.Add(7 * time.Millisecond),
			Headers: []Header{{Key: "a", Value: []byte("1")}, {Key: "nil", Value: nil}, {Key: "", Value: []byte{}}}}, value: []byte{}},
		{msg: Message[[]byte]{Key: []byte("big"), Time: t0.Add(time.Millisecond)}, value: big},
	}
	for _, codec := range []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLz4, CompressionZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			var b encBuf
			for range 2 { // the second time reuses the buffers
				require.NoError(t, encodeBatch(&b, recs, codec, time.Now()))
				var rs protocol.RecordSet
				_, err := rs.ReadFrom(bytes.NewReader(b.out))
				require.NoError(t, err)
				assert.EqualValues(t, 2, rs.Version)
				assert.EqualValues(t, codec, rs.Attributes.Compression())
				for i, want := range recs {
					got, err := rs.Records.ReadRecord()
					require.NoError(t, err, "record %d", i)
					assert.EqualValues(t, i, got.Offset)
					assert.Equal(t, want.msg.Time.UnixMilli(), got.Time.UnixMilli(), "record %d time", i)
					assert.Equal(t, want.msg.Key == nil, got.Key == nil, "record %d null key", i)
					assert.Equal(t, want.value == nil, got.Value == nil, "record %d null value", i)
					assert.Equal(t, string(want.msg.Key), readAll(t, got.Key), "record %d key", i)
					assert.Equal(t, string(want.value), readAll(t, got.Value), "record %d value", i)
					require.Len(t, got.Headers, len(want.msg.Headers))
					for j, h := range want.msg.Headers {
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

// kafka-go's decoder checks nothing about the CRC, the broker does: flipping
// a byte of the body must change the checksum the header carries.
func TestEncodeBatchChecksum(t *testing.T) {
	recs := []*record[[]byte]{{msg: Message[[]byte]{Key: []byte("k"), Time: time.UnixMilli(1)}, value: []byte("v")}}
	var a, b encBuf
	require.NoError(t, encodeBatch(&a, recs, CompressionNone, time.Now()))
	recs[0].value = []byte("w")
	require.NoError(t, encodeBatch(&b, recs, CompressionNone, time.Now()))
	require.Equal(t, len(a.out), len(b.out))
	assert.NotEqual(t, a.out[21:25], b.out[21:25])
	assert.Equal(t, uint32(len(a.out)-4), uint32(a.out[0])<<24|uint32(a.out[1])<<16|uint32(a.out[2])<<8|uint32(a.out[3]))
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
	recs := make([]*record[[]byte], 1000)
	for i := range recs {
		recs[i] = &record[[]byte]{msg: Message[[]byte]{Key: []byte(fmt.Sprintf("conv-%d", i)), Time: time.Now()}, value: value}
	}
	for _, codec := range []Compression{CompressionNone, CompressionSnappy} {
		b.Run(codec.String(), func(b *testing.B) {
			var buf encBuf
			b.ReportAllocs()
			b.SetBytes(int64(len(recs) * len(value)))
			b.ResetTimer()
			for range b.N {
				if err := encodeBatch(&buf, recs, codec, time.Now()); err != nil {
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
		recs := []*record[[]byte]{
			{msg: Message[[]byte]{Key: key, Time: t0, Headers: []Header{{Key: hkey, Value: hval}}}, value: value},
			{msg: Message[[]byte]{Key: value, Time: t0.Add(time.Duration(delta) * time.Millisecond)}, value: key},
		}
		var b encBuf
		require.NoError(t, encodeBatch(&b, recs, c, time.Now()))
		var rs protocol.RecordSet
		_, err := rs.ReadFrom(bytes.NewReader(b.out))
		require.NoError(t, err)
		for i, want := range recs {
			got, err := rs.Records.ReadRecord()
			require.NoError(t, err)
			require.Equal(t, want.msg.Time.UnixMilli(), got.Time.UnixMilli(), "record %d", i)
			require.Equal(t, want.msg.Key == nil, got.Key == nil, "record %d null key", i)
			require.Equal(t, want.value == nil, got.Value == nil, "record %d null value", i)
			require.Equal(t, string(want.msg.Key), readAll(t, got.Key))
			require.Equal(t, string(want.value), readAll(t, got.Value))
			require.Len(t, got.Headers, len(want.msg.Headers))
			for j, h := range want.msg.Headers {
				require.Equal(t, h.Key, got.Headers[j].Key)
				require.Equal(t, string(h.Value), string(got.Headers[j].Value))
			}
		}
	})
}
