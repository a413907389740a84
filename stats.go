package mq

import "sync/atomic"

// ConsumerStats is a snapshot of a consumer's counters since it was created.
type ConsumerStats struct {
	Consumed       int64 // messages fetched and passed to the pipeline
	Handled        int64 // successful handler calls
	HandlerErrors  int64 // failed handler calls
	Retries        int64 // handler retries scheduled
	DecodeErrors   int64 // values the codec could not decode
	Skipped        int64 // messages skipped by SkipRecoverer
	DeadLettered   int64 // messages written to a dead-letter topic
	RetryPublished int64 // messages moved to a retry topic
	Commits        int64 // successful offset commits
	Rebalances     int64 // generations joined
	// Partitions describes the partitions currently assigned (empty when
	// not running), sorted by topic and partition.
	Partitions []PartitionStats
}

type consumerCounters struct {
	consumed, handled, handlerErrors, retries, decodeErrors atomic.Int64
	skipped, deadLettered, retryPublished, commits          atomic.Int64
	rebalances                                              atomic.Int64
}

// Stats returns a snapshot of the consumer's counters. It is safe to call at
// any time, also while Run is running.
func (c *KafkaConsumer[T]) Stats() ConsumerStats {
	return ConsumerStats{
		Consumed:       c.consumed.Load(),
		Handled:        c.handled.Load(),
		HandlerErrors:  c.handlerErrors.Load(),
		Retries:        c.retries.Load(),
		DecodeErrors:   c.decodeErrors.Load(),
		Skipped:        c.skipped.Load(),
		DeadLettered:   c.deadLettered.Load(),
		RetryPublished: c.retryPublished.Load(),
		Commits:        c.commits.Load(),
		Rebalances:     c.rebalances.Load(),
		Partitions:     c.partitionStats(),
	}
}

// ProducerStats is a snapshot of a producer's counters since it was created.
type ProducerStats struct {
	Sent      int64 // messages accepted into the buffer
	Delivered int64 // messages the broker acknowledged
	Failed    int64 // messages that could not be delivered
	Buffered  int64 // messages buffered or in flight right now
}

// Stats returns a snapshot of the producer's counters. It is safe to call at
// any time.
func (p *Producer[T]) Stats() ProducerStats {
	p.pendMu.Lock()
	buffered := p.pending
	p.pendMu.Unlock()
	return ProducerStats{
		Sent:      p.sent.Load(),
		Delivered: p.delivered.Load(),
		Failed:    p.failed.Load(),
		Buffered:  int64(buffered),
	}
}
