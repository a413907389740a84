package fetch

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// fuzzMaxBatch keeps decompression small while fuzzing.
const fuzzMaxBatch = 1 << 20

// seedBatches are valid batches of every kind, as fuzz seeds.
func seedBatches(t testing.TB) [][]byte {
	var out [][]byte
	for _, c := range codecCases {
		tb := newTestBatch(5, 0)
		tb.attrs, tb.rawSnappy = c.attrs, c.rawSnappy
		tb.records = mixedRecords()[:4]
		out = append(out, tb.encode(t))
		tb.attrs |= AttrLogAppendTime
		out = append(out, tb.txn(9).encode(t))
	}
	out = append(out, controlBatch(3, 9, true).encode(t), controlBatch(4, 9, false).encode(t))
	return out
}

// FuzzDecodeBatch: any bytes decode to a batch or an error, never a panic;
// a decoded batch is consistent with its header, and DecodeRecords over the
// same bytes agrees.
func FuzzDecodeBatch(f *testing.F) {
	for _, b := range seedBatches(f) {
		f.Add(b)
	}
	for _, fx := range loadFixtures(f) {
		for _, p := range fx.resp.Partitions {
			if len(p.Records) > 0 {
				_, n, err := DecodeBatch(p.Records, 0)
				if err == nil && n < 4096 {
					f.Add(p.Records[:n])
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkBatch(t, data)
		// Most mutations break the CRC, which stops decoding at the
		// header; fix the length and CRC too, so the fuzzer reaches the
		// records and the codecs.
		if len(data) >= batchHeaderSize && data[magicPos] == magicV2 {
			fixed := bytes.Clone(data)
			binary.BigEndian.PutUint32(fixed[8:], uint32(len(fixed)-batchOffsetsSize))
			checkBatch(t, withCRC(fixed))
		}
	})
}

// checkBatch decodes data as a batch and as a record set, checking the
// results against each other.
func checkBatch(t *testing.T, data []byte) {
	b, n, err := DecodeBatch(data, fuzzMaxBatch)
	if n < 0 || n > len(data) {
		t.Fatalf("size %d of %d bytes", n, len(data))
	}
	if err == nil {
		if len(b.Records) != int(b.NumRecords) {
			t.Fatalf("%d records, header says %d", len(b.Records), b.NumRecords)
		}
		for _, r := range b.Records {
			if cap(r.Key) != len(r.Key) || cap(r.Value) != len(r.Value) {
				t.Fatalf("unclipped slices")
			}
			if r.Offset < b.BaseOffset || r.Offset > b.LastOffset() {
				t.Fatalf("record offset %d outside batch %d-%d", r.Offset, b.BaseOffset, b.LastOffset())
			}
		}
	}
	for _, iso := range []IsolationLevel{ReadUncommitted, ReadCommitted} {
		p := &PartitionResponse{LastStableOffset: 1 << 40, Records: data,
			AbortedTransactions: []AbortedTxn{{ProducerID: b.ProducerID, FirstOffset: b.BaseOffset}}}
		d, derr := DecodeRecords(p, 3, Options{Isolation: iso, MaxBatchBytes: fuzzMaxBatch})
		if d.NextOffset < 3 {
			t.Fatalf("next offset %d below the fetch offset", d.NextOffset)
		}
		prev := int64(2)
		for _, r := range d.Records {
			if r.Offset <= prev || r.Offset >= d.NextOffset {
				t.Fatalf("record at %d after %d, next offset %d", r.Offset, prev, d.NextOffset)
			}
			prev = r.Offset
		}
		if err == nil && n == len(data) && derr != nil {
			t.Fatalf("batch decodes alone but not in a record set: %v", derr)
		}
	}
}

// FuzzDecodeFetchResponse: any body, at any version, decodes or fails
// cleanly, and so do the record sets of what decodes.
func FuzzDecodeFetchResponse(f *testing.F) {
	for v := MinVersion; v <= MaxVersion; v++ {
		f.Add(v, encodeKafkaGoResponse(f, v, kafkaGoResponse()))
	}
	f.Add(int16(11), handResponse(0, -1, nil))
	f.Add(int16(11), handResponse(0, 2, recordSet(f, newTestBatch(0, 2).txn(1), controlBatch(2, 1, true))))
	for _, fx := range loadFixtures(f) {
		if len(fx.body) < 64<<10 {
			f.Add(fx.Version, fx.body)
		}
	}
	f.Fuzz(func(t *testing.T, version int16, body []byte) {
		r, err := DecodeFetchResponse(version, body)
		if err != nil {
			return
		}
		for i := range r.Partitions {
			p := &r.Partitions[i]
			for _, iso := range []IsolationLevel{ReadUncommitted, ReadCommitted} {
				d, _ := DecodeRecords(p, 0, Options{Isolation: iso, MaxBatchBytes: fuzzMaxBatch})
				if d.NextOffset < 0 {
					t.Fatalf("next offset %d", d.NextOffset)
				}
			}
		}
	})
}
