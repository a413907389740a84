package mqotel

import (
	"context"
	"errors"
	"github.com/mqkit/mq/internal/gauges"
	"sync"

	"github.com/mqkit/mq"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// ConsumerStatsSource is a consumer whose statistics [Observer.ObserveConsumer]
// reads. *mq.KafkaConsumer[T] implements it for every T.
type ConsumerStatsSource interface {
	Stats() mq.ConsumerStats
}

// ProducerStatsSource is a producer whose statistics
// [Observer.ObserveProducer] reads. *mq.Producer[T] implements it for every
// T.
type ProducerStatsSource interface {
	Topic() string
	Stats() mq.ProducerStats
}

// ObserveConsumer reports the consumer's per-partition gauges, read from
// c.Stats() whenever metrics are collected:
//
//   - mq.consumer.lag: high-water mark minus committed offset;
//   - mq.consumer.in_flight: fetched messages not yet fully handled.
//
// group must be the consumer's group name (the consumer does not expose
// it). Only partitions currently assigned are reported, retry-topic
// partitions included. Call unregister to stop reporting, for example after
// the consumer was closed. When several registered consumers report the
// same partition of a group (briefly, during a rebalance), the largest lag
// and the sum of in-flight messages are reported.
func (o *Observer) ObserveConsumer(group string, c ConsumerStatsSource) (unregister func(), err error) {
	if c == nil {
		return nil, errors.New("mqotel: ObserveConsumer: nil consumer")
	}
	return o.stats.add(consumerSource{group: group, src: c}, nil)
}

// ObserveProducer reports the producer's gauge mq.producer.buffered,
// messages buffered or in flight, read from p.Stats() whenever metrics are
// collected. Producers of the same topic are summed. Call unregister to stop
// reporting.
func (o *Observer) ObserveProducer(p ProducerStatsSource) (unregister func(), err error) {
	if p == nil {
		return nil, errors.New("mqotel: ObserveProducer: nil producer")
	}
	return o.stats.add(consumerSource{}, p)
}

type consumerSource struct {
	group string
	src   ConsumerStatsSource
}

// statsRegistry holds the observed consumers and producers and the meter
// callback that reads them; the callback is registered while there is at
// least one.
type statsRegistry struct {
	o         *Observer
	mu        sync.Mutex
	reg       metric.Registration
	next      uint64
	consumers map[uint64]consumerSource
	producers map[uint64]ProducerStatsSource
}

func (r *statsRegistry) add(c consumerSource, p ProducerStatsSource) (func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reg == nil {
		reg, err := r.o.meter.RegisterCallback(r.observe, r.o.lag, r.o.inFlight, r.o.buffered)
		if err != nil {
			return nil, err
		}
		r.reg = reg
		r.consumers = make(map[uint64]consumerSource)
		r.producers = make(map[uint64]ProducerStatsSource)
	}
	r.next++
	id := r.next
	if p != nil {
		r.producers[id] = p
	} else {
		r.consumers[id] = c
	}
	var once sync.Once
	return func() { once.Do(func() { r.remove(id) }) }, nil
}

func (r *statsRegistry) remove(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.consumers, id)
	delete(r.producers, id)
	if len(r.consumers) == 0 && len(r.producers) == 0 && r.reg != nil {
		_ = r.reg.Unregister() // fails only if already unregistered
		r.reg = nil
	}
}

func (r *statsRegistry) observe(_ context.Context, ob metric.Observer) error {
	r.mu.Lock()
	cons := make([]consumerSource, 0, len(r.consumers))
	for _, c := range r.consumers {
		cons = append(cons, c)
	}
	prods := make([]gauges.Producer, 0, len(r.producers))
	for _, p := range r.producers {
		prods = append(prods, p)
	}
	r.mu.Unlock()

	var srcs []gauges.Consumer
	for _, c := range cons {
		srcs = append(srcs, gauges.Consumer{Group: c.group, Src: c.src})
	}
	for _, g := range gauges.Partitions(srcs) {
		opt := r.o.attrs.partition(g.Topic, g.Group, g.Partition).observe
		ob.ObserveInt64(r.o.lag, g.Lag, opt...)
		ob.ObserveInt64(r.o.inFlight, g.InFlight, opt...)
	}
	for _, t := range gauges.Topics(prods) {
		ob.ObserveInt64(r.o.buffered, t.Buffered, metric.WithAttributeSet(
			attribute.NewSet(semconv.MessagingSystemKafka, semconv.MessagingDestinationName(t.Topic))))
	}
	return nil
}
