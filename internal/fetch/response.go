package fetch

import (
	"fmt"

	"github.com/segmentio/kafka-go"
)

// Fetch response versions this package decodes: 4 (the oldest Kafka 4 still
// serves, with last stable offsets and aborted transactions) to 11 (the last
// before the flexible encoding of v12).
const (
	MinVersion int16 = 4
	MaxVersion int16 = 11
)

// Response is a decoded Fetch response.
type Response struct {
	// ThrottleMillis is how long the broker asks the client to wait before
	// its next request (quota throttling), in milliseconds.
	ThrottleMillis int32
	// Err is the response-level error (v7+: fetch session errors such as
	// kafka.FetchSessionIDNotFound), a kafka.Error, or nil.
	Err error
	// SessionID is the fetch session (KIP-227) the broker created or kept
	// (v7+); 0 when there is none.
	SessionID int32
	// Partitions are the partitions of the response, in response order
	// (topic by topic).
	Partitions []PartitionResponse
}

// PartitionResponse is one partition of a Fetch response.
type PartitionResponse struct {
	// Topic is the partition's topic; partitions of one topic share the
	// string.
	Topic string
	// Partition is the partition index.
	Partition int32
	// Err is the partition's error (a kafka.Error such as
	// kafka.OffsetOutOfRange or kafka.NotLeaderForPartition), or nil.
	Err error
	// HighWatermark is the offset after the last committed (replicated)
	// record.
	HighWatermark int64
	// LastStableOffset is the offset of the first record of the earliest
	// open transaction, or the high watermark when none is open; -1 when
	// unknown.
	LastStableOffset int64
	// LogStartOffset is the partition's first offset (v5+); -1 when absent.
	LogStartOffset int64
	// AbortedTransactions lists the aborted transactions overlapping the
	// returned records. The broker fills it only for read-committed fetches.
	AbortedTransactions []AbortedTxn
	// PreferredReadReplica is the replica the broker asks the consumer to
	// fetch from instead (v11, KIP-392); -1 when none.
	PreferredReadReplica int32
	// Records is the partition's record set: a sequence of record batches,
	// possibly ending with a partial one. It aliases the response body; nil
	// when the broker sent a null record set.
	Records []byte
}

// AbortedTxn is an aborted transaction: its producer's records from
// FirstOffset up to that producer's abort marker are to be dropped by a
// read-committed consumer.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
}

// errorOf maps a Kafka error code to a kafka.Error, or nil for 0.
func errorOf(code int16) error {
	if code == 0 {
		return nil
	}
	return kafka.Error(code)
}

// DecodeFetchResponse decodes the body of a Fetch response of the given
// version, from after the correlation id to the end of the frame. Record
// sets are not decoded (see [DecodeRecords]); they alias body.
//
// Errors wrap [ErrMalformedResponse] when the body does not match the version
// (too short, counts larger than the body, bytes left over).
func DecodeFetchResponse(version int16, body []byte) (*Response, error) {
	if version < MinVersion || version > MaxVersion {
		return nil, fmt.Errorf("fetch: response version %d not supported (%d to %d)", version, MinVersion, MaxVersion)
	}
	c := newCursor(body)
	r := &Response{ThrottleMillis: c.int32()}
	if version >= 7 {
		r.Err = errorOf(c.int16())
		r.SessionID = c.int32()
	}

	// Smallest encodings, to bound counts by the bytes present.
	// A topic: empty name, empty partition array. A partition: index,
	// error, high watermark, last stable offset, aborted, records.
	const minTopic = 2 + 4
	minPartition := 4 + 2 + 8 + 8 + 4 + 4
	if version >= 5 {
		minPartition += 8 // log start offset
	}
	if version >= 11 {
		minPartition += 4 // preferred read replica
	}

	nTopics := c.count(minTopic)
	for range nTopics {
		topic := c.string()
		nParts := c.count(minPartition)
		if !c.ok {
			break
		}
		if r.Partitions == nil {
			// At least one partition per topic is the common case; the
			// bound above keeps this allocation within the body's size.
			r.Partitions = make([]PartitionResponse, 0, max(nParts, nTopics))
		}
		for range nParts {
			p := PartitionResponse{
				Topic:                topic,
				Partition:            c.int32(),
				Err:                  errorOf(c.int16()),
				HighWatermark:        c.int64(),
				LastStableOffset:     c.int64(),
				LogStartOffset:       -1,
				PreferredReadReplica: -1,
			}
			if version >= 5 {
				p.LogStartOffset = c.int64()
			}
			if n := c.count(16); n > 0 {
				p.AbortedTransactions = make([]AbortedTxn, n)
				for i := range p.AbortedTransactions {
					p.AbortedTransactions[i] = AbortedTxn{ProducerID: c.int64(), FirstOffset: c.int64()}
				}
			}
			if version >= 11 {
				p.PreferredReadReplica = c.int32()
			}
			p.Records = c.nullableBytes()
			if !c.ok {
				break
			}
			r.Partitions = append(r.Partitions, p)
		}
	}
	if !c.ok {
		return nil, fmt.Errorf("%w: version %d: body of %d bytes ends early", ErrMalformedResponse, version, len(body))
	}
	if len(c.b) != 0 {
		return nil, fmt.Errorf("%w: version %d: %d bytes left over", ErrMalformedResponse, version, len(c.b))
	}
	return r, nil
}
