package mq_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqkit/mq"
)

type ctxKey struct{}

func testMessage() mq.Message[ChatMessage] {
	return mq.Message[ChatMessage]{
		Topic:     "chat-messages",
		Partition: 3,
		Offset:    42,
		Key:       []byte("conv-7"),
		Value:     sampleMessage,
	}
}

func TestHandlerFunc(t *testing.T) {
	errBoom := errors.New("boom")
	ctx := context.WithValue(context.Background(), ctxKey{}, "v")
	var gotCtx context.Context
	var gotMsg mq.Message[ChatMessage]
	var h mq.Handler[ChatMessage] = mq.HandlerFunc[ChatMessage](func(ctx context.Context, m mq.Message[ChatMessage]) error {
		gotCtx, gotMsg = ctx, m
		return errBoom
	})
	err := h.Handle(ctx, testMessage())
	require.ErrorIs(t, err, errBoom)
	assert.Equal(t, "v", gotCtx.Value(ctxKey{}))
	assert.Equal(t, testMessage(), gotMsg)
}

// tracer is middleware recording when it is entered and left.
func tracer(name string, trace *[]string) mq.Middleware[ChatMessage] {
	return func(next mq.Handler[ChatMessage]) mq.Handler[ChatMessage] {
		return mq.HandlerFunc[ChatMessage](func(ctx context.Context, m mq.Message[ChatMessage]) error {
			*trace = append(*trace, name+">")
			err := next.Handle(ctx, m)
			*trace = append(*trace, "<"+name)
			return err
		})
	}
}

func TestChainOrder(t *testing.T) {
	var trace []string
	h := mq.HandlerFunc[ChatMessage](func(context.Context, mq.Message[ChatMessage]) error {
		trace = append(trace, "handler")
		return nil
	})
	chained := mq.Chain[ChatMessage](h, tracer("a", &trace), tracer("b", &trace), tracer("c", &trace))
	require.NoError(t, chained.Handle(context.Background(), testMessage()))
	assert.Equal(t, []string{"a>", "b>", "c>", "handler", "<c", "<b", "<a"}, trace,
		"the first middleware is the outermost")
}

func TestChainWithoutMiddleware(t *testing.T) {
	called := 0
	h := mq.HandlerFunc[ChatMessage](func(context.Context, mq.Message[ChatMessage]) error {
		called++
		return nil
	})
	chained := mq.Chain[ChatMessage](h)
	require.NoError(t, chained.Handle(context.Background(), testMessage()))
	assert.Equal(t, 1, called)
}

func TestChainMiddlewareCanShortCircuitAndChangeMessages(t *testing.T) {
	errSkip := errors.New("dropped by filter")
	filter := func(next mq.Handler[ChatMessage]) mq.Handler[ChatMessage] {
		return mq.HandlerFunc[ChatMessage](func(ctx context.Context, m mq.Message[ChatMessage]) error {
			if m.Value.SenderID == "spammer" {
				return errSkip
			}
			m.Value.Text = strings.ToUpper(m.Value.Text)
			return next.Handle(ctx, m)
		})
	}
	var seen []string
	h := mq.Chain(mq.Handler[ChatMessage](mq.HandlerFunc[ChatMessage](func(_ context.Context, m mq.Message[ChatMessage]) error {
		seen = append(seen, m.Value.Text)
		return nil
	})), filter)

	ctx := context.Background()
	require.NoError(t, h.Handle(ctx, mq.Message[ChatMessage]{Value: ChatMessage{SenderID: "alice", Text: "hi"}}))
	require.ErrorIs(t, h.Handle(ctx, mq.Message[ChatMessage]{Value: ChatMessage{SenderID: "spammer", Text: "buy"}}), errSkip)
	assert.Equal(t, []string{"HI"}, seen)
}

func panicsInHandler() {
	panic("handler exploded")
}

func TestCatchPanicsTurnsPanicIntoPanicError(t *testing.T) {
	ctx := context.WithValue(context.Background(), ctxKey{}, "trace-id")
	var gotCtx context.Context
	var gotMsg mq.Message[ChatMessage]
	h := mq.Chain(mq.Handler[ChatMessage](mq.HandlerFunc[ChatMessage](func(ctx context.Context, m mq.Message[ChatMessage]) error {
		gotCtx, gotMsg = ctx, m
		panicsInHandler()
		return nil
	})), mq.CatchPanics[ChatMessage]())

	var err error
	require.NotPanics(t, func() { err = h.Handle(ctx, testMessage()) })
	require.Error(t, err)

	var perr *mq.PanicError
	require.ErrorAs(t, err, &perr)
	assert.Equal(t, "handler exploded", perr.Value)
	assert.NotEmpty(t, perr.Stack)
	assert.Contains(t, string(perr.Stack), "panicsInHandler", "the stack shows where the handler panicked")
	assert.Equal(t, "mq: handler panicked: handler exploded", err.Error())

	assert.Equal(t, "trace-id", gotCtx.Value(ctxKey{}), "the context is passed through")
	assert.Equal(t, testMessage(), gotMsg, "the message is passed through")
}

func TestCatchPanicsPanicValues(t *testing.T) {
	errInner := errors.New("inner")
	tests := []struct {
		name  string
		panic func()
		check func(t *testing.T, v any)
	}{
		{"error value", func() { panic(errInner) }, func(t *testing.T, v any) {
			assert.Equal(t, errInner, v)
		}},
		{"runtime error", func() {
			var xs []int
			_ = xs[len(xs)] // index out of range
		}, func(t *testing.T, v any) {
			_, ok := v.(runtime.Error)
			assert.True(t, ok, "got %T", v)
		}},
		{"nil", func() { panic(nil) }, func(t *testing.T, v any) {
			// Since Go 1.21 panic(nil) panics with *runtime.PanicNilError.
			var pne *runtime.PanicNilError
			assert.ErrorAs(t, v.(error), &pne)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mq.CatchPanics[int]()(mq.HandlerFunc[int](func(context.Context, mq.Message[int]) error {
				tt.panic()
				return nil
			}))
			err := h.Handle(context.Background(), mq.Message[int]{})
			var perr *mq.PanicError
			require.ErrorAs(t, err, &perr)
			assert.NotEmpty(t, perr.Stack)
			assert.True(t, strings.HasPrefix(err.Error(), "mq: handler panicked: "), err.Error())
			tt.check(t, perr.Value)
		})
	}
}

func TestCatchPanicsPassesResultsThrough(t *testing.T) {
	errBoom := errors.New("boom")
	for _, want := range []error{nil, errBoom} {
		calls := 0
		h := mq.CatchPanics[int]()(mq.HandlerFunc[int](func(context.Context, mq.Message[int]) error {
			calls++
			return want
		}))
		err := h.Handle(context.Background(), mq.Message[int]{Value: 1})
		assert.Equal(t, want, err, "errors are returned unchanged")
		assert.Equal(t, 1, calls)
	}
}

func TestCatchPanicsInsideChainOnlyCoversInnerHandlers(t *testing.T) {
	var trace []string
	h := mq.Chain(mq.Handler[ChatMessage](mq.HandlerFunc[ChatMessage](func(context.Context, mq.Message[ChatMessage]) error {
		panic("boom")
	})), tracer("outer", &trace), mq.CatchPanics[ChatMessage](), tracer("inner", &trace))
	err := h.Handle(context.Background(), testMessage())
	var perr *mq.PanicError
	require.ErrorAs(t, err, &perr)
	// inner never returns normally (it is unwound by the panic); outer sees the error.
	assert.Equal(t, []string{"outer>", "inner>", "<outer"}, trace)
}

func TestMessageHeader(t *testing.T) {
	m := mq.Message[ChatMessage]{Headers: []mq.Header{
		{Key: "trace-id", Value: []byte("first")},
		{Key: "content-type", Value: []byte("application/json")},
		{Key: "trace-id", Value: []byte("last")},
		{Key: "empty", Value: nil},
	}}

	v, ok := m.Header("trace-id")
	assert.True(t, ok)
	assert.Equal(t, "last", string(v), "the last header with the key wins")

	v, ok = m.Header("content-type")
	assert.True(t, ok)
	assert.Equal(t, "application/json", string(v))

	v, ok = m.Header("empty")
	assert.True(t, ok, "a header with no value exists")
	assert.Empty(t, v)

	v, ok = m.Header("Trace-Id")
	assert.False(t, ok, "keys are case-sensitive")
	assert.Nil(t, v)

	v, ok = m.Header("missing")
	assert.False(t, ok)
	assert.Nil(t, v)

	var none mq.Message[int]
	_, ok = none.Header("trace-id")
	assert.False(t, ok, "no headers at all")
}

func TestRegisterHandlerTypedNil(t *testing.T) {
	c, err := mq.NewKafkaConsumer[int](brokers, topic, group)
	require.NoError(t, err)
	defer c.Close()
	require.ErrorIs(t, c.RegisterHandler(mq.HandlerFunc[int](nil)), mq.ErrNilHandler)
}

// Handler names are unique: the retry tiers record which handlers already
// succeeded by name, so two handlers of one name would let a failed one be
// skipped because its namesake succeeded.
func TestRegisterHandlerDuplicateName(t *testing.T) {
	c, err := mq.NewKafkaConsumer[int](brokers, topic, group)
	require.NoError(t, err)
	defer c.Close()
	ok := func(context.Context, mq.Message[int]) error { return nil }
	require.NoError(t, c.RegisterHandlerFunc(ok, mq.WithHandlerName("persist")))
	err = c.RegisterHandlerFunc(ok, mq.WithHandlerName("persist"))
	require.ErrorIs(t, err, mq.ErrInvalidOption)
	assert.Contains(t, err.Error(), `"persist"`)

	// A default name ("handler-<index>") is taken too.
	require.NoError(t, c.RegisterHandlerFunc(ok)) // handler-1
	require.ErrorIs(t, c.RegisterHandlerFunc(ok, mq.WithHandlerName("handler-1")), mq.ErrInvalidOption)
	require.NoError(t, c.RegisterHandlerFunc(ok, mq.WithHandlerName("audit")))

	// Batch handlers share the names.
	okBatch := func(context.Context, []mq.Message[int]) error { return nil }
	require.ErrorIs(t, c.RegisterBatchHandlerFunc(okBatch, mq.WithHandlerName("audit")), mq.ErrInvalidOption)
	require.NoError(t, c.RegisterBatchHandlerFunc(okBatch, mq.WithHandlerName("bulk")))
	require.ErrorIs(t, c.RegisterHandlerFunc(ok, mq.WithHandlerName("bulk")), mq.ErrInvalidOption)
}
