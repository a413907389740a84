package fetch

import (
	"errors"
	"fmt"
)

// Causes of a [BatchError], and of [DecodeFetchResponse] failures; test with
// errors.Is.
var (
	// ErrCorruptBatch: a batch's CRC-32C does not match, or its header or
	// records contradict its lengths or counts.
	ErrCorruptBatch = errors.New("fetch: corrupt record batch")
	// ErrUnsupportedMagic: a message set in format v0 or v1 (magic 0 or 1),
	// or an unknown magic. Kafka 4 writes only v2; older formats can survive
	// only in logs written before an upgrade. Such batches are reported, not
	// decoded (see [BatchError.NextOffset] to skip them).
	ErrUnsupportedMagic = errors.New("fetch: unsupported record batch magic")
	// ErrUnsupportedCompression: attribute bits 0-2 name no known codec.
	ErrUnsupportedCompression = errors.New("fetch: unsupported compression codec")
	// ErrBatchTooLarge: a batch decompresses to more than
	// [Options.MaxBatchBytes].
	ErrBatchTooLarge = errors.New("fetch: record batch too large")
	// ErrTruncated: the bytes end inside a batch. [DecodeRecords] treats a
	// truncated trailing batch as the normal end of a record set; only
	// [DecodeBatch] returns this error.
	ErrTruncated = errors.New("fetch: truncated record batch")
	// ErrMalformedResponse: a Fetch response body does not match its version.
	ErrMalformedResponse = errors.New("fetch: malformed fetch response")
)

// BatchError is a batch that cannot be decoded. Records before it are still
// returned by [DecodeRecords]; the consumer cannot go past it without a
// decision to skip it (as the Java client asks its user to seek past a
// corrupt record).
type BatchError struct {
	// Offset is the batch's base offset (for v0/v1 message sets, the offset of
	// the entry, which is the last offset of a compressed wrapper). It comes
	// from a field the CRC does not cover, so with ErrCorruptBatch it is a
	// hint.
	Offset int64
	// NextOffset is the offset after the batch as its header states, or -1
	// when the header cannot be trusted (a CRC mismatch).
	NextOffset int64
	// Magic is the batch's format version byte.
	Magic int8
	// Err is the cause: one of the Err* sentinels of this package, possibly
	// wrapping a codec's error.
	Err error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("fetch: record batch at offset %d (magic %d): %v", e.Offset, e.Magic, e.Err)
}

// Unwrap returns the cause.
func (e *BatchError) Unwrap() error { return e.Err }

// corrupt returns an ErrCorruptBatch cause with a detail.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorruptBatch, fmt.Sprintf(format, args...))
}
