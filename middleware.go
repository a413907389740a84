package mq

import (
	"context"
	"time"

	"github.com/mqkit/mq/internal/backoff"
	"go.uber.org/zap"
)

// Timeout is middleware that gives each call of the wrapped handler a context
// that expires after d. The handler must honour its context for the timeout
// to take effect; its error then wraps context.DeadlineExceeded and is
// retried like any other failure. The consumer applies it for
// [WithHandlerTimeout].
func Timeout[T any](d time.Duration) Middleware[T] {
	return func(next Handler[T]) Handler[T] {
		return HandlerFunc[T](func(ctx context.Context, msg Message[T]) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next.Handle(ctx, msg)
		})
	}
}

// Logging is middleware that logs every call of the wrapped handler: at debug
// level when it succeeds, at warn level with the error when it fails, with the
// message's coordinates and the call's duration. A nil logger logs nothing.
func Logging[T any](l *zap.Logger, name string) Middleware[T] {
	log := logger(l).With(zap.String("handler", name))
	return func(next Handler[T]) Handler[T] {
		return HandlerFunc[T](func(ctx context.Context, msg Message[T]) error {
			start := time.Now()
			err := next.Handle(ctx, msg)
			fields := []zap.Field{zap.String("topic", msg.Topic), zap.Int("partition", msg.Partition),
				zap.Int64("offset", msg.Offset), zap.Duration("took", time.Since(start))}
			if err != nil {
				log.Warn("handler failed", append(fields, zap.Error(err))...)
			} else {
				log.Debug("handled", fields...)
			}
			return err
		})
	}
}

// Retry is middleware that retries the wrapped handler in place, following
// policy, before reporting its last error; [Permanent] errors and a done
// context end it early. Use it to retry one step inside a handler pipeline;
// the consumer's own retries ([WithRetryPolicy]) already cover whole
// handlers. An invalid policy is replaced by [DefaultRetryPolicy].
func Retry[T any](policy RetryPolicy) Middleware[T] {
	if policy.validate() != nil {
		policy = DefaultRetryPolicy
	}
	bo := backoff.Policy{Initial: policy.InitialBackoff, Max: policy.MaxBackoff,
		Multiplier: policy.Multiplier, Jitter: policy.Jitter}
	return func(next Handler[T]) Handler[T] {
		return HandlerFunc[T](func(ctx context.Context, msg Message[T]) error {
			var err error
			for attempt := 1; ; attempt++ {
				if err = next.Handle(ctx, msg); err == nil || IsPermanent(err) || attempt >= policy.MaxAttempts {
					return err
				}
				if !sleepCtx(ctx, bo.Delay(attempt)) {
					return err
				}
			}
		})
	}
}
