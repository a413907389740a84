package mqotel_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqotel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

func spanAttr(s sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func TestSendSpanAndHeaders(t *testing.T) {
	e := newEnv(t)
	// The caller's headers have spare capacity and an old traceparent:
	// neither the backing array nor the old value may be touched.
	user := make([]mq.Header, 2, 8)
	user[0] = mq.Header{Key: "app", Value: []byte("x")}
	user[1] = mq.Header{Key: "traceparent", Value: []byte("old")}

	ctx, hs := e.obs.SendStarted(context.Background(), "orders", user)
	require.Len(t, hs, 2, "traceparent replaced, not added twice")
	assert.Equal(t, "old", string(user[1].Value))
	assert.Equal(t, mq.Header{}, user[:3][2], "spare capacity of the caller's slice untouched")
	tp := (&mqotel.HeaderCarrier{Headers: hs}).Get("traceparent")
	require.NotEqual(t, "old", tp)

	e.obs.SendFinished(ctx, "orders", 2, 41, 3*time.Millisecond, nil)

	ended := e.spans.Ended()
	require.Len(t, ended, 1)
	s := ended[0]
	assert.Equal(t, "send orders", s.Name())
	assert.Equal(t, trace.SpanKindProducer, s.SpanKind())
	assert.Equal(t, fmt.Sprintf("00-%s-%s-01", s.SpanContext().TraceID(), s.SpanContext().SpanID()), tp)
	v, _ := spanAttr(s, semconv.MessagingDestinationPartitionIDKey)
	assert.Equal(t, "2", v.AsString())
	v, _ = spanAttr(s, semconv.MessagingKafkaOffsetKey)
	assert.EqualValues(t, 41, v.AsInt64())
	v, _ = spanAttr(s, semconv.MessagingSystemKey)
	assert.Equal(t, "kafka", v.AsString())
	assert.Equal(t, codes.Unset, s.Status().Code)

	m := e.collect(t)
	assert.EqualValues(t, 1, m.sum(t, "messaging.client.sent.messages",
		semconv.MessagingDestinationName("orders"), semconv.MessagingDestinationPartitionID("2"),
		semconv.MessagingOperationName("send"), absent(semconv.ErrorTypeKey)))
	assert.EqualValues(t, 1, m.count(t, "messaging.client.operation.duration",
		semconv.MessagingOperationTypeSend, absent(semconv.ErrorTypeKey)))
}

func TestSendFailure(t *testing.T) {
	e := newEnv(t)
	ctx, _ := e.obs.SendStarted(context.Background(), "orders", nil)
	e.obs.SendFinished(ctx, "orders", 0, -1, time.Millisecond, fmt.Errorf("giving up: %w", mq.ErrClosed))

	s := e.spans.Ended()[0]
	assert.Equal(t, codes.Error, s.Status().Code)
	v, _ := spanAttr(s, semconv.ErrorTypeKey)
	assert.Equal(t, "closed", v.AsString())
	_, ok := spanAttr(s, semconv.MessagingKafkaOffsetKey)
	assert.False(t, ok)
	require.Len(t, s.Events(), 1)
	assert.Equal(t, "exception", s.Events()[0].Name)

	m := e.collect(t)
	assert.EqualValues(t, 1, m.sum(t, "messaging.client.sent.messages", semconv.ErrorTypeKey.String("closed")))
	assert.EqualValues(t, 1, m.count(t, "messaging.client.operation.duration", semconv.ErrorTypeKey.String("closed")))
}

// sendHeaders returns headers carrying a fresh producer span's context.
func sendHeaders(t *testing.T, o *mqotel.Observer, topic string) (context.Context, []mq.Header) {
	t.Helper()
	ctx, hs := o.SendStarted(context.Background(), topic, nil)
	require.NotEmpty(t, hs)
	return ctx, hs
}

func TestProcessSpanIsChildOfSendSpan(t *testing.T) {
	e := newEnv(t)
	sctx, hs := sendHeaders(t, e.obs, "orders")
	e.obs.SendFinished(sctx, "orders", 1, 7, time.Millisecond, nil)
	send := e.spans.Ended()[0]

	info := mq.MessageInfo{Topic: "orders", Partition: 1, Offset: 7, Headers: hs, Group: "billing"}
	ctx := e.obs.ProcessStarted(context.Background(), info)
	handlerSC := trace.SpanContextFromContext(ctx)
	require.True(t, handlerSC.IsValid())
	assert.Equal(t, send.SpanContext().TraceID(), handlerSC.TraceID())

	e.obs.HandlerFinished(ctx, info, "persist", 1, time.Millisecond, errors.New("db down"))
	e.obs.HandlerFinished(ctx, info, "persist", 2, time.Millisecond, nil)
	e.obs.HandlerFinished(ctx, info, "audit", 1, time.Millisecond, nil)
	e.obs.ProcessFinished(ctx, info, mq.OutcomeHandled, 5*time.Millisecond, nil)

	ended := e.spans.Ended()
	require.Len(t, ended, 2)
	p := ended[1]
	assert.Equal(t, "process orders", p.Name())
	assert.Equal(t, trace.SpanKindConsumer, p.SpanKind())
	assert.Equal(t, handlerSC, p.SpanContext(), "the handlers' context holds the process span")
	assert.Equal(t, send.SpanContext().SpanID(), p.Parent().SpanID())
	assert.Equal(t, send.SpanContext().TraceID(), p.Parent().TraceID())
	assert.True(t, p.Parent().IsRemote())
	assert.Equal(t, codes.Unset, p.Status().Code)
	v, _ := spanAttr(p, mqotel.OutcomeKey)
	assert.Equal(t, "handled", v.AsString())
	v, _ = spanAttr(p, semconv.MessagingConsumerGroupNameKey)
	assert.Equal(t, "billing", v.AsString())
	v, _ = spanAttr(p, semconv.MessagingKafkaOffsetKey)
	assert.EqualValues(t, 7, v.AsInt64())

	evs := p.Events()
	require.Len(t, evs, 3)
	assert.Equal(t, "handler persist", evs[0].Name)
	assert.Contains(t, evs[0].Attributes, mqotel.AttemptKey.Int(1))
	assert.Contains(t, evs[0].Attributes, semconv.ExceptionMessage("db down"))
	assert.Contains(t, evs[1].Attributes, mqotel.AttemptKey.Int(2))
	assert.Equal(t, "handler audit", evs[2].Name)

	m := e.collect(t)
	group := semconv.MessagingConsumerGroupName("billing")
	assert.EqualValues(t, 1, m.sum(t, "messaging.client.consumed.messages", group, semconv.MessagingDestinationPartitionID("1")))
	assert.EqualValues(t, 1, m.sum(t, "mq.handler.calls", mqotel.HandlerKey.String("persist"), absent(semconv.ErrorTypeKey)))
	assert.EqualValues(t, 1, m.sum(t, "mq.handler.calls", mqotel.HandlerKey.String("persist"), semconv.ErrorTypeKey.String("*errors.errorString")))
	assert.EqualValues(t, 1, m.sum(t, "mq.handler.calls", mqotel.HandlerKey.String("audit")))
	assert.EqualValues(t, 1, m.sum(t, "mq.handler.retries", mqotel.HandlerKey.String("persist")))
	assert.EqualValues(t, 0, m.sum(t, "mq.handler.retries", mqotel.HandlerKey.String("audit")))
	assert.EqualValues(t, 3, m.count(t, "mq.handler.duration", group))
	assert.EqualValues(t, 1, m.sum(t, "mq.consumer.processed.messages", mqotel.OutcomeKey.String("handled")))
	assert.EqualValues(t, 1, m.count(t, "messaging.process.duration", mqotel.OutcomeKey.String("handled"), semconv.MessagingOperationName("process")))
}

func TestProcessFailureOutcome(t *testing.T) {
	e := newEnv(t)
	info := mq.MessageInfo{Topic: "orders", Partition: 0, Offset: 3, Group: "g"}
	ctx := e.obs.ProcessStarted(context.Background(), info)
	err := mq.Permanent(fmt.Errorf("bad order: %w", context.DeadlineExceeded))
	e.obs.HandlerFinished(ctx, info, "persist", 1, time.Millisecond, err)
	e.obs.ProcessFinished(ctx, info, mq.OutcomeDeadLettered, time.Millisecond, err)

	p := e.spans.Ended()[0]
	assert.False(t, p.Parent().IsValid(), "no trace context in the headers: a root span")
	assert.Equal(t, codes.Error, p.Status().Code)
	assert.Equal(t, "bad order: context deadline exceeded", p.Status().Description)
	v, _ := spanAttr(p, mqotel.OutcomeKey)
	assert.Equal(t, "dead_lettered", v.AsString())
	v, _ = spanAttr(p, semconv.ErrorTypeKey)
	assert.Equal(t, "timeout", v.AsString())

	m := e.collect(t)
	assert.EqualValues(t, 1, m.sum(t, "mq.consumer.processed.messages",
		mqotel.OutcomeKey.String("dead_lettered"), semconv.ErrorTypeKey.String("timeout")))
	assert.EqualValues(t, 1, m.sum(t, "mq.handler.calls", semconv.ErrorTypeKey.String("timeout")))
}

func TestLinkedProcessSpans(t *testing.T) {
	e := newEnv(t, mqotel.WithLinkedProcessSpans())
	sctx, hs := sendHeaders(t, e.obs, "orders")
	e.obs.SendFinished(sctx, "orders", 0, 0, time.Millisecond, nil)
	send := e.spans.Ended()[0]

	info := mq.MessageInfo{Topic: "orders", Headers: hs, Group: "g"}
	ctx := e.obs.ProcessStarted(context.Background(), info)
	e.obs.ProcessFinished(ctx, info, mq.OutcomeHandled, time.Millisecond, nil)

	p := e.spans.Ended()[1]
	assert.False(t, p.Parent().IsValid())
	assert.NotEqual(t, send.SpanContext().TraceID(), p.SpanContext().TraceID())
	require.Len(t, p.Links(), 1)
	assert.Equal(t, send.SpanContext().SpanID(), p.Links()[0].SpanContext.SpanID())
}

func TestHandlerSpans(t *testing.T) {
	e := newEnv(t, mqotel.WithHandlerSpans())
	info := mq.MessageInfo{Topic: "orders", Group: "g"}
	ctx := e.obs.ProcessStarted(context.Background(), info)
	e.obs.HandlerFinished(ctx, info, "persist", 1, 20*time.Millisecond, errors.New("boom"))
	e.obs.ProcessFinished(ctx, info, mq.OutcomeSkipped, 25*time.Millisecond, errors.New("boom"))

	ended := e.spans.Ended()
	require.Len(t, ended, 2)
	h, p := ended[0], ended[1]
	assert.Equal(t, "handle persist", h.Name())
	assert.Equal(t, p.SpanContext().SpanID(), h.Parent().SpanID())
	assert.Equal(t, codes.Error, h.Status().Code)
	assert.InDelta(t, 20*time.Millisecond, h.EndTime().Sub(h.StartTime()), float64(time.Millisecond))
	require.Len(t, p.Events(), 1, "no handler events with handler spans")
	assert.Equal(t, "exception", p.Events()[0].Name)
}

func TestSampledOutStillPropagates(t *testing.T) {
	e := newEnv(t)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(e.spans))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	o := mqotel.New(mqotel.WithTracerProvider(tp), mqotel.WithMeterProvider(metricnoop.NewMeterProvider()))

	ctx, hs := o.SendStarted(context.Background(), "orders", nil)
	require.Len(t, hs, 1)
	assert.True(t, strings.HasSuffix(string(hs[0].Value), "-00"), "not-sampled flag propagated: %s", hs[0].Value)
	o.SendFinished(ctx, "orders", 0, 0, time.Millisecond, nil)

	pctx := o.ProcessStarted(context.Background(), mq.MessageInfo{Topic: "orders", Headers: hs})
	sc := trace.SpanContextFromContext(pctx)
	assert.True(t, sc.IsValid())
	assert.False(t, sc.IsSampled())
	o.ProcessFinished(pctx, mq.MessageInfo{Topic: "orders"}, mq.OutcomeHandled, time.Millisecond, nil)
	assert.Empty(t, e.spans.Ended())
}

func TestCustomPropagator(t *testing.T) {
	e := newEnv(t, mqotel.WithPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))
	_, hs := e.obs.SendStarted(context.Background(), "orders", []mq.Header{{Key: "baggage", Value: []byte("k=v")}})
	c := &mqotel.HeaderCarrier{Headers: hs}
	assert.NotEmpty(t, c.Get("traceparent"))
	assert.ElementsMatch(t, []string{"baggage", "traceparent"}, c.Keys())
}

func TestCombinedObserversEndTheirOwnSpans(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	obs := mq.Observers(a.obs, b.obs)
	ctx, hs := obs.SendStarted(context.Background(), "orders", nil)
	obs.SendFinished(ctx, "orders", 0, 1, time.Millisecond, nil)
	require.Len(t, a.spans.Ended(), 1)
	require.Len(t, b.spans.Ended(), 1)
	// b's span was started under a's, and b's context is the one in the headers.
	assert.Equal(t, a.spans.Ended()[0].SpanContext().TraceID(), b.spans.Ended()[0].SpanContext().TraceID())
	assert.Contains(t, string(hs[0].Value), b.spans.Ended()[0].SpanContext().SpanID().String())

	info := mq.MessageInfo{Topic: "orders", Headers: hs}
	pctx := obs.ProcessStarted(context.Background(), info)
	obs.ProcessFinished(pctx, info, mq.OutcomeHandled, time.Millisecond, nil)
	require.Len(t, a.spans.Ended(), 2)
	require.Len(t, b.spans.Ended(), 2)
	assert.Equal(t, "process orders", a.spans.Ended()[1].Name())
	assert.Equal(t, "process orders", b.spans.Ended()[1].Name())
}

// With noop providers the observer allocates nothing and changes nothing.
func TestNoopProvidersCostNothing(t *testing.T) {
	o := mqotel.New(mqotel.WithMeterProvider(metricnoop.NewMeterProvider()),
		mqotel.WithTracerProvider(tracenoop.NewTracerProvider()))
	hs := []mq.Header{{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}}
	info := mq.MessageInfo{Topic: "orders", Partition: 1, Offset: 9, Headers: hs, Group: "g"}
	bg := context.Background()
	var got []mq.Header
	allocs := testing.AllocsPerRun(1000, func() {
		ctx, h := o.SendStarted(bg, "orders", hs)
		o.SendFinished(ctx, "orders", 1, 9, time.Millisecond, nil)
		pctx := o.ProcessStarted(bg, info)
		o.HandlerFinished(pctx, info, "persist", 1, time.Millisecond, nil)
		o.ProcessFinished(pctx, info, mq.OutcomeHandled, time.Millisecond, nil)
		o.Committed("g", "orders", 1, 10)
		got = h
	})
	assert.Zero(t, allocs)
	assert.Equal(t, hs, got)
}

// With the SDK, the metrics path allocates nothing per message once the
// attribute sets of a partition and handler are cached.
func TestMetricsHotPathDoesNotAllocate(t *testing.T) {
	e := newEnv(t, mqotel.WithTracerProvider(tracenoop.NewTracerProvider()))
	o := e.obs
	info := mq.MessageInfo{Topic: "orders", Partition: 1, Offset: 9, Group: "g"}
	bg := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		ctx, _ := o.SendStarted(bg, "orders", nil)
		o.SendFinished(ctx, "orders", 1, 9, time.Millisecond, nil)
		pctx := o.ProcessStarted(bg, info)
		o.HandlerFinished(pctx, info, "persist", 1, time.Millisecond, nil)
		o.ProcessFinished(pctx, info, mq.OutcomeHandled, time.Millisecond, nil)
	})
	assert.Zero(t, allocs)
}

type fakeConsumer struct{ st mq.ConsumerStats }

func (f *fakeConsumer) Stats() mq.ConsumerStats { return f.st }

type fakeProducer struct {
	topic    string
	buffered int64
}

func (f *fakeProducer) Topic() string           { return f.topic }
func (f *fakeProducer) Stats() mq.ProducerStats { return mq.ProducerStats{Buffered: f.buffered} }

func TestObserveStats(t *testing.T) {
	e := newEnv(t)
	c1 := &fakeConsumer{mq.ConsumerStats{Partitions: []mq.PartitionStats{
		{Topic: "orders", Partition: 0, Lag: 5, InFlight: 2},
		{Topic: "orders", Partition: 1, Lag: 0},
	}}}
	c2 := &fakeConsumer{mq.ConsumerStats{Partitions: []mq.PartitionStats{ // mid-rebalance overlap
		{Topic: "orders", Partition: 1, Lag: 3, InFlight: 1},
	}}}
	unC1, err := e.obs.ObserveConsumer("g", c1)
	require.NoError(t, err)
	unC2, err := e.obs.ObserveConsumer("g", c2)
	require.NoError(t, err)
	unP1, err := e.obs.ObserveProducer(&fakeProducer{"orders", 4})
	require.NoError(t, err)
	unP2, err := e.obs.ObserveProducer(&fakeProducer{"orders", 6})
	require.NoError(t, err)
	_, err = e.obs.ObserveConsumer("g", nil)
	require.Error(t, err)

	m := e.collect(t)
	byPart := func(name string) map[string]int64 {
		out := map[string]int64{}
		for _, dp := range m.gauge(t, name) {
			p, _ := dp.Attributes.Value(semconv.MessagingDestinationPartitionIDKey)
			g, _ := dp.Attributes.Value(semconv.MessagingConsumerGroupNameKey)
			require.Equal(t, "g", g.AsString())
			out[p.AsString()] = dp.Value
		}
		return out
	}
	assert.Equal(t, map[string]int64{"0": 5, "1": 3}, byPart("mq.consumer.lag"))
	assert.Equal(t, map[string]int64{"0": 2, "1": 1}, byPart("mq.consumer.in_flight"))
	buf := m.gauge(t, "mq.producer.buffered")
	require.Len(t, buf, 1)
	assert.EqualValues(t, 10, buf[0].Value)

	unC2()
	unC2() // idempotent
	unP1()
	m = e.collect(t)
	assert.Equal(t, map[string]int64{"0": 5, "1": 0}, byPart("mq.consumer.lag"))
	assert.EqualValues(t, 6, m.gauge(t, "mq.producer.buffered")[0].Value)

	unC1()
	unP2()
	m = e.collect(t)
	assert.Empty(t, m.gauge(t, "mq.consumer.lag"))
	assert.Empty(t, m.gauge(t, "mq.producer.buffered"))

	// Registering again after everything was removed works.
	un, err := e.obs.ObserveConsumer("g", c1)
	require.NoError(t, err)
	defer un()
	assert.Len(t, e.collect(t).gauge(t, "mq.consumer.lag"), 2)
}

func TestHeaderCarrier(t *testing.T) {
	c := &mqotel.HeaderCarrier{Headers: []mq.Header{{Key: "a", Value: []byte("1")}, {Key: "a", Value: []byte("2")}}}
	assert.Equal(t, "2", c.Get("a"))
	assert.Equal(t, "", c.Get("b"))
	c.Set("a", "3")
	c.Set("b", "4")
	assert.Equal(t, []mq.Header{{Key: "a", Value: []byte("1")}, {Key: "a", Value: []byte("3")}, {Key: "b", Value: []byte("4")}}, c.Headers)
	assert.Equal(t, []string{"a", "a", "b"}, c.Keys())
}
