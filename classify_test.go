package mq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/fetch"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Unit tests of error classification and FuncRecoverer: the handler pipeline
// runs on a hand-built processor, without a broker.

var (
	errInvalid = errors.New("invalid order")
	errBusy    = errors.New("database busy")
)

type testEvent struct {
	ID int `json:"id"`
}

// fastRetry keeps blocking retries short.
var fastRetry = RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Multiplier: 1}

// recorderCalls records the failed messages a FuncRecoverer saw.
type recorderCalls struct {
	mu    sync.Mutex
	calls []FailedMessage
}

func (r *recorderCalls) add(f FailedMessage) {
	r.mu.Lock()
	r.calls = append(r.calls, f)
	r.mu.Unlock()
}

// option returns a recoverer option that records every failed message and
// recovers it.
func (r *recorderCalls) option() ConsumerOption {
	return WithRecoverer(FuncRecoverer(func(_ context.Context, f FailedMessage) error { r.add(f); return nil }))
}

func (r *recorderCalls) all() []FailedMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]FailedMessage(nil), r.calls...)
}

type testPipeline struct {
	c    *KafkaConsumer[testEvent]
	p    *processor[testEvent]
	s    *session[testEvent]
	stop context.CancelFunc // cancels soft, as a stop request does
}

// newTestPipeline builds a consumer with opts, registers handlers with it,
// and returns a processor for its main topic.
func newTestPipeline(t *testing.T, opts []ConsumerOption, register func(c *KafkaConsumer[testEvent])) *testPipeline {
	t.Helper()
	c, err := NewKafkaConsumer[testEvent]([]string{"127.0.0.1:9092"}, "orders", "billing",
		append([]ConsumerOption{WithRetryPolicy(fastRetry)}, opts...)...)
	require.NoError(t, err)
	register(c)
	soft, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	hard := context.Background()
	s := &session[testEvent]{c: c, handlers: c.handlers, runCtx: soft, stop: cancel, userCtx: hard,
		subs: []subscription{{topic: "orders", main: "orders"}}}
	return &testPipeline{c: c, s: s, stop: cancel, p: &processor[testEvent]{s: s, soft: soft, hard: hard, log: c.log}}
}

func testMessage(offset int64, value string) inbound {
	return inbound{ps: &partitionState{topic: "orders", main: "orders", id: 2},
		rec: &fetch.Record{Offset: offset, Key: []byte("k"), Value: []byte(value),
			Headers: []kafka.Header{{Key: "trace", Value: []byte("t1")}}, Timestamp: time.UnixMilli(1700000000000)}}
}

// failWith returns a handler that fails with err and counts its calls.
func failWith(calls *atomic.Int32, err error) HandlerFunc[testEvent] {
	return func(context.Context, Message[testEvent]) error {
		calls.Add(1)
		return err
	}
}

func TestNotRetryableSkipsRetriesAndReachesRecoverer(t *testing.T) {
	var rec recorderCalls
	var invalidCalls, busyCalls atomic.Int32
	tp := newTestPipeline(t, []ConsumerOption{
		WithRetryableIf(NotRetryable(errInvalid)),
		rec.option(),
	}, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterHandler(failWith(&invalidCalls, fmt.Errorf("order 7: %w", errInvalid)), WithHandlerName("validate")))
	})
	require.True(t, tp.p.process(testMessage(41, `{"id":7}`)), "a recovered message may be committed")
	assert.EqualValues(t, 1, invalidCalls.Load(), "a classified error is not retried")
	calls := rec.all()
	require.Len(t, calls, 1, "the recoverer is called once per failed message")
	f := calls[0]
	assert.ErrorIs(t, f.Err, errInvalid)
	assert.Equal(t, []string{"validate"}, f.Handlers)
	assert.Equal(t, 1, f.Attempts)
	assert.Equal(t, "billing", f.Group)
	assert.Equal(t, "orders", f.Message.Topic)
	assert.Equal(t, 2, f.Message.Partition)
	assert.EqualValues(t, 41, f.Message.Offset)
	assert.Equal(t, []byte(`{"id":7}`), f.Message.Value)
	assert.Equal(t, []byte("k"), f.Message.Key)
	assert.Equal(t, "t1", func() string { v, _ := f.Message.Header("trace"); return string(v) }())
	st := tp.c.Stats()
	assert.Zero(t, st.Retries)
	assert.EqualValues(t, 1, st.Recovered)

	// Errors the classification leaves alone are retried as before.
	tp2 := newTestPipeline(t, []ConsumerOption{
		WithRetryableIf(NotRetryable(errInvalid)),
		WithRecoverer(FuncRecoverer(func(context.Context, FailedMessage) error { return nil })),
	}, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterHandler(failWith(&busyCalls, errBusy)))
	})
	require.True(t, tp2.p.process(testMessage(1, `{"id":1}`)))
	assert.EqualValues(t, fastRetry.MaxAttempts, busyCalls.Load())
	assert.EqualValues(t, fastRetry.MaxAttempts-1, tp2.c.Stats().Retries)
}

func TestRetryableOnly(t *testing.T) {
	for _, tc := range []struct {
		err   error
		calls int32
	}{
		{fmt.Errorf("wrapped: %w", errBusy), int32(fastRetry.MaxAttempts)},
		{errInvalid, 1},
		{errors.New("anything else"), 1},
	} {
		var calls atomic.Int32
		tp := newTestPipeline(t, []ConsumerOption{
			WithRetryableIf(RetryableOnly(errBusy)),
			WithRecoverer(SkipRecoverer()),
		}, func(c *KafkaConsumer[testEvent]) {
			require.NoError(t, c.RegisterHandler(failWith(&calls, tc.err)))
		})
		require.True(t, tp.p.process(testMessage(1, `{"id":1}`)))
		assert.Equal(t, tc.calls, calls.Load(), "error %v", tc.err)
		assert.EqualValues(t, 1, tp.c.Stats().Skipped)
	}
}

// A handler's classification wins over the consumer's, and Permanent wins
// over any classification.
func TestHandlerClassificationWins(t *testing.T) {
	var strict, lenient, permanent atomic.Int32
	tp := newTestPipeline(t, []ConsumerOption{
		WithRetryableIf(NotRetryable(errInvalid)),
		WithRecoverer(SkipRecoverer()),
	}, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterHandler(failWith(&strict, errInvalid), WithHandlerName("strict")))
		require.NoError(t, c.RegisterHandler(failWith(&lenient, errInvalid), WithHandlerName("lenient"),
			WithHandlerRetryableIf(func(error) bool { return true })))
		require.NoError(t, c.RegisterHandler(failWith(&permanent, Permanent(errBusy)), WithHandlerName("permanent"),
			WithHandlerRetryableIf(func(error) bool { return true })))
	})
	require.True(t, tp.p.process(testMessage(1, `{"id":1}`)))
	assert.EqualValues(t, 1, strict.Load(), "consumer classification")
	assert.EqualValues(t, fastRetry.MaxAttempts, lenient.Load(), "handler classification wins")
	assert.EqualValues(t, 1, permanent.Load(), "Permanent is never retried")
}

// A recoverer error keeps the message uncommitted and is retried; once the
// recoverer succeeds the message may be committed.
func TestFuncRecovererErrorIsRetried(t *testing.T) {
	var rec recorderCalls
	tp := newTestPipeline(t, []ConsumerOption{
		WithRecoverer(FuncRecoverer(func(_ context.Context, f FailedMessage) error {
			rec.add(f)
			if len(rec.all()) < 3 {
				return errors.New("failure table unavailable")
			}
			return nil
		})),
	}, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterHandlerFunc(func(context.Context, Message[testEvent]) error { return Permanent(errInvalid) }))
	})
	require.True(t, tp.p.process(testMessage(5, `{"id":5}`)))
	calls := rec.all()
	require.Len(t, calls, 3)
	for _, f := range calls {
		assert.EqualValues(t, 5, f.Message.Offset, "the same message until the recoverer succeeds")
	}
	assert.EqualValues(t, 1, tp.c.Stats().Recovered)
}

// A stop while the recoverer keeps failing leaves the message uncommitted.
func TestFuncRecovererStopLeavesMessageUncommitted(t *testing.T) {
	var calls atomic.Int32
	var tp *testPipeline
	tp = newTestPipeline(t, []ConsumerOption{
		WithRecoverer(FuncRecoverer(func(context.Context, FailedMessage) error {
			if calls.Add(1) == 2 {
				tp.stop() // a stop request arrives while the recoverer fails
			}
			return errors.New("down")
		})),
	}, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterHandlerFunc(func(context.Context, Message[testEvent]) error { return Permanent(errInvalid) }))
	})
	assert.False(t, tp.p.process(testMessage(5, `{"id":5}`)), "not committable")
	assert.EqualValues(t, 2, calls.Load())
	assert.Zero(t, tp.c.Stats().Recovered)
	assert.NoError(t, tp.s.fatalErr(), "a stop is not a failure")
}

// A Permanent recoverer error stops the consumer with a *RecovererError that
// wraps the recoverer's error and the message's *HandlerError.
func TestFuncRecovererPermanentErrorStops(t *testing.T) {
	errGone := errors.New("archive gone")
	tp := newTestPipeline(t, []ConsumerOption{
		WithRecoverer(FuncRecoverer(func(context.Context, FailedMessage) error { return Permanent(errGone) })),
	}, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterHandlerFunc(func(context.Context, Message[testEvent]) error { return Permanent(errInvalid) },
			WithHandlerName("persist")))
	})
	assert.False(t, tp.p.process(testMessage(9, `{"id":9}`)))
	err := tp.s.fatalErr()
	var rerr *RecovererError
	require.ErrorAs(t, err, &rerr)
	assert.ErrorIs(t, err, errGone)
	assert.ErrorIs(t, err, errInvalid)
	var herr *HandlerError
	require.ErrorAs(t, err, &herr)
	assert.Equal(t, "persist", herr.Handler)
	assert.EqualValues(t, 9, herr.Offset)
	assert.Contains(t, err.Error(), "mq: recoverer gave up: archive gone")
}

// Decode failures reach a FuncRecoverer too, with the *DecodeError; a panic
// in the recoverer is retried like an error.
func TestFuncRecovererDecodeFailureAndPanic(t *testing.T) {
	var rec recorderCalls
	tp := newTestPipeline(t, []ConsumerOption{
		WithRecoverer(FuncRecoverer(func(_ context.Context, f FailedMessage) error {
			rec.add(f)
			if len(rec.all()) == 1 {
				panic("recoverer bug")
			}
			return nil
		})),
	}, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterHandlerFunc(func(context.Context, Message[testEvent]) error {
			t.Error("the handler must not see an undecodable message")
			return nil
		}))
	})
	require.True(t, tp.p.process(testMessage(3, "not json")))
	calls := rec.all()
	require.Len(t, calls, 2, "called again after the panic")
	var derr *DecodeError
	require.ErrorAs(t, calls[1].Err, &derr)
	assert.EqualValues(t, 3, derr.Offset)
	assert.Empty(t, calls[1].Handlers)
	assert.Zero(t, calls[1].Attempts)
	assert.Equal(t, []byte("not json"), calls[1].Message.Value)
}

func TestFuncRecovererValidation(t *testing.T) {
	_, err := NewKafkaConsumer[testEvent]([]string{"127.0.0.1:9092"}, "t", "g", WithRecoverer(FuncRecoverer(nil)))
	require.ErrorIs(t, err, ErrInvalidOption)
	assert.Empty(t, FuncRecoverer(func(context.Context, FailedMessage) error { return nil }).Topics("t"),
		"a func recoverer writes to no topic of mq's")
	assert.Equal(t, "func", FuncRecoverer(func(context.Context, FailedMessage) error { return nil }).String())
}

func TestClassificationHelpers(t *testing.T) {
	wrapped := fmt.Errorf("ctx: %w", errInvalid)
	notRetryable := NotRetryable(errInvalid, context.Canceled)
	assert.False(t, notRetryable(wrapped))
	assert.False(t, notRetryable(context.Canceled))
	assert.True(t, notRetryable(errBusy))
	only := RetryableOnly(errBusy)
	assert.True(t, only(fmt.Errorf("x: %w", errBusy)))
	assert.False(t, only(errInvalid))
	assert.True(t, NotRetryable()(errBusy), "no targets: everything retryable")
	assert.False(t, RetryableOnly()(errBusy), "no targets: nothing retryable")
}
