package produce

import (
	"time"

	"github.com/segmentio/kafka-go"
)

// Record is one record to produce. The caller fills Topic, Key, Value,
// Headers and Time (and Partition with Config.ManualPartitions); the engine
// fills Partition, Offset and LogAppendTime before reporting it to
// Config.Done. A nil Key or Value is sent as null, an empty one as empty.
// The engine owns the record from Produce until Done returns.
type Record struct {
	Topic     string
	Partition int32
	Key       []byte
	Value     []byte
	Headers   []kafka.Header
	Time      time.Time

	// Offset is the record's offset once delivered, -1 when unknown (acks
	// none, or a broker that did not say).
	Offset int64
	// LogAppendTime is the broker's append time when the topic uses
	// LogAppendTime, zero otherwise.
	LogAppendTime time.Time

	// Opaque is the caller's, untouched by the engine.
	Opaque any

	size     int       // approximate encoded size, for batch and request limits
	deadline time.Time // the delivery deadline
	gen      uint64    // the flush generation it was buffered in
	lastErr  error     // the last retriable error, for a timeout's message
	urgent   bool      // produced urgent while its topic had no metadata
}

// recordOverhead over-approximates the framing of a record in a v2 batch
// (length, attributes, deltas, key and value lengths, header count: at most
// 36 bytes) plus a share of the batch header, so that a lone record's
// estimate covers its whole batch.
const recordOverhead = 70

// Size returns the approximate encoded size of r in a batch, the figure
// the batch, request and message size limits are applied to.
func (r *Record) Size() int {
	n := len(r.Key) + len(r.Value) + recordOverhead
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 8
	}
	return n
}
