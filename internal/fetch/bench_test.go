package fetch

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"testing"

	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/protocol"
)

// benchRecordSet is a record set of 10 batches of 100 records with 1 KiB
// values (text from a small alphabet: compressible, not trivially) and
// 16-byte keys, with codec.
func benchRecordSet(b *testing.B, codec compress.Compression) ([]byte, int) {
	rng := rand.New(rand.NewSource(1))
	const alphabet = "abcdefghijklmnop {}\":,0123456789"
	var set []byte
	n := 0
	for batch := range 10 {
		tb := newTestBatch(int64(batch*100), 0)
		tb.attrs = Attributes(codec)
		for i := range 100 {
			v := make([]byte, 1024)
			for j := range v {
				v[j] = alphabet[rng.Intn(len(alphabet))]
			}
			k := make([]byte, 16)
			binary.BigEndian.PutUint64(k, uint64(n))
			tb.records = append(tb.records, testRecord{key: k, value: v, tsDelta: int64(i), offsetDelta: int64(i)})
			n++
		}
		set = append(set, tb.encode(b)...)
	}
	return set, n
}

var benchCodecs = []compress.Compression{compress.None, compress.Snappy, compress.Lz4, compress.Zstd, compress.Gzip}

// BenchmarkDecodeRecords decodes one partition's record set (1,000 records
// of 1 KiB) per op, with this package and, on the same bytes, with
// kafka-go's protocol.RecordSet (reading keys and values out, as its
// Reader does).
func BenchmarkDecodeRecords(b *testing.B) {
	for _, codec := range benchCodecs {
		set, n := benchRecordSet(b, codec)
		name := codec.String()
		b.Run(name+"/fetch", func(b *testing.B) {
			p := &PartitionResponse{LastStableOffset: -1, Records: set}
			b.SetBytes(int64(n * 1024))
			b.ReportAllocs()
			for range b.N {
				d, err := DecodeRecords(p, 0, Options{})
				if err != nil || len(d.Records) != n {
					b.Fatalf("%d records, %v", len(d.Records), err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		})
		b.Run(name+"/kafka-go", func(b *testing.B) {
			framed := binary.BigEndian.AppendUint32(nil, uint32(len(set)))
			framed = append(framed, set...)
			src := bytes.NewReader(framed)
			br := bufio.NewReaderSize(src, 64<<10)
			b.SetBytes(int64(n * 1024))
			b.ReportAllocs()
			for range b.N {
				src.Reset(framed)
				br.Reset(src)
				var rs protocol.RecordSet
				if _, err := rs.ReadFrom(br); err != nil {
					b.Fatal(err)
				}
				got := 0
				for {
					r, err := rs.Records.ReadRecord()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					key, err1 := protocol.ReadAll(r.Key)
					value, err2 := protocol.ReadAll(r.Value)
					if err1 != nil || err2 != nil || len(key) != 16 || len(value) != 1024 {
						b.Fatalf("record %d: %v %v", got, err1, err2)
					}
					got++
				}
				if got != n {
					b.Fatalf("%d records", got)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
