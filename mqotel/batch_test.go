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
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// A consumer with a per-message handler ("validate") and a batch handler
// ("store") traces each message as the per-message path does: its process
// span, child of the producer's send span, starts before any handler and
// ends after them; "validate" runs in it; each handler call is an event on
// it; "store", called once for many messages, gets the consumer's context.
// Message 2 fails "validate" once and leaves the batch for its retry: it
// still has one process span, holding all three calls.
func TestBatchHandlerTraces(t *testing.T) {
	const n = 6
	e := newEnv(t)
	topic := cluster.NewTopic(t, 1)
	group := "g-" + topic
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	p, err := mq.NewProducer[event](cluster.Addrs(), topic, mq.WithObserver(e.obs))
	require.NoError(t, err)
	for i := range n {
		_, err := p.Send(ctx, []byte("k"), event{ID: i}) // a trace of its own each
		require.NoError(t, err)
	}
	require.NoError(t, p.Close())

	c, err := mq.NewKafkaConsumer[event](cluster.Addrs(), topic, group,
		consumerOptions(t, mq.WithObserver(e.obs), mq.WithBatchMaxMessages(n), mq.WithBatchLinger(50*time.Millisecond))...)
	require.NoError(t, err)

	type call struct {
		handler string
		at      time.Time
		span    trace.SpanContext
	}
	var mu sync.Mutex
	calls := map[int64][]call{} // offset -> the handler calls on it, in order
	failed := false
	require.NoError(t, c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[event]) error {
		mu.Lock()
		defer mu.Unlock()
		calls[m.Offset] = append(calls[m.Offset], call{"validate", time.Now(), trace.SpanContextFromContext(ctx)})
		if m.Value.ID == 2 && !failed {
			failed = true
			return errors.New("not yet")
		}
		return nil
	}, mq.WithHandlerName("validate")))
	require.NoError(t, c.RegisterBatchHandlerFunc(func(ctx context.Context, msgs []mq.Message[event]) error {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		for _, m := range msgs {
			calls[m.Offset] = append(calls[m.Offset], call{"store", now, trace.SpanContextFromContext(ctx)})
		}
		return nil
	}, mq.WithHandlerName("store")))

	runErr := make(chan error, 1)
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { runErr <- c.Run(runCtx) }()
	require.Eventually(t, func() bool { return len(consumerSpans(e)) == n }, 30*time.Second, 10*time.Millisecond)
	stop()
	require.NoError(t, <-runErr)

	sends := map[string]sdktrace.ReadOnlySpan{} // offset -> send span
	for _, s := range e.spans.Ended() {
		if s.SpanKind() == trace.SpanKindProducer {
			sends[attrOf(s, semconv.MessagingKafkaOffsetKey)] = s
		}
	}
	require.Len(t, sends, n)
	processes := consumerSpans(e)
	require.Len(t, processes, n, "one process span per message")

	mu.Lock()
	defer mu.Unlock()
	for _, s := range processes {
		off := attrOf(s, semconv.MessagingKafkaOffsetKey)
		send := sends[off]
		require.NotNil(t, send, "no send span for offset %s", off)
		assert.Equal(t, send.SpanContext().TraceID(), s.Parent().TraceID(), "offset %s: trace from the headers", off)
		assert.Equal(t, send.SpanContext().SpanID(), s.Parent().SpanID())
		assert.Equal(t, "handled", attrOf(s, mqotel.OutcomeKey))

		o, err := strconv.ParseInt(off, 10, 64)
		require.NoError(t, err)
		got := calls[o]
		var want []string // the handler events, one per call
		for _, cl := range got {
			want = append(want, "handler "+cl.handler)
			assert.False(t, cl.at.Before(s.StartTime()), "offset %s: %s called before its process span started", off, cl.handler)
			assert.False(t, cl.at.After(s.EndTime()), "offset %s: %s called after its process span ended", off, cl.handler)
			switch {
			case cl.handler == "validate":
				assert.Equal(t, s.SpanContext(), cl.span, "offset %s: validate runs in the process span", off)
				assert.Equal(t, send.SpanContext().TraceID(), cl.span.TraceID())
			case off == "2": // store on message 2 alone, in its retry
				assert.Equal(t, s.SpanContext(), cl.span, "offset 2: store on the message alone runs in its span")
			default:
				assert.False(t, cl.span.IsValid(), "offset %s: a batch handler gets the consumer's context", off)
			}
		}
		var evs []string
		for _, ev := range s.Events() {
			evs = append(evs, ev.Name)
		}
		assert.Equal(t, want, evs, "offset %s", off)
		if off == "2" {
			assert.Equal(t, []string{"handler validate", "handler store", "handler validate"}, evs)
			require.Len(t, s.Events(), 3)
			assert.Contains(t, s.Events()[0].Attributes, semconv.ErrorTypeKey.String("*errors.errorString"))
			assert.Contains(t, s.Events()[2].Attributes, mqotel.AttemptKey.Int(2))
		} else {
			assert.Equal(t, []string{"handler validate", "handler store"}, evs, "offset %s", off)
		}
	}
}

// consumerSpans are the ended process spans.
func consumerSpans(e *env) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range e.spans.Ended() {
		if s.SpanKind() == trace.SpanKindConsumer {
			out = append(out, s)
		}
	}
	return out
}
