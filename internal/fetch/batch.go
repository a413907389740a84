package fetch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/segmentio/kafka-go/compress"
)

// Attributes are a record batch's attribute bits.
type Attributes int16

// Attribute bits of a v2 record batch (bits 0-2 are the compression codec).
const (
	AttrCompressionMask Attributes = 0x07
	AttrLogAppendTime   Attributes = 1 << 3
	AttrTransactional   Attributes = 1 << 4
	AttrControl         Attributes = 1 << 5
)

// Compression is the codec of the batch's records section.
func (a Attributes) Compression() compress.Compression {
	return compress.Compression(a & AttrCompressionMask)
}

// TimestampType is CreateTime, or LogAppendTime when the broker stamped the
// batch (topic config message.timestamp.type=LogAppendTime).
func (a Attributes) TimestampType() TimestampType {
	if a&AttrLogAppendTime != 0 {
		return LogAppendTime
	}
	return CreateTime
}

// Transactional reports a batch written inside a transaction.
func (a Attributes) Transactional() bool { return a&AttrTransactional != 0 }

// Control reports a control batch: a transaction marker, never a user record.
func (a Attributes) Control() bool { return a&AttrControl != 0 }

// Batch is a decoded v2 record batch (KIP-98).
type Batch struct {
	BaseOffset int64
	// Length is the batch length field: the size of the batch after it.
	Length               int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           Attributes
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	// NumRecords is the record count the header states.
	NumRecords int32
	// Records are the batch's records, in batch order.
	Records []Record
}

// LastOffset is the offset of the batch's last record as written; it stays
// the same when compaction removes records.
func (b *Batch) LastOffset() int64 { return b.BaseOffset + int64(b.LastOffsetDelta) }

// NextOffset is the offset after the batch.
func (b *Batch) NextOffset() int64 { return b.LastOffset() + 1 }

// Layout of a v2 batch header.
const (
	batchOffsetsSize  = 8 + 4 // base offset, batch length: the part before Length counts
	magicPos          = 16    // the magic byte, at the same place in every format
	crcPos            = 17
	attributesPos     = 21 // CRC-32C covers from here to the end of the batch
	batchHeaderSize   = 61
	minRecordSize     = 7 // length, attributes, 2 deltas, null key, null value, 0 headers: 1 byte each
	controlRecordSize = 4 // control record key: version int16, type int16
	magicV2           = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// parseBatchHeader reads the batch at the start of data and checks its CRC.
// It returns the header (Records nil), the records section (compressed or
// not, aliasing data) and the size of the whole batch. A data shorter than
// the batch it starts is ErrTruncated; a magic other than 2 is a BatchError
// with ErrUnsupportedMagic.
func parseBatchHeader(data []byte) (Batch, []byte, int, error) {
	var b Batch
	if len(data) < batchOffsetsSize {
		return b, nil, 0, ErrTruncated
	}
	be := binary.BigEndian
	b.BaseOffset = int64(be.Uint64(data))
	b.Length = int32(be.Uint32(data[8:]))
	size := int64(batchOffsetsSize) + int64(b.Length)
	if size <= magicPos {
		return b, nil, 0, &BatchError{Offset: b.BaseOffset, NextOffset: -1, Magic: -1,
			Err: corrupt("batch length %d", b.Length)}
	}
	if int64(len(data)) < size {
		return b, nil, 0, ErrTruncated
	}
	b.Magic = int8(data[magicPos])
	if b.Magic == magicV2 && size < batchHeaderSize {
		return b, nil, int(size), &BatchError{Offset: b.BaseOffset, NextOffset: -1, Magic: b.Magic,
			Err: corrupt("batch length %d", b.Length)}
	}
	if b.Magic != magicV2 {
		// A v0/v1 message set entry: offset, size, then the message. Its
		// offset is that of its last (for a compressed wrapper) message.
		return b, nil, int(size), &BatchError{Offset: b.BaseOffset, NextOffset: b.BaseOffset + 1, Magic: b.Magic,
			Err: fmt.Errorf("%w: magic %d (message format v0/v1 is not decoded)", ErrUnsupportedMagic, b.Magic)}
	}
	data = data[:size]
	b.PartitionLeaderEpoch = int32(be.Uint32(data[12:]))
	b.CRC = be.Uint32(data[crcPos:])
	if got := crc32.Checksum(data[attributesPos:], castagnoli); got != b.CRC {
		return b, nil, int(size), &BatchError{Offset: b.BaseOffset, NextOffset: -1, Magic: b.Magic,
			Err: corrupt("CRC-32C %08x, computed %08x", b.CRC, got)}
	}
	b.Attributes = Attributes(be.Uint16(data[attributesPos:]))
	b.LastOffsetDelta = int32(be.Uint32(data[23:]))
	b.BaseTimestamp = int64(be.Uint64(data[27:]))
	b.MaxTimestamp = int64(be.Uint64(data[35:]))
	b.ProducerID = int64(be.Uint64(data[43:]))
	b.ProducerEpoch = int16(be.Uint16(data[51:]))
	b.BaseSequence = int32(be.Uint32(data[53:]))
	b.NumRecords = int32(be.Uint32(data[57:]))
	if b.NumRecords < 0 || b.LastOffsetDelta < 0 {
		return b, nil, int(size), &BatchError{Offset: b.BaseOffset, NextOffset: -1, Magic: b.Magic,
			Err: corrupt("%d records, last offset delta %d", b.NumRecords, b.LastOffsetDelta)}
	}
	return b, data[batchHeaderSize:], int(size), nil
}

// DecodeBatch decodes the record batch at the start of data, returning it
// and its size in bytes (data may hold more batches after it). Errors:
// ErrTruncated when data ends inside the batch, a *BatchError otherwise.
// Records alias data, or a new buffer for a compressed batch; maxBatchBytes
// bounds the decompressed size (0 means DefaultMaxBatchBytes).
func DecodeBatch(data []byte, maxBatchBytes int) (Batch, int, error) {
	b, recs, n, err := parseBatchHeader(data)
	if err != nil {
		return b, n, err
	}
	b.Records, err = decodeRecordsSection(&b, recs, nil, limitOrDefault(maxBatchBytes))
	if err != nil {
		return b, n, &BatchError{Offset: b.BaseOffset, NextOffset: b.NextOffset(), Magic: b.Magic, Err: err}
	}
	return b, n, nil
}

func limitOrDefault(n int) int {
	if n <= 0 {
		return DefaultMaxBatchBytes
	}
	return n
}

// decodeRecordsSection decompresses recs if needed and appends the batch's
// records to dst.
func decodeRecordsSection(b *Batch, recs []byte, dst []Record, limit int) ([]Record, error) {
	if c := b.Attributes.Compression(); c != compress.None {
		var err error
		if recs, err = decompress(c, recs, limit); err != nil {
			return dst, err
		}
	} else if len(recs) > limit {
		return dst, fmt.Errorf("%w: %d bytes of records", ErrBatchTooLarge, len(recs))
	}
	return appendRecords(dst, b, recs)
}
