// Package gauges aggregates the per-partition and per-topic gauges that
// metrics exporters (mqotel, mqprom, or your own) publish from consumer and
// producer stats: lag and in-flight messages per partition, buffered messages
// per topic. It depends only on package mq.
package gauges

import (
	"sync"

	"github.com/mqkit/mq"
)

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

// Registry holds the consumers and producers a metrics plugin observes. It is
// safe for concurrent use. OnFirst, if set, runs (under the registry's lock)
// when the first source is added to an empty registry, and can refuse it;
// OnEmpty runs when the last one is removed.
type Registry struct {
	OnFirst func() error
	OnEmpty func()

	mu        sync.Mutex
	next      uint64
	consumers map[uint64]Consumer
	producers map[uint64]Producer
}

// AddConsumer registers a consumer and returns the function that removes it
// (idempotent).
func (r *Registry) AddConsumer(c Consumer) (remove func(), err error) { return r.add(&c, nil) }

// AddProducer registers a producer and returns the function that removes it
// (idempotent).
func (r *Registry) AddProducer(p Producer) (remove func(), err error) { return r.add(nil, p) }

func (r *Registry) add(c *Consumer, p Producer) (func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.consumers)+len(r.producers) == 0 {
		if r.OnFirst != nil {
			if err := r.OnFirst(); err != nil {
				return nil, err
			}
		}
		r.consumers = make(map[uint64]Consumer)
		r.producers = make(map[uint64]Producer)
	}
	r.next++
	id := r.next
	if c != nil {
		r.consumers[id] = *c
	} else {
		r.producers[id] = p
	}
	var once sync.Once
	return func() { once.Do(func() { r.remove(id) }) }, nil
}

func (r *Registry) remove(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.consumers, id)
	delete(r.producers, id)
	if len(r.consumers)+len(r.producers) == 0 && r.OnEmpty != nil {
		r.OnEmpty()
	}
}

// Snapshot reads every registered source's stats and aggregates them.
func (r *Registry) Snapshot() ([]Partition, []Topic) {
	r.mu.Lock()
	cons := make([]Consumer, 0, len(r.consumers))
	for _, c := range r.consumers {
		cons = append(cons, c)
	}
	prods := make([]Producer, 0, len(r.producers))
	for _, p := range r.producers {
		prods = append(prods, p)
	}
	r.mu.Unlock()
	return Partitions(cons), Topics(prods)
}
