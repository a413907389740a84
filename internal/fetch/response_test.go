package fetch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/fetch"
	"github.com/stretchr/testify/require"
)

// kafkaGoResponse builds a response with kafka-go's types: two topics, an
// errored partition, aborted transactions, records with every codec.
func kafkaGoResponse() *fetch.Response {
	recs := func(attrs Attributes, n int) protocol.RecordSet {
		var in []protocol.Record
		for i := range n {
			in = append(in, protocol.Record{Key: protocol.NewBytes([]byte{byte(i)}), Value: protocol.NewBytes(bytes.Repeat([]byte("v"), i))})
		}
		return protocol.RecordSet{Version: 2, Attributes: protocol.Attributes(attrs), Records: protocol.NewRecordReader(in...)}
	}
	return &fetch.Response{
		ThrottleTimeMs: 25,
		ErrorCode:      0,
		SessionID:      12345,
		Topics: []fetch.ResponseTopic{
			{Topic: "orders", Partitions: []fetch.ResponsePartition{
				{Partition: 0, HighWatermark: 100, LastStableOffset: 90, LogStartOffset: 5,
					AbortedTransactions:  []fetch.ResponseTransaction{{ProducerID: 7, FirstOffset: 12}, {ProducerID: 8, FirstOffset: 3}},
					PreferredReadReplica: 2, RecordSet: recs(0, 3)},
				{Partition: 1, HighWatermark: 10, LastStableOffset: 10, LogStartOffset: 0, PreferredReadReplica: -1,
					RecordSet: recs(Attributes(1), 5)}, // gzip
				{Partition: 2, ErrorCode: int16(kafka.OffsetOutOfRange), HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1,
					PreferredReadReplica: -1, RecordSet: recs(Attributes(3), 1)},
			}},
			{Topic: "payments", Partitions: []fetch.ResponsePartition{
				{Partition: 7, HighWatermark: 3, LastStableOffset: 3, LogStartOffset: 0, PreferredReadReplica: -1,
					RecordSet: recs(Attributes(4), 2)}, // zstd
			}},
		},
	}
}

// encodeKafkaGoResponse returns the body (after the correlation id) kafka-go
// writes for msg.
func encodeKafkaGoResponse(t testing.TB, version int16, msg protocol.Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, protocol.WriteResponse(&buf, version, 99, msg))
	frame := buf.Bytes()
	require.Equal(t, len(frame)-4, int(binary.BigEndian.Uint32(frame)))
	require.Equal(t, int32(99), int32(binary.BigEndian.Uint32(frame[4:])))
	return frame[8:]
}

// Every version's encoding by kafka-go decodes to the fields it carries;
// the records decode to what kafka-go itself reads back.
func TestDecodeFetchResponseMatchesKafkaGo(t *testing.T) {
	for v := MinVersion; v <= MaxVersion; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			want := kafkaGoResponse()
			body := encodeKafkaGoResponse(t, v, want)

			got, err := DecodeFetchResponse(v, body)
			require.NoError(t, err)
			require.Equal(t, int32(25), got.ThrottleMillis)
			if v >= 7 {
				require.Equal(t, int32(12345), got.SessionID)
			} else {
				require.Zero(t, got.SessionID)
			}
			require.NoError(t, got.Err)

			// kafka-go's decoding of the same bytes, field by field.
			frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
			frame = binary.BigEndian.AppendUint32(frame, 99)
			_, msg, err := protocol.ReadResponse(bytes.NewReader(append(frame, body...)), protocol.Fetch, v)
			require.NoError(t, err)
			kg := msg.(*fetch.Response)

			i := 0
			for _, tp := range kg.Topics {
				for _, kp := range tp.Partitions {
					p := got.Partitions[i]
					i++
					require.Equal(t, tp.Topic, p.Topic)
					require.Equal(t, kp.Partition, p.Partition)
					if kp.ErrorCode == 0 {
						require.NoError(t, p.Err)
					} else {
						require.Equal(t, kafka.Error(kp.ErrorCode), p.Err)
					}
					require.Equal(t, kp.HighWatermark, p.HighWatermark)
					require.Equal(t, kp.LastStableOffset, p.LastStableOffset)
					if v >= 5 {
						require.Equal(t, kp.LogStartOffset, p.LogStartOffset)
					} else {
						require.Equal(t, int64(-1), p.LogStartOffset)
					}
					require.Len(t, p.AbortedTransactions, len(kp.AbortedTransactions))
					for j, at := range kp.AbortedTransactions {
						require.Equal(t, AbortedTxn{ProducerID: at.ProducerID, FirstOffset: at.FirstOffset}, p.AbortedTransactions[j])
					}
					if v >= 11 {
						require.Equal(t, kp.PreferredReadReplica, p.PreferredReadReplica)
					} else {
						require.Equal(t, int32(-1), p.PreferredReadReplica)
					}

					d, err := DecodeRecords(&p, 0, Options{})
					require.NoError(t, err)
					var kgRecs []*protocol.Record
					for {
						r, err := kp.RecordSet.Records.ReadRecord()
						if err != nil {
							break
						}
						kgRecs = append(kgRecs, r)
						require.Equal(t, r.Offset, d.Records[len(kgRecs)-1].Offset)
						key, err := protocol.ReadAll(r.Key)
						require.NoError(t, err)
						value, err := protocol.ReadAll(r.Value)
						require.NoError(t, err)
						require.Equal(t, key, d.Records[len(kgRecs)-1].Key)
						require.Equal(t, string(value), string(d.Records[len(kgRecs)-1].Value))
						require.Equal(t, r.Time.UnixMilli(), d.Records[len(kgRecs)-1].Timestamp.UnixMilli())
					}
					require.Len(t, d.Records, len(kgRecs))
					require.Equal(t, int64(len(kgRecs)), d.NextOffset)
				}
			}
			require.Len(t, got.Partitions, i)
			require.Equal(t, 4, i)
		})
	}
}

// handResponse encodes a v11 body by hand, for what kafka-go cannot write:
// null aborted transactions and a null record set.
func handResponse(errCode int16, abortedCount int32, records []byte) []byte {
	be := binary.BigEndian
	b := be.AppendUint32(nil, 0)            // throttle
	b = be.AppendUint16(b, uint16(errCode)) // error
	b = be.AppendUint32(b, 0)               // session
	b = be.AppendUint32(b, 1)               // topics
	b = be.AppendUint16(b, 1)
	b = append(b, 't')
	b = be.AppendUint32(b, 1)                    // partitions
	b = be.AppendUint32(b, 3)                    // index
	b = be.AppendUint16(b, 0)                    // error
	b = be.AppendUint64(b, 10)                   // hw
	b = be.AppendUint64(b, 10)                   // lso
	b = be.AppendUint64(b, 0)                    // log start
	b = be.AppendUint32(b, uint32(abortedCount)) // aborted
	for range max(abortedCount, 0) {
		b = be.AppendUint64(b, 1)
		b = be.AppendUint64(b, 2)
	}
	b = be.AppendUint32(b, 0xffffffff) // preferred replica
	if records == nil {
		return be.AppendUint32(b, 0xffffffff)
	}
	b = be.AppendUint32(b, uint32(len(records)))
	return append(b, records...)
}

func TestDecodeFetchResponseNulls(t *testing.T) {
	r, err := DecodeFetchResponse(11, handResponse(int16(kafka.FetchSessionIDNotFound), -1, nil))
	require.NoError(t, err)
	require.Equal(t, kafka.FetchSessionIDNotFound, r.Err)
	require.Len(t, r.Partitions, 1)
	p := r.Partitions[0]
	require.Nil(t, p.AbortedTransactions)
	require.Nil(t, p.Records)
	require.Equal(t, int32(3), p.Partition)

	r, err = DecodeFetchResponse(11, handResponse(0, 0, []byte{}))
	require.NoError(t, err)
	require.NotNil(t, r.Partitions[0].Records)
	require.Empty(t, r.Partitions[0].Records)

	r, err = DecodeFetchResponse(11, handResponse(0, 2, []byte("xyz")))
	require.NoError(t, err)
	require.Equal(t, []AbortedTxn{{1, 2}, {1, 2}}, r.Partitions[0].AbortedTransactions)
	require.Equal(t, "xyz", string(r.Partitions[0].Records))
}

// Records alias the body: no copy.
func TestDecodeFetchResponseZeroCopy(t *testing.T) {
	body := handResponse(0, 0, []byte("records"))
	r, err := DecodeFetchResponse(11, body)
	require.NoError(t, err)
	rec := r.Partitions[0].Records
	require.Same(t, &body[len(body)-len("records")], &rec[0])
	require.Equal(t, len(rec), cap(rec))
}

func TestDecodeFetchResponseMalformed(t *testing.T) {
	body := encodeKafkaGoResponse(t, 11, kafkaGoResponse())
	for n := range len(body) {
		_, err := DecodeFetchResponse(11, body[:n])
		require.ErrorIs(t, err, ErrMalformedResponse, "prefix %d", n)
	}
	_, err := DecodeFetchResponse(11, append(bytes.Clone(body), 0))
	require.ErrorIs(t, err, ErrMalformedResponse)

	// The wrong version's layout does not fit.
	_, err = DecodeFetchResponse(10, body)
	require.ErrorIs(t, err, ErrMalformedResponse)

	// Hostile counts allocate nothing.
	hostile := handResponse(0, 0, nil)
	binary.BigEndian.PutUint32(hostile[10:], 1<<30) // topics
	allocated := bytesAllocated(func() {
		_, err := DecodeFetchResponse(11, hostile)
		require.ErrorIs(t, err, ErrMalformedResponse)
	})
	require.Less(t, allocated, uint64(4096))

	_, err = DecodeFetchResponse(3, body)
	require.Error(t, err)
	_, err = DecodeFetchResponse(12, body)
	require.Error(t, err)
}
