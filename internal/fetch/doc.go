// Package fetch is the consumer's fetch engine. This part decodes what a
// broker returns to a Fetch request:
//
//   - [DecodeFetchResponse] reads a Fetch response body (versions 4 to 11, the
//     non-flexible ones) into per-partition results whose record sets are
//     slices of the body, not copies.
//   - [DecodeBatch] reads one v2 record batch (KIP-98): header, CRC-32C check,
//     decompression (gzip and lz4 through kafka-go's codecs; snappy, framed or
//     raw, and zstd through klauspost/compress, the library under kafka-go's
//     codecs, to bound their allocations) and records, keeping null and empty
//     keys, values and header values distinct (nil versus a non-nil empty
//     slice). Message sets of format v0/v1 (magic 0 and 1, which Kafka 4 no
//     longer writes) are reported as [ErrUnsupportedMagic], not decoded.
//   - [DecodeRecords] turns one partition's record set into the records a
//     consumer delivers: control batches (transaction markers) are dropped in
//     every isolation mode; in read-committed mode the records of aborted
//     transactions are dropped (the algorithm of the Java client's
//     CompletedFetch) and nothing at or past the last stable offset is
//     returned. It reports the offset to fetch next, past control batches, so
//     a consumer's committed offset moves past transaction markers.
//
// Decoding never panics on hostile input and never allocates on the word of a
// length field alone: counts and lengths are checked against the bytes that
// are actually there, and a batch's decompressed size is bounded
// ([Options.MaxBatchBytes]). The one allocation a header decides is a zstd
// frame's window, which the decoder needs before any output; it is capped at
// 128 MiB, the limit of zstd's reference decoder.
//
// Records alias the buffers they were decoded from (the response body for
// uncompressed batches, one buffer per compressed batch): holding any record
// keeps that buffer alive, and callers must not modify the body while records
// are in use.
package fetch
