package fetch

import (
	"math"
	"sync/atomic"
	"unsafe"

	"github.com/segmentio/kafka-go"
)

// Defaults of the [Config] sizes.
const (
	// DefaultBufferBytes is the default buffer budget of a [Fetcher].
	DefaultBufferBytes = 32 << 20
	// DefaultPartitionMaxBytes is the default cap on one partition's bytes
	// in one fetch (the Java client's max.partition.fetch.bytes).
	DefaultPartitionMaxBytes = 1 << 20
)

// minFetchBytes is the smallest partition fetch size asked for while a
// partition's share would allow less: smaller requests mostly return partial
// batches.
const minFetchBytes = 8 << 10

// chunksPerShare is how many fetches' worth of decoded records a
// partition's share holds: one is processed while the next is fetched.
// (Four, measured on Kafka 4.4.0 with 12 and 120 partitions, made requests
// smaller and draining 1.5 times slower, for no gain in slow consumers'
// memory.)
const chunksPerShare = 2

// initialRatio is the decoded-to-wire ratio a partition's first fetch
// assumes, before its first chunk tells: compressed text commonly shrinks 2
// to 5 times, and guessing too high costs one small first fetch, guessing
// too low a first chunk far beyond the partition's share.
const initialRatio = 4

// recordSize and headerSize are what a decoded record and header cost
// beyond their bytes.
const (
	recordSize = int64(unsafe.Sizeof(Record{}))
	headerSize = int64(unsafe.Sizeof(kafka.Header{}))
)

// budget divides the fetch buffer among the assigned partitions: each may
// hold an equal share of it. What a partition holds is counted from the
// moment its bytes arrive until its consumer releases them; a partition
// holding its share is left out of fetch requests (backpressure), so the
// bytes buffered by the whole consumer stay near the budget however many
// partitions it has, and a slow partition cannot take the others' room.
//
// A share cannot be smaller than one record batch (a batch is decoded
// whole), so with more partitions than budget/batch size the buffer can hold
// up to one batch per partition.
type budget struct {
	total        int64 // the budget, in bytes
	partitionMax int32 // cap on one partition's fetch size

	partitions atomic.Int64 // assigned partitions
	held       atomic.Int64 // bytes held by all partitions, for observation
}

// share is each partition's part of the budget.
func (b *budget) share() int64 {
	return b.total / max(b.partitions.Load(), 1)
}

// fetchSize returns the bytes to ask for a partition that holds held bytes,
// whose last record set decoded to ratio times its size on the wire, and
// whose next batch is known to need at least need bytes; 0 when the
// partition holds enough and must be left out of the next request.
//
// The size aims at chunksPerShare fetches' worth of decoded bytes per
// share, so that while one chunk is processed the next is buffered or on
// its way. A partition that holds nothing is always fetched, at least its
// next batch: that is what makes progress possible when a share is smaller
// than a batch.
func (b *budget) fetchSize(held int64, ratio float64, need int32) int32 {
	share := b.share()
	ratio = max(ratio, 1)
	size := int64(float64(share) / (chunksPerShare * ratio))
	size = min(int64(b.partitionMax), max(size, minFetchBytes))
	size = max(size, int64(need))
	if held > 0 && float64(held)+float64(size)*ratio > float64(share) {
		return 0
	}
	return int32(min(size, math.MaxInt32))
}

// chargeOf returns what decoded records cost: their bytes (the decompressed
// buffers they point into, or the record set itself when it was not
// compressed, whichever is larger) and the records themselves.
func chargeOf(raw int, recs []Record) int64 {
	var payload int64
	for i := range recs {
		r := &recs[i]
		payload += int64(len(r.Key) + len(r.Value))
		for _, h := range r.Headers {
			payload += int64(len(h.Key)+len(h.Value)) + headerSize
		}
	}
	return max(int64(raw), payload) + int64(len(recs))*recordSize
}
