package mqprom

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/gauges"
	"github.com/prometheus/client_golang/prometheus"
)

// Label names.
const (
	LabelTopic     = "topic"     // topic (a consumer's retry topics included)
	LabelGroup     = "group"     // consumer group
	LabelPartition = "partition" // partition number
	LabelHandler   = "handler"   // handler name (see mq.WithHandlerName)
	LabelOutcome   = "outcome"   // mq.Outcome: handled, skipped, dead_lettered, retry_topic, failed, abandoned
)

// outcomes are the known outcomes, whose series are created at zero as soon
// as a topic and group is seen.
var outcomes = []mq.Outcome{mq.OutcomeHandled, mq.OutcomeSkipped, mq.OutcomeDeadLettered,
	mq.OutcomeRetryTopic, mq.OutcomeFailed, mq.OutcomeAbandoned}

// Observer reports mq producers' and consumers' events as Prometheus
// metrics. It implements [mq.Observer] (pass it to producers and consumers
// with [mq.WithObserver]) and [prometheus.Collector]. One Observer can
// serve any number of producers and consumers; it is safe for concurrent
// use.
//
// Create it with [New]; the zero value is not usable.
type Observer struct {
	sent            *prometheus.CounterVec
	delivered       *prometheus.CounterVec
	sendFailed      *prometheus.CounterVec
	sendDuration    *prometheus.HistogramVec
	consumed        *prometheus.CounterVec
	processed       *prometheus.CounterVec
	processDuration *prometheus.HistogramVec
	handlerCalls    *prometheus.CounterVec
	handlerErrors   *prometheus.CounterVec
	handlerRetries  *prometheus.CounterVec
	handlerDuration *prometheus.HistogramVec
	commits         *prometheus.CounterVec
	rebalances      *prometheus.CounterVec
	collectors      []prometheus.Collector

	lagDesc, inFlightDesc, bufferedDesc *prometheus.Desc

	mu       sync.RWMutex
	topics   map[string]*topicMetrics
	groups   map[groupKey]*groupMetrics
	parts    map[partKey]*partMetrics
	handlers map[handlerKey]*handlerMetrics

	stats gauges.Registry
}

var (
	_ mq.Observer          = (*Observer)(nil)
	_ prometheus.Collector = (*Observer)(nil)
)

type topicMetrics struct {
	sent, delivered, failed prometheus.Counter
	duration                prometheus.Observer
}

type groupKey struct{ topic, group string }

type groupMetrics struct {
	processed map[mq.Outcome]prometheus.Counter
	duration  prometheus.Observer
}

type partKey struct {
	topic, group string
	partition    int
}

type partMetrics struct {
	consumed, commits prometheus.Counter
}

type handlerKey struct{ topic, group, handler string }

type handlerMetrics struct {
	calls, errors, retries prometheus.Counter
	duration               prometheus.Observer
}

// New creates the metrics and, unless reg is nil, registers the Observer
// with reg (as promauto.With does, nil means: register it yourself). It
// returns reg's error when registration fails, for example because the
// metrics are already registered there (use [WithNamespace] or
// [WithConstLabels] to tell several observers apart).
func New(reg prometheus.Registerer, opts ...Option) (*Observer, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if opt != nil {
			opt(&cfg)
		}
	}
	o := &Observer{
		topics:   make(map[string]*topicMetrics),
		groups:   make(map[groupKey]*groupMetrics),
		parts:    make(map[partKey]*partMetrics),
		handlers: make(map[handlerKey]*handlerMetrics),
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: cfg.namespace, Name: name, Help: help,
			ConstLabels: cfg.constLabels}, labels)
		o.collectors = append(o.collectors, v)
		return v
	}
	histogram := func(name, help string, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: cfg.namespace, Name: name, Help: help,
			ConstLabels: cfg.constLabels, Buckets: cfg.buckets}, labels)
		o.collectors = append(o.collectors, v)
		return v
	}
	o.sent = counter("messages_sent_total", "Messages handed to producers for sending.", LabelTopic)
	o.delivered = counter("messages_delivered_total", "Messages the broker acknowledged.", LabelTopic)
	o.sendFailed = counter("messages_send_failed_total", "Messages producers could not deliver.", LabelTopic)
	o.sendDuration = histogram("send_duration_seconds", "Time from send to acknowledgement or failure.", LabelTopic)
	o.consumed = counter("messages_consumed_total", "Messages consumers passed to their handlers.",
		LabelTopic, LabelGroup, LabelPartition)
	o.processed = counter("messages_processed_total", "Messages consumers finished with, by outcome.",
		LabelTopic, LabelGroup, LabelOutcome)
	o.processDuration = histogram("process_duration_seconds", "Time consumers spent on a message, retries and recovery included.",
		LabelTopic, LabelGroup)
	o.handlerCalls = counter("handler_calls_total", "Handler calls.", LabelTopic, LabelGroup, LabelHandler)
	o.handlerErrors = counter("handler_errors_total", "Handler calls that returned an error.", LabelTopic, LabelGroup, LabelHandler)
	o.handlerRetries = counter("handler_retries_total", "Handler calls that were retries.", LabelTopic, LabelGroup, LabelHandler)
	o.handlerDuration = histogram("handler_duration_seconds", "Duration of handler calls.", LabelTopic, LabelGroup, LabelHandler)
	o.commits = counter("commits_total", "Offset commits.", LabelTopic, LabelGroup, LabelPartition)
	o.rebalances = counter("rebalances_total", "Consumer group generations joined.", LabelGroup)
	o.lagDesc = prometheus.NewDesc(prometheus.BuildFQName(cfg.namespace, "consumer", "lag"),
		"Partition lag: high-water mark minus committed offset.",
		[]string{LabelTopic, LabelGroup, LabelPartition}, cfg.constLabels)
	o.inFlightDesc = prometheus.NewDesc(prometheus.BuildFQName(cfg.namespace, "consumer", "in_flight"),
		"Fetched messages of the partition not yet fully handled.",
		[]string{LabelTopic, LabelGroup, LabelPartition}, cfg.constLabels)
	o.bufferedDesc = prometheus.NewDesc(prometheus.BuildFQName(cfg.namespace, "producer", "buffered"),
		"Messages buffered or in flight in producers of the topic.",
		[]string{LabelTopic}, cfg.constLabels)
	if reg != nil {
		if err := reg.Register(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Describe implements [prometheus.Collector].
func (o *Observer) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range o.collectors {
		c.Describe(ch)
	}
	ch <- o.lagDesc
	ch <- o.inFlightDesc
	ch <- o.bufferedDesc
}

// Collect implements [prometheus.Collector]: the counters and histograms,
// and the gauges read from the Stats of the observed consumers and
// producers.
func (o *Observer) Collect(ch chan<- prometheus.Metric) {
	for _, c := range o.collectors {
		c.Collect(ch)
	}
	collectGauges(o, ch)
}

func (o *Observer) topic(topic string) *topicMetrics {
	o.mu.RLock()
	tm := o.topics[topic]
	o.mu.RUnlock()
	if tm != nil {
		return tm
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if tm = o.topics[topic]; tm == nil {
		t := label(topic)
		tm = &topicMetrics{
			sent:      o.sent.WithLabelValues(t),
			delivered: o.delivered.WithLabelValues(t),
			failed:    o.sendFailed.WithLabelValues(t),
			duration:  o.sendDuration.WithLabelValues(t),
		}
		o.topics[topic] = tm
	}
	return tm
}

func (o *Observer) group(topic, group string) *groupMetrics {
	k := groupKey{topic, group}
	o.mu.RLock()
	gm := o.groups[k]
	o.mu.RUnlock()
	if gm != nil {
		return gm
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if gm = o.groups[k]; gm == nil {
		t, g := label(topic), label(group)
		gm = &groupMetrics{
			processed: make(map[mq.Outcome]prometheus.Counter, len(outcomes)),
			duration:  o.processDuration.WithLabelValues(t, g),
		}
		for _, out := range outcomes {
			gm.processed[out] = o.processed.WithLabelValues(t, g, string(out))
		}
		o.groups[k] = gm
	}
	return gm
}

func (o *Observer) partition(topic, group string, partition int) *partMetrics {
	k := partKey{topic, group, partition}
	o.mu.RLock()
	pm := o.parts[k]
	o.mu.RUnlock()
	if pm != nil {
		return pm
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if pm = o.parts[k]; pm == nil {
		t, g, p := label(topic), label(group), strconv.Itoa(partition)
		pm = &partMetrics{
			consumed: o.consumed.WithLabelValues(t, g, p),
			commits:  o.commits.WithLabelValues(t, g, p),
		}
		o.parts[k] = pm
	}
	return pm
}

func (o *Observer) handler(topic, group, handler string) *handlerMetrics {
	k := handlerKey{topic, group, handler}
	o.mu.RLock()
	hm := o.handlers[k]
	o.mu.RUnlock()
	if hm != nil {
		return hm
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if hm = o.handlers[k]; hm == nil {
		t, g, h := label(topic), label(group), label(handler)
		hm = &handlerMetrics{
			calls:    o.handlerCalls.WithLabelValues(t, g, h),
			errors:   o.handlerErrors.WithLabelValues(t, g, h),
			retries:  o.handlerRetries.WithLabelValues(t, g, h),
			duration: o.handlerDuration.WithLabelValues(t, g, h),
		}
		o.handlers[k] = hm
	}
	return hm
}

// SendStarted implements [mq.Observer]: it counts a message handed to a
// producer. It changes neither the context nor the headers.
func (o *Observer) SendStarted(ctx context.Context, topic string, headers []mq.Header) (context.Context, []mq.Header) {
	o.topic(topic).sent.Inc()
	return ctx, headers
}

// SendFinished implements [mq.Observer]: it counts the message delivered or
// failed and records the send duration.
func (o *Observer) SendFinished(_ context.Context, topic string, _ int, _ int64, took time.Duration, err error) {
	tm := o.topic(topic)
	if err == nil {
		tm.delivered.Inc()
	} else {
		tm.failed.Inc()
	}
	tm.duration.Observe(took.Seconds())
}

// ProcessStarted implements [mq.Observer]: it counts a consumed message. It
// returns ctx unchanged.
func (o *Observer) ProcessStarted(ctx context.Context, msg mq.MessageInfo) context.Context {
	o.partition(msg.Topic, msg.Group, msg.Partition).consumed.Inc()
	return ctx
}

// HandlerFinished implements [mq.Observer]: it counts the handler call (an
// error, a retry) and records its duration.
func (o *Observer) HandlerFinished(_ context.Context, msg mq.MessageInfo, handler string, attempt int, took time.Duration, err error) {
	hm := o.handler(msg.Topic, msg.Group, handler)
	hm.calls.Inc()
	if err != nil {
		hm.errors.Inc()
	}
	if attempt > 1 {
		hm.retries.Inc()
	}
	hm.duration.Observe(took.Seconds())
}

// ProcessFinished implements [mq.Observer]: it counts the message's outcome
// and records the processing duration.
func (o *Observer) ProcessFinished(_ context.Context, msg mq.MessageInfo, outcome mq.Outcome, took time.Duration, _ error) {
	gm := o.group(msg.Topic, msg.Group)
	if c, ok := gm.processed[outcome]; ok {
		c.Inc()
	} else {
		o.processed.WithLabelValues(label(msg.Topic), label(msg.Group), label(string(outcome))).Inc()
	}
	gm.duration.Observe(took.Seconds())
}

// Committed implements [mq.Observer]: it counts an offset commit.
func (o *Observer) Committed(group, topic string, partition int, _ int64) {
	o.partition(topic, group, partition).commits.Inc()
}

// Rebalanced implements [mq.Observer]: it counts a group generation joined.
func (o *Observer) Rebalanced(group string, _ int32, _ map[string][]int) {
	o.rebalances.WithLabelValues(label(group)).Inc()
}

// label makes s a valid label value: client_golang panics on invalid UTF-8.
func label(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
