package mqs3

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mqkit/mq"
)

// Record is one Kafka record as a backup object holds it: one JSON line.
//
// Bytes (key, value, header values) are base64 strings in JSON, and a null
// stays distinct from an empty value: nil encodes as null and decodes back to
// nil, an empty slice encodes as "" and decodes back to an empty, non-nil
// slice. A null value is a tombstone.
type Record struct {
	Topic     string
	Partition int
	Offset    int64
	Time      time.Time // the record's timestamp, kept to the millisecond as Kafka does
	Key       []byte
	Value     []byte
	Headers   []mq.Header
}

// RecordOf returns the record a consumed message was read from: its raw
// value bytes (not the decoded T), key, headers, timestamp and position.
func RecordOf[T any](msg mq.Message[T]) Record {
	value := msg.Raw
	if msg.Tombstone {
		value = nil
	}
	return Record{
		Topic:     msg.Topic,
		Partition: msg.Partition,
		Offset:    msg.Offset,
		Time:      msg.Time,
		Key:       msg.Key,
		Value:     value,
		Headers:   msg.Headers,
	}
}

// Message returns the record as a message to produce: key, value, headers
// and timestamp (a null value becomes a tombstone).
func (r Record) Message() mq.Message[[]byte] {
	return mq.Message[[]byte]{
		Key:       r.Key,
		Value:     r.Value,
		Headers:   r.Headers,
		Time:      r.Time,
		Tombstone: r.Value == nil,
	}
}

// line is the JSON form of a Record. encoding/json writes []byte as base64
// and nil as null, and reads "" back as an empty non-nil slice.
type line struct {
	Topic     string       `json:"topic"`
	Partition int          `json:"partition"`
	Offset    int64        `json:"offset"`
	Timestamp int64        `json:"timestamp"` // milliseconds since the Unix epoch
	Key       []byte       `json:"key"`
	Value     []byte       `json:"value"`
	Headers   []headerLine `json:"headers,omitempty"`
}

type headerLine struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// MarshalJSON encodes the record as one JSON object (no newline).
func (r Record) MarshalJSON() ([]byte, error) {
	l := line{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Time.UnixMilli(),
		Key: r.Key, Value: r.Value}
	if len(r.Headers) > 0 {
		l.Headers = make([]headerLine, len(r.Headers))
		for i, h := range r.Headers {
			l.Headers[i] = headerLine{Key: h.Key, Value: h.Value}
		}
	}
	return json.Marshal(l)
}

// UnmarshalJSON decodes a record written by MarshalJSON.
func (r *Record) UnmarshalJSON(data []byte) error {
	var l line
	if err := json.Unmarshal(data, &l); err != nil {
		return err
	}
	if l.Offset < 0 || l.Partition < 0 {
		return fmt.Errorf("record at partition %d offset %d: negative position", l.Partition, l.Offset)
	}
	*r = Record{Topic: l.Topic, Partition: l.Partition, Offset: l.Offset, Time: time.UnixMilli(l.Timestamp),
		Key: l.Key, Value: l.Value}
	if len(l.Headers) > 0 {
		r.Headers = make([]mq.Header, len(l.Headers))
		for i, h := range l.Headers {
			r.Headers[i] = mq.Header{Key: h.Key, Value: h.Value}
		}
	}
	return nil
}
