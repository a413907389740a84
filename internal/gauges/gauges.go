// Package gauges aggregates the per-partition and per-topic gauges that the
// metrics plugins (mqotel, mqprom) export from consumer and producer stats.
package gauges

import "github.com/mqkit/mq"

// Consumer is an observed consumer and its group.
type Consumer struct {
	Group string
	Src   interface{ Stats() mq.ConsumerStats }
}

// Producer is an observed producer.
type Producer interface {
	Topic() string
	Stats() mq.ProducerStats
}

// Partition is one partition's gauges across the observed consumers.
type Partition struct {
	Topic     string
	Group     string
	Partition int
	Lag       int64 // the largest lag reported (two members may overlap during a rebalance)
	InFlight  int64 // summed
}

// Topic is one topic's producer gauges.
type Topic struct {
	Topic    string
	Buffered int64 // summed over the producers of the topic
}

// Partitions reads every consumer's stats and aggregates them by topic,
// group and partition, in first-seen order.
func Partitions(consumers []Consumer) []Partition {
	type key struct {
		topic, group string
		partition    int
	}
	index := make(map[key]int)
	var out []Partition
	for _, c := range consumers {
		for _, p := range c.Src.Stats().Partitions {
			k := key{p.Topic, c.Group, p.Partition}
			i, ok := index[k]
			if !ok {
				i = len(out)
				index[k] = i
				out = append(out, Partition{Topic: p.Topic, Group: c.Group, Partition: p.Partition})
			}
			out[i].Lag = max(out[i].Lag, p.Lag)
			out[i].InFlight += int64(p.InFlight)
		}
	}
	return out
}

// Topics reads every producer's stats and sums buffered messages by topic, in
// first-seen order.
func Topics(producers []Producer) []Topic {
	index := make(map[string]int)
	var out []Topic
	for _, p := range producers {
		t := p.Topic()
		i, ok := index[t]
		if !ok {
			i = len(out)
			index[t] = i
			out = append(out, Topic{Topic: t})
		}
		out[i].Buffered += p.Stats().Buffered
	}
	return out
}
