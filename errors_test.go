package mq_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqkit/mq"
)

func TestDecodeError(t *testing.T) {
	inner := errors.New("invalid character 'x'")
	var err error = &mq.DecodeError{Topic: "chat-messages", Partition: 2, Offset: 1234, Err: inner}

	assert.Equal(t, "mq: decode chat-messages[2]@1234: invalid character 'x'", err.Error())
	assert.ErrorIs(t, err, inner)
	assert.Equal(t, inner, errors.Unwrap(err))

	wrapped := fmt.Errorf("consumer stopped: %w", err)
	var derr *mq.DecodeError
	require.ErrorAs(t, wrapped, &derr)
	assert.Equal(t, int64(1234), derr.Offset)
	assert.Equal(t, 2, derr.Partition)
	assert.ErrorIs(t, wrapped, inner)

	var herr *mq.HandlerError
	assert.False(t, errors.As(wrapped, &herr))
}

func TestHandlerError(t *testing.T) {
	inner := &mq.PanicError{Value: "boom", Stack: []byte("goroutine 1")}
	var err error = &mq.HandlerError{
		Topic: "chat-messages", Partition: 0, Offset: 7, Handler: "backup", Attempts: 5, Err: inner,
	}
	assert.Equal(t, `mq: handler "backup" failed on chat-messages[0]@7 after 5 attempt(s): mq: handler panicked: boom`, err.Error())
	assert.Equal(t, error(inner), errors.Unwrap(err))

	var perr *mq.PanicError
	require.ErrorAs(t, err, &perr, "the handler's last error is reachable")
	assert.Equal(t, "boom", perr.Value)

	var herr *mq.HandlerError
	require.ErrorAs(t, fmt.Errorf("run: %w", err), &herr)
	assert.Equal(t, "backup", herr.Handler)
	assert.Equal(t, 5, herr.Attempts)

	timeout := &mq.HandlerError{Handler: "persist", Attempts: 1, Err: fmt.Errorf("db: %w", context.DeadlineExceeded)}
	assert.ErrorIs(t, timeout, context.DeadlineExceeded)
}

type codeError struct{ code int }

func (e *codeError) Error() string { return fmt.Sprintf("code %d", e.code) }

func TestBatchError(t *testing.T) {
	coded := &codeError{code: 3}
	err := &mq.BatchError{Errors: []error{nil, mq.ErrClosed, nil, coded, fmt.Errorf("send: %w", io.ErrUnexpectedEOF)}}

	assert.Equal(t, "mq: 3 of 5 message(s) not delivered: mq: closed", err.Error())

	members := err.Unwrap()
	require.Len(t, members, 3, "Unwrap returns the non-nil errors")
	assert.Equal(t, mq.ErrClosed, members[0])
	assert.Equal(t, error(coded), members[1])

	assert.ErrorIs(t, err, mq.ErrClosed)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "errors.Is looks through wrapped members")
	assert.NotErrorIs(t, err, mq.ErrUndelivered)
	var ce *codeError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 3, ce.code)

	wrapped := fmt.Errorf("send batch: %w", err)
	var be *mq.BatchError
	require.ErrorAs(t, wrapped, &be)
	assert.Len(t, be.Errors, 5, "Errors lines up with the messages sent")
	assert.ErrorIs(t, wrapped, mq.ErrClosed)

	// With every message failed by the same error.
	all := &mq.BatchError{Errors: []error{mq.ErrClosed, mq.ErrClosed}}
	assert.Equal(t, "mq: 2 of 2 message(s) not delivered: mq: closed", all.Error())
	assert.ErrorIs(t, all, mq.ErrClosed)
}

func TestUndeliveredError(t *testing.T) {
	last := fmt.Errorf("mq: produce to chat-messages[1]: %w", io.EOF)
	var err error = &mq.UndeliveredError{Count: 3, Last: last}

	assert.Equal(t, "mq: 3 message(s) not delivered: mq: produce to chat-messages[1]: EOF", err.Error())
	assert.ErrorIs(t, err, mq.ErrUndelivered)
	assert.ErrorIs(t, err, io.EOF, "Unwrap returns the last delivery error")
	assert.Equal(t, last, errors.Unwrap(err))
	assert.NotErrorIs(t, err, mq.ErrClosed)

	wrapped := fmt.Errorf("shutdown: %w", err)
	assert.ErrorIs(t, wrapped, mq.ErrUndelivered)
	var uerr *mq.UndeliveredError
	require.ErrorAs(t, wrapped, &uerr)
	assert.Equal(t, 3, uerr.Count)

	noLast := &mq.UndeliveredError{Count: 1}
	assert.ErrorIs(t, noLast, mq.ErrUndelivered)
	assert.Nil(t, errors.Unwrap(noLast))

	closed := &mq.UndeliveredError{Count: 2, Last: mq.ErrClosed}
	assert.ErrorIs(t, closed, mq.ErrClosed)
	assert.ErrorIs(t, closed, mq.ErrUndelivered)
}

func TestSentinelErrorsAreDistinct(t *testing.T) {
	sentinels := []error{
		mq.ErrClosed, mq.ErrInvalidOption, mq.ErrNilHandler, mq.ErrNoHandlers,
		mq.ErrRunning, mq.ErrUndelivered, mq.ErrShutdownTimeout,
	}
	for i, a := range sentinels {
		for j, b := range sentinels {
			assert.Equal(t, i == j, errors.Is(a, b), "%v vs %v", a, b)
		}
	}
}

func TestErrorMessagesStyle(t *testing.T) {
	errs := map[string]error{
		"ErrClosed":          mq.ErrClosed,
		"ErrInvalidOption":   mq.ErrInvalidOption,
		"ErrNilHandler":      mq.ErrNilHandler,
		"ErrNoHandlers":      mq.ErrNoHandlers,
		"ErrRunning":         mq.ErrRunning,
		"ErrUndelivered":     mq.ErrUndelivered,
		"ErrShutdownTimeout": mq.ErrShutdownTimeout,
		"DecodeError":        &mq.DecodeError{Topic: "t", Err: errors.New("bad")},
		"HandlerError":       &mq.HandlerError{Topic: "t", Handler: "h", Attempts: 1, Err: errors.New("bad")},
		"PanicError":         &mq.PanicError{Value: "bad"},
		"BatchError":         &mq.BatchError{Errors: []error{errors.New("bad")}},
		"UndeliveredError":   &mq.UndeliveredError{Count: 1, Last: errors.New("bad")},
		"RecovererError": &mq.RecovererError{Err: errors.New("bad"),
			Failure: &mq.HandlerError{Topic: "t", Handler: "h", Attempts: 1, Err: errors.New("bad")}},
		"TopicError":             &mq.TopicError{Topic: "t", Op: "create", Err: errors.New("bad")},
		"PartitionCountError":    &mq.PartitionCountError{Topic: "t", Partitions: 3, Requested: 6},
		"ReplicationFactorError": &mq.ReplicationFactorError{Topic: "t", ReplicationFactor: 3, Brokers: 1},
		"ActiveGroupError":       &mq.ActiveGroupError{Group: "g", State: "Stable", Members: 2},
	}
	// An invalid option error, as the constructors return it.
	_, err := mq.NewProducer[int](nil, "t")
	errs["invalid option"] = err

	for name, err := range errs {
		msg := err.Error()
		assert.True(t, strings.HasPrefix(msg, "mq: "), "%s: %q must start with \"mq: \"", name, msg)
		rest := strings.TrimPrefix(msg, "mq: ")
		require.NotEmpty(t, rest, name)
		first := []rune(rest)[0]
		assert.False(t, unicode.IsUpper(first), "%s: %q must be lower-case", name, msg)
		assert.False(t, strings.HasSuffix(msg, ".") || strings.HasSuffix(msg, "\n"), "%s: %q has trailing punctuation", name, msg)
	}
}
