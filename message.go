package mq

import (
	"time"

	"github.com/segmentio/kafka-go"
)

// Header is a Kafka record header. It is kafka-go's type, so headers pass
// through without copying.
type Header = kafka.Header

// Message is one Kafka record carrying a value of type T.
//
// When consuming, every field is filled from the fetched record. When
// producing, Key (nil is sent as a null key, an empty slice as an empty
// one), Value (encoded by the codec) or Tombstone, Headers and Time are sent
// (a zero Time is stamped with the current time); Topic names the topic to
// write to (empty: the producer's own); Partition is used only with
// [WithManualPartitioning] (otherwise the balancer chooses); Offset and
// HighWaterMark are ignored. A delivered message reports its Topic,
// Partition and Offset back (see [Result]).
type Message[T any] struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     T
	Headers   []Header
	Time      time.Time

	// Tombstone marks a record whose value is null: on compacted topics, a
	// delete marker for its key. When producing, true sends a null value
	// (Value is ignored and the codec is not called). When consuming, it is
	// true for null-valued records, whose Value is T's zero value (the codec
	// is not called, so a tombstone is never a poison message) and whose Raw
	// is nil; an empty value is not a tombstone (Raw is then empty, not nil).
	Tombstone bool

	// HighWaterMark is the partition's end offset when the record was
	// fetched (consumer side only); HighWaterMark-Offset-1 is the lag.
	HighWaterMark int64

	// Raw holds the undecoded value bytes (consumer side only). Do not
	// modify it.
	Raw []byte
}

// Header returns the value of the last header named key, and whether it exists.
func (m *Message[T]) Header(key string) ([]byte, bool) {
	for i := len(m.Headers) - 1; i >= 0; i-- {
		if m.Headers[i].Key == key {
			return m.Headers[i].Value, true
		}
	}
	return nil, false
}

// Result reports where a produced message was written.
type Result struct {
	Topic     string
	Partition int
	// Offset is the record's offset, or -1 when it is unknown
	// (RequiredAcks none).
	Offset int64
	// Time is the broker's log append time when the topic uses it,
	// otherwise the record's timestamp.
	Time time.Time
}
