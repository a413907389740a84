package fetch

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
)

// TimestampType tells what a record's timestamp means.
type TimestampType int8

const (
	// CreateTime: the producer's timestamp.
	CreateTime TimestampType = 0
	// LogAppendTime: the time the broker appended the batch (topic config
	// message.timestamp.type=LogAppendTime); every record of the batch has
	// the batch's max timestamp.
	LogAppendTime TimestampType = 1
)

func (t TimestampType) String() string {
	if t == LogAppendTime {
		return "LogAppendTime"
	}
	return "CreateTime"
}

// Record is one record of a v2 batch.
//
// Key, Value and header values are nil when null and non-nil when empty;
// they alias the buffer the batch was decoded from, with their capacity
// clipped to their length (appending to one copies it).
type Record struct {
	Offset int64
	Key    []byte
	Value  []byte
	// Headers are the record's headers in order, nil when it has none.
	Headers []kafka.Header
	// Timestamp is the producer's time (CreateTime) or the broker's
	// (LogAppendTime), with millisecond precision; the zero time when the
	// batch carries none (-1).
	Timestamp     time.Time
	TimestampType TimestampType
	// LeaderEpoch is the partition leader epoch the batch was written in, -1
	// when unknown.
	LeaderEpoch int32
	// ProducerID is the producer id of an idempotent or transactional
	// producer's batch, -1 otherwise.
	ProducerID int64
	// Transactional reports a record written inside a transaction.
	Transactional bool
}

// appendRecords parses the uncompressed records section of b and appends
// its records to dst. Every length is checked against the bytes left, so
// hostile lengths and counts allocate nothing beyond what recs can hold.
func appendRecords(dst []Record, b *Batch, recs []byte) ([]Record, error) {
	n := int(b.NumRecords)
	if n > len(recs)/minRecordSize {
		return dst, corrupt("%d records in %d bytes", n, len(recs))
	}
	dst = slices.Grow(dst, n)
	tsType := b.Attributes.TimestampType()
	var headers []kafka.Header // shared by the batch's records, sliced per record
	pos := 0
	prevDelta := int64(-1)
	for i := 0; i < n; i++ {
		length, m := binary.Varint(recs[pos:])
		if m <= 0 || length < 0 || length > int64(len(recs)-pos-m) {
			return dst, corrupt("record %d: length", i)
		}
		pos += m
		body := recs[pos : pos+int(length)]
		pos += int(length)

		r := Record{
			TimestampType: tsType,
			LeaderEpoch:   b.PartitionLeaderEpoch,
			ProducerID:    b.ProducerID,
			Transactional: b.Attributes.Transactional(),
		}
		p := recordParser{b: body, ok: len(body) > 0}
		p.b = p.b[min(1, len(p.b)):] // record attributes: unused
		tsDelta := p.varint()
		// Offsets increase within a batch and end at its last offset
		// (compaction leaves gaps but keeps the order): anything else would
		// deliver a record twice or out of order.
		delta := p.varint()
		if delta <= prevDelta || delta > int64(b.LastOffsetDelta) {
			return dst, corrupt("record %d: offset delta %d after %d, last %d", i, delta, prevDelta, b.LastOffsetDelta)
		}
		prevDelta = delta
		r.Offset = b.BaseOffset + delta
		r.Key = p.bytes()
		r.Value = p.bytes()
		if nh := p.varint(); nh != 0 {
			// Each header takes at least 2 bytes (key and value lengths).
			if nh < 0 || nh > int64(len(p.b)/2) {
				return dst, corrupt("record %d: %d headers", i, nh)
			}
			if cap(headers)-len(headers) < int(nh) {
				headers = make([]kafka.Header, 0, max(int(nh), len(headers)*2, 4))
			}
			start := len(headers)
			for range nh {
				headers = append(headers, kafka.Header{Key: string(p.nonNullBytes()), Value: p.bytes()})
			}
			r.Headers = headers[start:len(headers):len(headers)]
		}
		if !p.ok || len(p.b) != 0 {
			return dst, corrupt("record %d: fields do not fill its length", i)
		}
		ts := b.BaseTimestamp + tsDelta
		if tsType == LogAppendTime {
			ts = b.MaxTimestamp
		}
		if ts != -1 {
			r.Timestamp = time.UnixMilli(ts)
		}
		dst = append(dst, r)
	}
	if pos != len(recs) {
		return dst, corrupt("%d bytes after the last record", len(recs)-pos)
	}
	return dst, nil
}

// recordParser reads the varint-encoded fields of one record; the first
// read past its end sets ok to false.
type recordParser struct {
	b  []byte
	ok bool
}

func (p *recordParser) varint() int64 {
	v, n := binary.Varint(p.b)
	if n <= 0 {
		p.ok = false
		p.b = nil
		return 0
	}
	p.b = p.b[n:]
	return v
}

// bytes reads varint-length bytes: nil for -1, a non-nil empty slice for 0.
func (p *recordParser) bytes() []byte {
	n := p.varint()
	if n < 0 {
		if n != -1 {
			p.ok = false
		}
		return nil
	}
	if n > int64(len(p.b)) {
		p.ok = false
		p.b = nil
		return nil
	}
	v := p.b[:n:n]
	p.b = p.b[n:]
	return v
}

// nonNullBytes reads a header key, which is never null.
func (p *recordParser) nonNullBytes() []byte {
	v := p.bytes()
	if v == nil {
		p.ok = false
	}
	return v
}
