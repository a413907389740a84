package mq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestPermanent(t *testing.T) {
	base := errors.New("bad input")
	p := mq.Permanent(base)
	assert.True(t, mq.IsPermanent(p))
	assert.True(t, mq.IsPermanent(errors.Join(errors.New("x"), p)), "found through wrapping")
	assert.ErrorIs(t, p, base)
	assert.Equal(t, "bad input", p.Error())
	assert.False(t, mq.IsPermanent(base))
	assert.NoError(t, mq.Permanent(nil))
}

func TestTimeoutMiddleware(t *testing.T) {
	h := mq.Chain[ChatMessage](mq.HandlerFunc[ChatMessage](func(ctx context.Context, _ mq.Message[ChatMessage]) error {
		<-ctx.Done()
		return ctx.Err()
	}), mq.Timeout[ChatMessage](20*time.Millisecond))
	// The handler returns only when its context ends, and the caller's
	// context never does: the deadline can only come from the middleware.
	err := h.Handle(context.Background(), mq.Message[ChatMessage]{})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestRetryMiddleware(t *testing.T) {
	policy := mq.RetryPolicy{MaxAttempts: 4, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Multiplier: 1}
	calls := 0
	h := mq.Retry[ChatMessage](policy)(mq.HandlerFunc[ChatMessage](func(context.Context, mq.Message[ChatMessage]) error {
		calls++
		if calls < 3 {
			return errors.New("transient")
		}
		return nil
	}))
	require.NoError(t, h.Handle(context.Background(), mq.Message[ChatMessage]{}))
	assert.Equal(t, 3, calls)

	calls = 0
	h = mq.Retry[ChatMessage](policy)(mq.HandlerFunc[ChatMessage](func(context.Context, mq.Message[ChatMessage]) error {
		calls++
		return mq.Permanent(errors.New("no"))
	}))
	require.Error(t, h.Handle(context.Background(), mq.Message[ChatMessage]{}))
	assert.Equal(t, 1, calls, "permanent errors are not retried")

	calls = 0
	h = mq.Retry[ChatMessage](policy)(mq.HandlerFunc[ChatMessage](func(context.Context, mq.Message[ChatMessage]) error {
		calls++
		return errors.New("always")
	}))
	require.EqualError(t, h.Handle(context.Background(), mq.Message[ChatMessage]{}), "always")
	assert.Equal(t, 4, calls)
}

func TestLoggingMiddleware(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	h := mq.Logging[ChatMessage](zap.New(core), "persist")(mq.HandlerFunc[ChatMessage](func(_ context.Context, m mq.Message[ChatMessage]) error {
		if m.Offset == 2 {
			return errors.New("boom")
		}
		return nil
	}))
	require.NoError(t, h.Handle(context.Background(), mq.Message[ChatMessage]{Offset: 1}))
	require.Error(t, h.Handle(context.Background(), mq.Message[ChatMessage]{Offset: 2}))
	entries := logs.All()
	require.Len(t, entries, 2)
	assert.Equal(t, zap.DebugLevel, entries[0].Level)
	assert.Equal(t, zap.WarnLevel, entries[1].Level)
	assert.Equal(t, "persist", entries[1].ContextMap()["handler"])
	assert.EqualValues(t, 2, entries[1].ContextMap()["offset"])
}

func TestRecovererValidationAndTopics(t *testing.T) {
	brokers := []string{"localhost:9092"}
	for _, r := range []mq.Recoverer{
		mq.RetryTopicRecoverer(nil, ""),
		mq.RetryTopicRecoverer([]time.Duration{time.Second, 0}, ""),
		mq.RetryTopicRecoverer([]time.Duration{-time.Second}, ""),
	} {
		_, err := mq.NewKafkaConsumer[ChatMessage](brokers, "t", "g", mq.WithRecoverer(r))
		require.ErrorIs(t, err, mq.ErrInvalidOption, r.String())
	}
	for _, r := range []mq.Recoverer{mq.StopRecoverer(), mq.SkipRecoverer(), mq.DeadLetterRecoverer(""), {}} {
		_, err := mq.NewKafkaConsumer[ChatMessage](brokers, "t", "g", mq.WithRecoverer(r))
		require.NoError(t, err, r.String())
	}
	assert.Empty(t, mq.StopRecoverer().Topics("orders"))
	assert.Empty(t, mq.SkipRecoverer().Topics("orders"))
	assert.Equal(t, []string{"orders.dlt"}, mq.DeadLetterRecoverer("").Topics("orders"))
	assert.Equal(t, []string{"dead"}, mq.DeadLetterRecoverer("dead").Topics("orders"))
	assert.Equal(t, []string{"orders.retry.1", "orders.retry.2", "orders.dlt"},
		mq.RetryTopicRecoverer([]time.Duration{time.Second, time.Minute}, "").Topics("orders"))
}

func TestHandlerOptionsValidation(t *testing.T) {
	c, err := mq.NewKafkaConsumer[ChatMessage]([]string{"localhost:9092"}, "t", "g")
	require.NoError(t, err)
	noop := func(context.Context, mq.Message[ChatMessage]) error { return nil }
	require.ErrorIs(t, c.RegisterHandlerFunc(noop, mq.WithHandlerName("a,b")), mq.ErrInvalidOption)
	require.ErrorIs(t, c.RegisterHandlerFunc(noop, mq.WithHandlerTimeout(-time.Second)), mq.ErrInvalidOption)
	require.ErrorIs(t, c.RegisterHandlerFunc(nil), mq.ErrNilHandler)
	require.NoError(t, c.RegisterHandlerFunc(noop, mq.WithHandlerTimeout(time.Second)))
}
