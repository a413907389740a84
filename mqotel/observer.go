package mqotel

import (
	"context"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/gauges"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope name of the meter and tracer.
const ScopeName = "github.com/mqkit/mq/mqotel"

// Attribute keys of this package; the others are OpenTelemetry's messaging
// semantic conventions.
const (
	// HandlerKey names the handler (see mq.WithHandlerName).
	HandlerKey = attribute.Key("mq.handler")
	// OutcomeKey is how the consumer finished with a message: the
	// [mq.Outcome] value ("handled", "skipped", "dead_lettered",
	// "retry_topic", "failed" or "abandoned").
	OutcomeKey = attribute.Key("mq.outcome")
	// AttemptKey is the handler call's attempt number, from 1 (span events
	// and handler spans only).
	AttemptKey = attribute.Key("mq.attempt")
)

// Observer reports mq producers' and consumers' events as OpenTelemetry
// metrics and spans. It implements [mq.Observer]: pass it to producers and
// consumers with [mq.WithObserver]. One Observer can serve any number of
// them; it is safe for concurrent use.
//
// Create it with [New]; the zero value is not usable.
type Observer struct {
	prop         propagation.TextMapPropagator
	tracer       trace.Tracer
	tracing      bool // false with a noop tracer provider
	metrics      bool // false with a noop meter provider
	handlerSpans bool
	linked       bool
	meter        metric.Meter

	sent            metric.Int64Counter
	sendDuration    metric.Float64Histogram
	consumed        metric.Int64Counter
	processDuration metric.Float64Histogram
	processed       metric.Int64Counter
	handlerCalls    metric.Int64Counter
	handlerRetries  metric.Int64Counter
	handlerDuration metric.Float64Histogram
	commits         metric.Int64Counter
	rebalances      metric.Int64Counter
	lag             metric.Int64ObservableGauge
	inFlight        metric.Int64ObservableGauge
	buffered        metric.Int64ObservableGauge

	attrs attrCache
	stats gauges.Registry
}

var _ mq.Observer = (*Observer)(nil)

// New returns an Observer configured by opts: by default it uses the global
// meter and tracer providers and W3C Trace Context headers. Errors creating
// instruments (there are none with the OpenTelemetry SDK) go to
// [otel.Handle] and leave the instrument a no-op.
func New(opts ...Option) *Observer {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	o := &Observer{
		prop:         cfg.prop,
		tracer:       cfg.tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		tracing:      !isNoopTracerProvider(cfg.tp),
		metrics:      !isNoopMeterProvider(cfg.mp),
		handlerSpans: cfg.handlerSpans,
		linked:       cfg.linked,
		meter:        cfg.mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL)),
	}
	o.registerGauges()
	m := o.meter
	buckets := metric.WithExplicitBucketBoundaries(cfg.buckets...)
	o.sent = counter(m, "messaging.client.sent.messages", "{message}",
		"Number of messages producer attempted to send to the broker.")
	o.sendDuration = histogram(m, "messaging.client.operation.duration", buckets,
		"Duration of messaging operation initiated by a producer or consumer client.")
	o.consumed = counter(m, "messaging.client.consumed.messages", "{message}",
		"Number of messages that were delivered to the application.")
	o.processDuration = histogram(m, "messaging.process.duration", buckets,
		"Duration of processing operation.")
	o.processed = counter(m, "mq.consumer.processed.messages", "{message}",
		"Messages the consumer finished with, by outcome (mq.outcome).")
	o.handlerCalls = counter(m, "mq.handler.calls", "{call}",
		"Handler calls; failed ones carry error.type.")
	o.handlerRetries = counter(m, "mq.handler.retries", "{call}",
		"Handler calls that were retries (attempt 2 and later).")
	o.handlerDuration = histogram(m, "mq.handler.duration", buckets,
		"Duration of handler calls.")
	o.commits = counter(m, "mq.consumer.commits", "{commit}",
		"Offset commits, one per partition committed.")
	o.rebalances = counter(m, "mq.consumer.rebalances", "{rebalance}",
		"Consumer group generations joined.")
	o.lag = gauge(m, "mq.consumer.lag", "{message}",
		"Partition lag: high-water mark minus committed offset.")
	o.inFlight = gauge(m, "mq.consumer.in_flight", "{message}",
		"Fetched messages of the partition not yet fully handled.")
	o.buffered = gauge(m, "mq.producer.buffered", "{message}",
		"Messages buffered or in flight in producers of the topic.")
	return o
}

func counter(m metric.Meter, name, unit, desc string) metric.Int64Counter {
	c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	return usable[metric.Int64Counter](c, err, metricnoop.Int64Counter{})
}

func histogram(m metric.Meter, name string, buckets metric.HistogramOption, desc string) metric.Float64Histogram {
	h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc), buckets)
	return usable[metric.Float64Histogram](h, err, metricnoop.Float64Histogram{})
}

func gauge(m metric.Meter, name, unit, desc string) metric.Int64ObservableGauge {
	g, err := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	return usable[metric.Int64ObservableGauge](g, err, metricnoop.Int64ObservableGauge{})
}

// usable hands a meter's error to OpenTelemetry's error handler and returns
// the instrument, or noop when the meter returned none.
func usable[T any](inst T, err error, noop T) T {
	if err != nil {
		otel.Handle(err)
	}
	if any(inst) == nil {
		return noop
	}
	return inst
}

func isNoopTracerProvider(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case tracenoop.TracerProvider, *tracenoop.TracerProvider:
		return true
	}
	return false
}

func isNoopMeterProvider(mp metric.MeterProvider) bool {
	switch mp.(type) {
	case metricnoop.MeterProvider, *metricnoop.MeterProvider:
		return true
	}
	return false
}

// Context keys under which the observer keeps its own spans, so that it
// ends the right span also when combined with other observers (mq.Observers)
// that put spans into the context.
type (
	sendSpanKey    struct{ o *Observer }
	processSpanKey struct{ o *Observer }
)

// ----- producer -----

// SendStarted implements [mq.Observer]: it starts a PRODUCER span
// "send <topic>" and returns the headers with the span's trace context
// added (a copy: the caller's headers are left alone).
func (o *Observer) SendStarted(ctx context.Context, topic string, headers []mq.Header) (context.Context, []mq.Header) {
	if !o.tracing {
		return ctx, headers
	}
	ta := o.attrs.topic(topic)
	sctx, span := o.tracer.Start(ctx, ta.sendName, ta.sendStart...)
	if !span.IsRecording() {
		if !span.SpanContext().IsValid() {
			return ctx, headers // nothing to record, nothing to propagate
		}
		// Sampled out (or tracing off under a traced caller): propagate the
		// context so later hops make the same decision.
		return ctx, o.inject(sctx, headers)
	}
	return context.WithValue(sctx, sendSpanKey{o}, span), o.inject(sctx, headers)
}

func (o *Observer) inject(ctx context.Context, headers []mq.Header) []mq.Header {
	c := cowCarrier{headers: headers}
	o.prop.Inject(ctx, &c)
	return c.headers
}

// SendFinished implements [mq.Observer]: it ends the send span (with the
// partition and offset, or the error) and counts the message.
func (o *Observer) SendFinished(ctx context.Context, topic string, partition int, offset int64, took time.Duration, err error) {
	if span, ok := ctx.Value(sendSpanKey{o}).(trace.Span); ok {
		if partition >= 0 {
			span.SetAttributes(semconv.MessagingDestinationPartitionID(itoa(partition)))
		}
		if err == nil && offset >= 0 {
			span.SetAttributes(semconv.MessagingKafkaOffset(int(offset)))
		}
		if err != nil {
			span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	if !o.metrics {
		return
	}
	pa := o.attrs.sendPartition(topic, partition)
	if err == nil {
		o.sent.Add(ctx, 1, pa.sentOK...)
		o.sendDuration.Record(ctx, took.Seconds(), pa.durationOK...)
		return
	}
	et := semconv.ErrorTypeKey.String(errorType(err))
	o.sent.Add(ctx, 1, metric.WithAttributeSet(withAttr(pa.sent, et)))
	o.sendDuration.Record(ctx, took.Seconds(), metric.WithAttributeSet(withAttr(pa.duration, et)))
}

// ----- consumer -----

// ProcessStarted implements [mq.Observer]: it counts the message and starts
// a CONSUMER span "process <topic>", a child of the producer's span whose
// context it extracts from the headers (or linked to it, see
// [WithLinkedProcessSpans]). The returned context, the handlers' parent,
// holds the span.
func (o *Observer) ProcessStarted(ctx context.Context, msg mq.MessageInfo) context.Context {
	var pa *partAttrs
	if o.metrics {
		pa = o.attrs.partition(msg.Topic, msg.Group, msg.Partition)
		o.consumed.Add(ctx, 1, pa.consumed...)
	}
	if !o.tracing {
		return ctx
	}
	if pa == nil {
		pa = o.attrs.partition(msg.Topic, msg.Group, msg.Partition)
	}
	parent := o.prop.Extract(ctx, readCarrier(msg.Headers))
	opts := pa.processStart
	if o.linked {
		if sc := trace.SpanContextFromContext(parent); sc.IsValid() {
			opts = append(opts[:len(opts):len(opts)], trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: sc}))
		} else {
			opts = append(opts[:len(opts):len(opts)], trace.WithNewRoot())
		}
	}
	pctx, span := o.tracer.Start(parent, pa.processName, opts...)
	if !span.IsRecording() {
		if span.SpanContext().IsValid() {
			return pctx // propagate a sampled-out or remote context to the handlers
		}
		return ctx
	}
	span.SetAttributes(semconv.MessagingKafkaOffset(int(msg.Offset)))
	return context.WithValue(pctx, processSpanKey{o}, span)
}

func (o *Observer) processSpan(ctx context.Context) trace.Span {
	span, _ := ctx.Value(processSpanKey{o}).(trace.Span)
	return span
}

// HandlerFinished implements [mq.Observer]: it records the handler call's
// duration and outcome, and adds an event (or a child span, see
// [WithHandlerSpans]) to the message's process span.
func (o *Observer) HandlerFinished(ctx context.Context, msg mq.MessageInfo, handler string, attempt int, took time.Duration, err error) {
	if span := o.processSpan(ctx); span != nil {
		o.traceHandler(ctx, span, handler, attempt, took, err)
	}
	if !o.metrics {
		return
	}
	ha := o.attrs.handler(msg.Topic, msg.Group, handler)
	if attempt > 1 {
		o.handlerRetries.Add(ctx, 1, ha.add...)
	}
	if err == nil {
		o.handlerCalls.Add(ctx, 1, ha.add...)
		o.handlerDuration.Record(ctx, took.Seconds(), ha.record...)
		return
	}
	set := metric.WithAttributeSet(withAttr(ha.set, semconv.ErrorTypeKey.String(errorType(err))))
	o.handlerCalls.Add(ctx, 1, set)
	o.handlerDuration.Record(ctx, took.Seconds(), set)
}

func (o *Observer) traceHandler(ctx context.Context, span trace.Span, handler string, attempt int, took time.Duration, err error) {
	now := time.Now()
	attrs := make([]attribute.KeyValue, 0, 3)
	attrs = append(attrs, HandlerKey.String(handler), AttemptKey.Int(attempt))
	if err != nil {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errorType(err)))
	}
	if !o.handlerSpans {
		if err != nil {
			attrs = append(attrs, semconv.ExceptionMessage(err.Error()))
		}
		span.AddEvent("handler "+handler, trace.WithTimestamp(now), trace.WithAttributes(attrs...))
		return
	}
	_, hs := o.tracer.Start(ctx, "handle "+handler, trace.WithTimestamp(now.Add(-took)),
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	if err != nil {
		hs.RecordError(err, trace.WithTimestamp(now))
		hs.SetStatus(codes.Error, err.Error())
	}
	hs.End(trace.WithTimestamp(now))
}

// ProcessFinished implements [mq.Observer]: it ends the process span with
// the outcome (an error status unless every handler succeeded) and records
// the processing duration and outcome.
func (o *Observer) ProcessFinished(ctx context.Context, msg mq.MessageInfo, outcome mq.Outcome, took time.Duration, err error) {
	if span := o.processSpan(ctx); span != nil {
		span.SetAttributes(OutcomeKey.String(string(outcome)))
		if err != nil {
			span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	if !o.metrics {
		return
	}
	oa := o.attrs.partition(msg.Topic, msg.Group, msg.Partition).outcome(outcome)
	if err == nil {
		o.processed.Add(ctx, 1, oa.add...)
		o.processDuration.Record(ctx, took.Seconds(), oa.record...)
		return
	}
	set := metric.WithAttributeSet(withAttr(oa.set, semconv.ErrorTypeKey.String(errorType(err))))
	o.processed.Add(ctx, 1, set)
	o.processDuration.Record(ctx, took.Seconds(), set)
}

// Committed implements [mq.Observer]: it counts the commit.
func (o *Observer) Committed(group, topic string, partition int, _ int64) {
	if !o.metrics {
		return
	}
	o.commits.Add(context.Background(), 1, o.attrs.partition(topic, group, partition).commit...)
}

// Rebalanced implements [mq.Observer]: it counts the generation joined.
func (o *Observer) Rebalanced(group string, _ int32, _ map[string][]int) {
	if !o.metrics {
		return
	}
	o.rebalances.Add(context.Background(), 1, metric.WithAttributes(semconv.MessagingSystemKafka,
		semconv.MessagingConsumerGroupName(group)))
}
