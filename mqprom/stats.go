package mqprom

import (
	"strconv"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/gauges"
	"github.com/prometheus/client_golang/prometheus"
)

// ConsumerStatsSource is a consumer whose statistics
// [Observer.ObserveConsumer] reads. *mq.KafkaConsumer[T] implements it for
// every T.
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
// c.Stats() at every scrape:
//
//   - mq_consumer_lag{topic,group,partition}: high-water mark minus
//     committed offset;
//   - mq_consumer_in_flight{topic,group,partition}: fetched messages not yet
//     fully handled.
//
// group is the consumer's group name (c.Group()). Only partitions currently assigned are reported, retry-topic
// partitions included. When several observed consumers report the same
// partition of a group (briefly, during a rebalance), the largest lag and
// the sum of in-flight messages are reported. Call unregister to stop
// reporting; a nil c is ignored.
func (o *Observer) ObserveConsumer(group string, c ConsumerStatsSource) (unregister func()) {
	if c == nil {
		return func() {}
	}
	remove, _ := o.stats.AddConsumer(gauges.Consumer{Group: group, Src: c}) // no OnFirst: never fails
	return remove
}

// ObserveProducer reports the gauge mq_producer_buffered{topic}, messages
// buffered or in flight, read from p.Stats() at every scrape; producers of
// the same topic are summed. Call unregister to stop reporting; a nil p is
// ignored.
func (o *Observer) ObserveProducer(p ProducerStatsSource) (unregister func()) {
	if p == nil {
		return func() {}
	}
	remove, _ := o.stats.AddProducer(p)
	return remove
}

// collect sends the gauges of every observed consumer and producer.
func collectGauges(o *Observer, ch chan<- prometheus.Metric) {
	parts, topics := o.stats.Snapshot()
	for _, g := range parts {
		p := strconv.Itoa(g.Partition)
		ch <- gauge(o.lagDesc, g.Lag, label(g.Topic), label(g.Group), p)
		ch <- gauge(o.inFlightDesc, g.InFlight, label(g.Topic), label(g.Group), p)
	}
	for _, t := range topics {
		ch <- gauge(o.bufferedDesc, t.Buffered, label(t.Topic))
	}
}

// gauge returns a gauge sample, or an invalid metric (reported by the
// registry) for label values it rejects, such as invalid UTF-8.
func gauge(desc *prometheus.Desc, v int64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, float64(v), labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(desc, err)
	}
	return m
}
