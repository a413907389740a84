package mq

import (
	"sort"
	"sync/atomic"
	"time"
)

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
	Recovered      int64 // messages a FuncRecoverer took care of
	Commits        int64 // successful offset commits
	Rebalances     int64 // generations joined
	// BufferedBytes is what the fetch engine holds now: records fetched
	// and not yet passed to the handlers (see [WithFetchBufferBytes]).
	BufferedBytes int64
	// Partitions describes the partitions currently assigned (empty when
	// not running), sorted by topic and partition.
	Partitions []PartitionStats
}

// PartitionStats describes one partition currently assigned to a consumer.
type PartitionStats struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	// Committed is the last committed offset, -1 when none yet.
	Committed int64 `json:"committed"`
	// HighWaterMark is the partition's end offset as of the last fetch
	// (with or without records), -1 before the first fetch.
	HighWaterMark int64 `json:"high_water_mark"`
	// Lag is HighWaterMark minus Committed (HighWaterMark when nothing is
	// committed yet; 0 before the first fetch).
	Lag int64 `json:"lag"`
	// InFlight counts fetched messages not yet fully handled.
	InFlight int `json:"in_flight"`
	// LastProgress is when a message of the partition last completed, or
	// when it was assigned or resumed.
	LastProgress time.Time `json:"last_progress"`
	// Paused reports a partition paused with [KafkaConsumer.Pause]; health
	// checks never call it stuck.
	Paused bool `json:"paused,omitempty"`
}

func (c *KafkaConsumer[T]) setPartitions(parts []*partitionState) {
	if parts == nil {
		c.parts.Store(nil)
		return
	}
	c.parts.Store(&parts)
}

func (c *KafkaConsumer[T]) partitionStats() []PartitionStats {
	p := c.parts.Load()
	if p == nil {
		return nil
	}
	out := make([]PartitionStats, 0, len(*p))
	for _, ps := range *p {
		st := PartitionStats{
			Topic:         ps.topic,
			Partition:     ps.id,
			Committed:     ps.committed.Load(),
			HighWaterMark: ps.highWatermark(),
			InFlight:      ps.tracker.InFlight(),
			LastProgress:  time.Unix(0, ps.lastProgress.Load()),
			Paused:        ps.ctl.isPaused(),
		}
		switch {
		case st.HighWaterMark < 0:
		case st.Committed < 0:
			st.Lag = st.HighWaterMark // nothing committed yet: counted from offset 0
		case st.HighWaterMark > st.Committed:
			st.Lag = st.HighWaterMark - st.Committed
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

type consumerCounters struct {
	consumed, handled, handlerErrors, retries, decodeErrors atomic.Int64
	skipped, deadLettered, retryPublished, recovered        atomic.Int64
	commits, rebalances                                     atomic.Int64
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
		Recovered:      c.recovered.Load(),
		Commits:        c.commits.Load(),
		Rebalances:     c.rebalances.Load(),
		BufferedBytes:  c.bufferedBytes(),
		Partitions:     c.partitionStats(),
	}
}

func (c *KafkaConsumer[T]) bufferedBytes() int64 {
	if f := c.fetcher.Load(); f != nil {
		return f.BufferedBytes()
	}
	return 0
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
	return ProducerStats{
		Sent:      p.sent.Load(),
		Delivered: p.delivered.Load(),
		Failed:    p.failed.Load(),
		Buffered:  p.engine.Buffered(),
	}
}
