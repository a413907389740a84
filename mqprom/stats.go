package mqprom

import (
	"github.com/mqkit/mq/internal/gauges"
	"strconv"
	"sync"

	"github.com/mqkit/mq"
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
// group must be the consumer's group name (the consumer does not expose
// it). Only partitions currently assigned are reported, retry-topic
// partitions included. When several observed consumers report the same
// partition of a group (briefly, during a rebalance), the largest lag and
// the sum of in-flight messages are reported. Call unregister to stop
// reporting; a nil c is ignored.
func (o *Observer) ObserveConsumer(group string, c ConsumerStatsSource) (unregister func()) {
	if c == nil {
		return func() {}
	}
	return o.stats.add(consumerSource{group: group, src: c}, nil)
}

// ObserveProducer reports the gauge mq_producer_buffered{topic}, messages
// buffered or in flight, read from p.Stats() at every scrape; producers of
// the same topic are summed. Call unregister to stop reporting; a nil p is
// ignored.
func (o *Observer) ObserveProducer(p ProducerStatsSource) (unregister func()) {
	if p == nil {
		return func() {}
	}
	return o.stats.add(consumerSource{}, p)
}

type consumerSource struct {
	group string
	src   ConsumerStatsSource
}

// statsRegistry holds the observed consumers and producers.
type statsRegistry struct {
	mu        sync.Mutex
	next      uint64
	consumers map[uint64]consumerSource
	producers map[uint64]ProducerStatsSource
}

func (r *statsRegistry) add(c consumerSource, p ProducerStatsSource) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.consumers == nil {
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
	return func() {
		r.mu.Lock()
		delete(r.consumers, id)
		delete(r.producers, id)
		r.mu.Unlock()
	}
}

func (r *statsRegistry) collect(o *Observer, ch chan<- prometheus.Metric) {
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
		p := strconv.Itoa(g.Partition)
		ch <- gauge(o.lagDesc, g.Lag, label(g.Topic), label(g.Group), p)
		ch <- gauge(o.inFlightDesc, g.InFlight, label(g.Topic), label(g.Group), p)
	}
	for _, t := range gauges.Topics(prods) {
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
