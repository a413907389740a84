// Package fetch is the consumer's fetch engine.
//
// # Engine
//
// A [Fetcher] fetches the partitions assigned to it ([Fetcher.Assign],
// [Fetcher.Revoke]: whatever manages group membership decides) and hands
// each partition's records, decoded and in offset order, to that
// partition's consumer ([Partition.Next], [Chunk.Release]):
//
//   - One source per broker (source.go) fetches every assigned partition
//     the broker leads in one multi-partition Fetch request at a time (v4 to
//     v11, sessionless), on the broker's one fetch connection of a
//     wire.Network; a slow or failing broker holds up only its own
//     partitions. Requests start at a rotating position and put first a
//     partition whose next batch exceeds its fetch size (a broker returns
//     the first partition's first batch whole), so every partition makes
//     progress.
//   - One lookup goroutine (place.go) finds partition leaders (fresh
//     metadata) and start offsets (ListOffsets, for OffsetEarliest and
//     OffsetLatest and after OFFSET_OUT_OF_RANGE), and moves partitions
//     whose leader changed (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
//     UNKNOWN_LEADER_EPOCH, ...) to their new leader's source, one
//     partition at a time: the others keep flowing. Fetches carry the
//     current leader epoch (KIP-320's fencing); truncation detection with
//     OffsetsForLeaderEpoch is not done, which matters only after an
//     unclean leader election (a consumer only reads below the high
//     watermark, which every in-sync replica has).
//   - One buffer budget (budget.go) bounds what all partitions hold
//     between being fetched and being released by their consumer: each
//     assigned partition may hold an equal share, and a partition holding
//     its share is left out of requests. Sizes are counted decoded: the
//     size asked for a partition follows its last compression ratio.
//   - A source decodes the partitions of each response in parallel (up to
//     GOMAXPROCS at a time) before it builds its next request, so that
//     every partition of a response knows its next offset and can be in
//     that request: requests stay large, and each partition has its next
//     chunk buffered or on its way while its consumer works on one.
//
// Fetch sessions (KIP-227) are not used: a sessionless request costs about
// 28 bytes per partition, and the budget changes partitions' sizes between
// requests, which an incremental session would have to resend anyway.
//
// # Decoding
//
// This part decodes what a broker returns to a Fetch request:
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
