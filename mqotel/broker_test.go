package mqotel_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqotel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

type event struct {
	ID int `json:"id"`
}

// consumerOptions make group tests quick on a local broker.
func consumerOptions(t testing.TB, extra ...mq.ConsumerOption) []mq.ConsumerOption {
	return append([]mq.ConsumerOption{
		mq.WithLogger(zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))),
		mq.WithHeartbeatInterval(100 * time.Millisecond),
		mq.WithSessionTimeout(2 * time.Second),
		mq.WithRebalanceTimeout(5 * time.Second),
		mq.WithCommitInterval(100 * time.Millisecond),
		mq.WithFetchMaxWait(100 * time.Millisecond),
		mq.WithShutdownTimeout(5 * time.Second),
		mq.WithRetryPolicy(mq.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Multiplier: 2}),
	}, extra...)
}

func attrOf(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	v, _ := spanAttr(s, key)
	return v.String()
}

// A known workload through a real producer and consumer: 20 messages on two
// partitions; handler "persist" fails permanently on message 3 (skipped by
// SkipRecoverer), handler "audit" fails once on message 5 and succeeds on
// its retry. Every counter, span and gauge is checked exactly.
func TestWorkloadMetricsAndTraces(t *testing.T) {
	const n = 20
	e := newEnv(t)
	topic := cluster.NewTopic(t, 2)
	group := "g-" + topic
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	p, err := mq.NewProducer[event](cluster.Addrs(), topic, mq.WithObserver(e.obs))
	require.NoError(t, err)
	defer func() { _ = p.Close() }()
	unP, err := e.obs.ObserveProducer(p)
	require.NoError(t, err)
	defer unP()
	for i := range n {
		// Each message is sent under its own context: 20 distinct traces.
		_, err := p.Send(ctx, []byte(strconv.Itoa(i)), event{ID: i})
		require.NoError(t, err)
	}

	c, err := mq.NewKafkaConsumer[event](cluster.Addrs(), topic, group,
		consumerOptions(t, mq.WithObserver(e.obs), mq.WithRecoverer(mq.SkipRecoverer()))...)
	require.NoError(t, err)
	unC, err := e.obs.ObserveConsumer(group, c)
	require.NoError(t, err)
	defer unC()

	var mu sync.Mutex
	handlerSpan := map[int]trace.SpanContext{} // message ID -> span context the handler saw
	auditFailed := false
	require.NoError(t, c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[event]) error {
		mu.Lock()
		handlerSpan[m.Value.ID] = trace.SpanContextFromContext(ctx)
		mu.Unlock()
		if m.Value.ID == 3 {
			return mq.Permanent(errors.New("invalid order"))
		}
		return nil
	}, mq.WithHandlerName("persist")))
	require.NoError(t, c.RegisterHandlerFunc(func(_ context.Context, m mq.Message[event]) error {
		mu.Lock()
		defer mu.Unlock()
		if m.Value.ID == 5 && !auditFailed {
			auditFailed = true
			return errors.New("audit log busy")
		}
		return nil
	}, mq.WithHandlerName("audit")))

	runErr := make(chan error, 1)
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { runErr <- c.Run(runCtx) }()

	// The lag gauge reaches 0 on both partitions once everything is
	// consumed and committed.
	var lagPoints int
	require.Eventually(t, func() bool {
		m := e.collect(t)
		lag := m.gauge(t, "mq.consumer.lag")
		lagPoints = len(lag)
		if len(lag) != 2 || m.sum(t, "mq.consumer.processed.messages") < n {
			return false
		}
		for _, dp := range lag {
			if dp.Value != 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "lag points: %d", lagPoints)
	m := e.collect(t)
	stop()
	require.NoError(t, <-runErr)

	// ----- metrics -----
	dest := semconv.MessagingDestinationName(topic)
	grp := semconv.MessagingConsumerGroupName(group)
	noErr := absent(semconv.ErrorTypeKey)
	assert.EqualValues(t, n, m.sum(t, "messaging.client.sent.messages", dest, noErr))
	assert.EqualValues(t, n, m.sum(t, "messaging.client.sent.messages"))
	assert.EqualValues(t, n, m.count(t, "messaging.client.operation.duration", dest, noErr))
	assert.EqualValues(t, n, m.sum(t, "messaging.client.consumed.messages", dest, grp))
	assert.EqualValues(t, n-1, m.sum(t, "mq.consumer.processed.messages", mqotel.OutcomeKey.String("handled"), noErr))
	assert.EqualValues(t, 1, m.sum(t, "mq.consumer.processed.messages", mqotel.OutcomeKey.String("skipped"),
		semconv.ErrorTypeKey.String("*errors.errorString")))
	assert.EqualValues(t, n, m.sum(t, "mq.consumer.processed.messages"))
	assert.EqualValues(t, n, m.count(t, "messaging.process.duration", dest, grp))
	persist, audit := mqotel.HandlerKey.String("persist"), mqotel.HandlerKey.String("audit")
	assert.EqualValues(t, n-1, m.sum(t, "mq.handler.calls", persist, noErr))
	assert.EqualValues(t, 1, m.sum(t, "mq.handler.calls", persist, semconv.ErrorTypeKey.String("*errors.errorString")))
	assert.EqualValues(t, n, m.sum(t, "mq.handler.calls", audit, noErr))
	assert.EqualValues(t, 1, m.sum(t, "mq.handler.calls", audit, semconv.ErrorTypeKey.String("*errors.errorString")))
	assert.EqualValues(t, 0, m.sum(t, "mq.handler.retries", persist))
	assert.EqualValues(t, 1, m.sum(t, "mq.handler.retries", audit))
	assert.EqualValues(t, n+1, m.count(t, "mq.handler.duration", audit))
	assert.EqualValues(t, 1, m.sum(t, "mq.consumer.rebalances", grp))
	assert.GreaterOrEqual(t, m.sum(t, "mq.consumer.commits", grp), int64(2), "at least one commit per partition")
	buffered := m.gauge(t, "mq.producer.buffered")
	require.Len(t, buffered, 1)
	assert.Zero(t, buffered[0].Value)

	// The observer agrees with the consumer's own counters.
	st := c.Stats()
	assert.EqualValues(t, n, st.Consumed)
	assert.EqualValues(t, 2*n-1, st.Handled)
	assert.EqualValues(t, 1, st.Skipped)
	assert.EqualValues(t, 1, st.Retries)

	// ----- traces -----
	sends := map[string]sdktrace.ReadOnlySpan{} // "partition/offset" -> send span
	var processes []sdktrace.ReadOnlySpan
	for _, s := range e.spans.Ended() {
		switch s.SpanKind() {
		case trace.SpanKindProducer:
			assert.Equal(t, "send "+topic, s.Name())
			assert.Equal(t, codes.Unset, s.Status().Code)
			sends[attrOf(s, semconv.MessagingDestinationPartitionIDKey)+"/"+attrOf(s, semconv.MessagingKafkaOffsetKey)] = s
		case trace.SpanKindConsumer:
			processes = append(processes, s)
		}
	}
	require.Len(t, sends, n)
	require.Len(t, processes, n)
	traces := map[trace.TraceID]bool{}
	for _, s := range sends {
		traces[s.SpanContext().TraceID()] = true
	}
	assert.Len(t, traces, n, "one trace per send")

	failed := 0
	for _, s := range processes {
		assert.Equal(t, "process "+topic, s.Name())
		key := attrOf(s, semconv.MessagingDestinationPartitionIDKey) + "/" + attrOf(s, semconv.MessagingKafkaOffsetKey)
		send, ok := sends[key]
		require.True(t, ok, "no send span for %s", key)
		assert.Equal(t, send.SpanContext().TraceID(), s.Parent().TraceID(), "trace context propagated via headers")
		assert.Equal(t, send.SpanContext().SpanID(), s.Parent().SpanID())
		assert.Equal(t, group, attrOf(s, semconv.MessagingConsumerGroupNameKey))
		if s.Status().Code == codes.Error {
			failed++
			assert.Equal(t, "skipped", attrOf(s, mqotel.OutcomeKey))
			assert.Equal(t, "invalid order", s.Status().Description)
			assert.Len(t, s.Events(), 3, "persist, audit, exception")
		} else {
			assert.Equal(t, "handled", attrOf(s, mqotel.OutcomeKey))
		}
	}
	assert.Equal(t, 1, failed, "exactly the skipped message has an error status")

	// Handlers ran inside their message's process span.
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, handlerSpan, n)
	byID := map[trace.SpanID]bool{}
	for _, s := range processes {
		byID[s.SpanContext().SpanID()] = true
	}
	for id, sc := range handlerSpan {
		assert.True(t, byID[sc.SpanID()], "message %d: handler context holds a process span", id)
	}
}
