package mqotel

import (
	"context"
	"errors"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/gauges"
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
// group is the consumer's group name (c.Group()). Only partitions currently assigned are reported, retry-topic
// partitions included. Call unregister to stop reporting, for example after
// the consumer was closed. When several registered consumers report the
// same partition of a group (briefly, during a rebalance), the largest lag
// and the sum of in-flight messages are reported.
func (o *Observer) ObserveConsumer(group string, c ConsumerStatsSource) (unregister func(), err error) {
	if c == nil {
		return nil, errors.New("mqotel: ObserveConsumer: nil consumer")
	}
	return o.stats.AddConsumer(gauges.Consumer{Group: group, Src: c})
}

// ObserveProducer reports the producer's gauge mq.producer.buffered,
// messages buffered or in flight, read from p.Stats() whenever metrics are
// collected. Producers of the same topic are summed. Call unregister to stop
// reporting.
func (o *Observer) ObserveProducer(p ProducerStatsSource) (unregister func(), err error) {
	if p == nil {
		return nil, errors.New("mqotel: ObserveProducer: nil producer")
	}
	return o.stats.AddProducer(p)
}

// registerGauges makes the meter read the observed consumers and producers,
// while there is at least one.
func (o *Observer) registerGauges() {
	var reg metric.Registration
	o.stats.OnFirst = func() error {
		var err error
		reg, err = o.meter.RegisterCallback(o.observeGauges, o.lag, o.inFlight, o.buffered)
		return err
	}
	o.stats.OnEmpty = func() {
		_ = reg.Unregister() // fails only if already unregistered
	}
}

func (o *Observer) observeGauges(_ context.Context, ob metric.Observer) error {
	parts, topics := o.stats.Snapshot()
	for _, g := range parts {
		opt := o.attrs.partition(g.Topic, g.Group, g.Partition).observe
		ob.ObserveInt64(o.lag, g.Lag, opt...)
		ob.ObserveInt64(o.inFlight, g.InFlight, opt...)
	}
	for _, t := range topics {
		ob.ObserveInt64(o.buffered, t.Buffered, metric.WithAttributeSet(
			attribute.NewSet(semconv.MessagingSystemKafka, semconv.MessagingDestinationName(t.Topic))))
	}
	return nil
}
