package mq

import (
	"context"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"
	"time"
)

// Handler processes consumed messages. A [KafkaConsumer] calls every
// registered handler for every message, in registration order, one message at
// a time per partition.
//
// The commit contract: returning nil means the handler is done with the
// message. The message's offset is committed only once every handler returned
// nil for it and for every earlier message of its partition. Returning an
// error makes the consumer retry that handler (see [RetryPolicy]); the
// handlers registered after it still run on the message first, and handlers
// that already succeeded on the message are not called again for it. Delivery
// is at-least-once: after a crash or a rebalance, messages processed but not
// yet committed are delivered again, so handlers should be idempotent (upsert
// by a message ID, or remember processed offsets).
//
// The context is cancelled when the consumer gives up waiting for the handler
// (shutdown timeout), never merely because a stop was requested.
type Handler[T any] interface {
	Handle(ctx context.Context, msg Message[T]) error
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc[T any] func(ctx context.Context, msg Message[T]) error

// Handle calls f(ctx, msg).
func (f HandlerFunc[T]) Handle(ctx context.Context, msg Message[T]) error { return f(ctx, msg) }

// Middleware wraps a handler with extra behaviour, like net/http middleware.
type Middleware[T any] func(Handler[T]) Handler[T]

// Chain wraps h with the middleware so that the first one listed is the
// outermost: Chain(h, a, b) handles a message as a(b(h)).
func Chain[T any](h Handler[T], mw ...Middleware[T]) Handler[T] {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// CatchPanics is middleware that turns a panic in the wrapped handler into a
// [*PanicError] carrying the stack. Consumers apply it to every handler, so a
// panic is a failed attempt, never a crash or a lost message. (It is not a
// [Recoverer]: that decides what happens to a message its handlers gave up on.)
func CatchPanics[T any]() Middleware[T] {
	return func(next Handler[T]) Handler[T] {
		return HandlerFunc[T](func(ctx context.Context, msg Message[T]) (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = &PanicError{Value: r, Stack: debug.Stack()}
				}
			}()
			return next.Handle(ctx, msg)
		})
	}
}

// isNil reports whether v is nil or an interface holding a nil func, pointer,
// map, chan or slice.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Func, reflect.Pointer, reflect.Map, reflect.Chan, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

type registeredHandler[T any] struct {
	name        string
	h           Handler[T]      // for a batch handler: calls it with batches of one
	batch       BatchHandler[T] // nil for a per-message handler
	timeout     time.Duration   // a batch handler's timeout per call (h has it as middleware)
	retry       RetryPolicy
	retryableIf func(error) bool // nil: every error not marked Permanent is retried
}

// retryable reports whether err is worth another attempt: it is not marked
// [Permanent] and the handler's (or else the consumer's) classification
// allows it.
func (h *registeredHandler[T]) retryable(err error) bool {
	if IsPermanent(err) {
		return false
	}
	return h.retryableIf == nil || h.retryableIf(err)
}

func newRegisteredHandler[T any](index int, h Handler[T], defaultRetry RetryPolicy, defaultRetryableIf func(error) bool,
	opts []HandlerOption) (registeredHandler[T], error) {
	var cfg handlerConfig
	for _, o := range opts {
		if o != nil {
			o.applyHandler(&cfg)
		}
	}
	if cfg.name == "" {
		cfg.name = fmt.Sprintf("handler-%d", index)
	}
	retry := defaultRetry
	if cfg.retry != nil {
		if err := cfg.retry.validate(); err != nil {
			return registeredHandler[T]{}, fmt.Errorf("handler %q: %w", cfg.name, err)
		}
		retry = *cfg.retry
	}
	if cfg.timeout < 0 {
		return registeredHandler[T]{}, fmt.Errorf("handler %q: %w", cfg.name, invalid("timeout %v must be >= 0", cfg.timeout))
	}
	if strings.Contains(cfg.name, ",") {
		return registeredHandler[T]{}, fmt.Errorf("handler %q: %w", cfg.name, invalid("handler names must not contain commas"))
	}
	mw := []Middleware[T]{CatchPanics[T]()}
	if cfg.timeout > 0 {
		mw = append(mw, Timeout[T](cfg.timeout))
	}
	retryableIf := defaultRetryableIf
	if cfg.retryableIf != nil {
		retryableIf = cfg.retryableIf
	}
	return registeredHandler[T]{name: cfg.name, h: Chain(h, mw...), retry: retry, retryableIf: retryableIf}, nil
}
