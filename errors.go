package mq

import (
	"errors"
	"fmt"

	"github.com/mqkit/mq/internal/produce"
)

var (
	// ErrClosed is returned by calls made after Close, and wrapped by the
	// delivery error of messages a producer's Close could not deliver.
	ErrClosed = produce.ErrClosed

	// ErrMessageTooLarge is wrapped by the error of a message too large to
	// send: rejected by Send before it is buffered when it exceeds
	// [WithBatchBytes] or [WithMaxRequestSize], or rejected by the broker
	// (MESSAGE_TOO_LARGE, which stays visible as kafka.MessageSizeTooLarge
	// to errors.Is). A batch the broker rejects as too large is split, so
	// only the message that is too large fails.
	ErrMessageTooLarge = produce.ErrMessageTooLarge

	// ErrInvalidOption wraps every error for an invalid option or argument:
	// those of [NewProducer], [NewKafkaConsumer], the handler registrations
	// ([KafkaConsumer.RegisterHandler], [KafkaConsumer.RegisterBatchHandler]),
	// the admin functions ([CreateTopics], [DeleteTopics], [DescribeTopic],
	// [GroupOffsets], [ResetOffsets]), [Redrive], [KafkaConsumer.Seek],
	// [SASLScram] and [TLSConfig].
	ErrInvalidOption = errors.New("mq: invalid option")

	// ErrNilHandler is returned by [KafkaConsumer.RegisterHandler] for a nil handler.
	ErrNilHandler = errors.New("mq: nil handler")

	// ErrNoHandlers is returned by [KafkaConsumer.Run] when no handler was registered.
	ErrNoHandlers = errors.New("mq: no handler registered")

	// ErrRunning is returned when Run is called on a consumer that is already
	// running, or RegisterHandler is called while it runs.
	ErrRunning = errors.New("mq: consumer already running")

	// ErrUndelivered reports messages a producer could not deliver. It is
	// wrapped by [*UndeliveredError].
	ErrUndelivered = errors.New("mq: messages not delivered")

	// ErrShutdownTimeout reports that in-flight work did not finish within the
	// shutdown timeout, at the consumer's stop or at an earlier rebalance
	// that revoked its partition; its offsets were not committed and the
	// messages will be delivered again. [KafkaConsumer.Run] returns it when
	// it stops.
	ErrShutdownTimeout = errors.New("mq: shutdown timeout")

	// ErrTopicNotFound is wrapped by the error [KafkaConsumer.Run] returns
	// when a topic it consumes does not exist and [WithMissingTopicsFatal]
	// is set, or when a retry or dead-letter topic of its recoverer does not
	// exist (checked at start, whatever the option). The error also matches kafka.UnknownTopicOrPartition.
	ErrTopicNotFound = errors.New("mq: topic not found")

	// ErrNotAssigned is returned by [KafkaConsumer.Seek] and
	// [KafkaConsumer.SeekToTime] for a partition the consumer does not own.
	ErrNotAssigned = errors.New("mq: partition not assigned to this consumer")
)

// DecodeError reports a message whose value could not be decoded: a poison
// message. The consumer stops on it and commits nothing past it.
type DecodeError struct {
	Topic     string
	Partition int
	Offset    int64
	Err       error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("mq: decode %s[%d]@%d: %v", e.Topic, e.Partition, e.Offset, e.Err)
}

// Unwrap returns the codec's error.
func (e *DecodeError) Unwrap() error { return e.Err }

// HandlerError reports a message that a handler kept failing on after every
// retry. The consumer stops on it and commits nothing past it.
type HandlerError struct {
	Topic     string
	Partition int
	Offset    int64
	// Handler is the name of the failing handler.
	Handler string
	// Attempts is how many times the handler was called for the message.
	Attempts int
	Err      error
}

func (e *HandlerError) Error() string {
	return fmt.Sprintf("mq: handler %q failed on %s[%d]@%d after %d attempt(s): %v",
		e.Handler, e.Topic, e.Partition, e.Offset, e.Attempts, e.Err)
}

// Unwrap returns the handler's last error.
func (e *HandlerError) Unwrap() error { return e.Err }

// RecovererError reports a message a [FuncRecoverer] gave up on by returning
// an error marked with [Permanent]. The consumer stops on it and commits
// nothing past the message.
type RecovererError struct {
	// Failure is why the message reached the recoverer: a [*HandlerError]
	// or a [*DecodeError] naming it.
	Failure error
	// Err is the recoverer's error.
	Err error
}

func (e *RecovererError) Error() string {
	return fmt.Sprintf("mq: recoverer gave up: %v (after %v)", e.Err, e.Failure)
}

// Unwrap returns the recoverer's error and the failure, so errors.As finds
// either.
func (e *RecovererError) Unwrap() []error { return []error{e.Err, e.Failure} }

// PanicError is the error a panicking handler is turned into. It is treated as
// any other handler failure: retried, and never a lost message.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("mq: handler panicked: %v", e.Value) }

// BatchError reports which messages of a multi-message send failed. Errors
// has one entry per message, nil for those that were delivered.
type BatchError struct {
	Errors []error
}

func (e *BatchError) Error() string {
	failed := 0
	var first error
	for _, err := range e.Errors {
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	return fmt.Sprintf("mq: %d of %d message(s) not delivered: %v", failed, len(e.Errors), first)
}

// Unwrap returns the errors of the messages that failed, in order.
func (e *BatchError) Unwrap() []error {
	var out []error
	for _, err := range e.Errors {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// UndeliveredError is returned by [Producer.Close] and [Producer.Flush] when
// messages could not be delivered. Every such message was also reported to its
// caller or callback, or, for an asynchronous send without a delivery handler,
// logged.
type UndeliveredError struct {
	// Count is the number of messages that failed.
	Count int
	// Last is the last delivery error seen.
	Last error
}

func (e *UndeliveredError) Error() string {
	return fmt.Sprintf("mq: %d message(s) not delivered: %v", e.Count, e.Last)
}

// Is reports whether target is [ErrUndelivered].
func (e *UndeliveredError) Is(target error) bool { return target == ErrUndelivered }

// Unwrap returns the last delivery error.
func (e *UndeliveredError) Unwrap() error { return e.Last }

// TopicError reports why [CreateTopics], [DeleteTopics] or [DescribeTopic]
// failed for one topic. Err wraps the broker's error code and message where
// there is one, so errors.Is(err, kafka.InvalidConfiguration) tells an
// invalid config apart.
type TopicError struct {
	Topic string
	// Op is "create", "delete" or "describe".
	Op  string
	Err error
}

func (e *TopicError) Error() string { return fmt.Sprintf("mq: %s topic %q: %v", e.Op, e.Topic, e.Err) }

// Unwrap returns the underlying error.
func (e *TopicError) Unwrap() error { return e.Err }

// PartitionCountError reports a topic [CreateTopics] found already existing
// with another number of partitions than requested. mq never changes the
// partition count of an existing topic (adding partitions moves keys to
// other partitions).
type PartitionCountError struct {
	Topic      string
	Partitions int // the topic's partitions
	Requested  int
}

func (e *PartitionCountError) Error() string {
	return fmt.Sprintf("mq: topic %q already exists with %d partition(s), not the %d requested",
		e.Topic, e.Partitions, e.Requested)
}

// ReplicationFactorError reports a topic whose requested replication factor
// is above the number of brokers in the cluster.
type ReplicationFactorError struct {
	Topic             string
	ReplicationFactor int
	// Brokers is the number of brokers in the cluster's metadata.
	Brokers int
	// Err is the broker's INVALID_REPLICATION_FACTOR error with its message,
	// or nil when mq refused before asking.
	Err error
}

func (e *ReplicationFactorError) Error() string {
	msg := fmt.Sprintf("mq: topic %q: replication factor %d is above the %d broker(s) of the cluster",
		e.Topic, e.ReplicationFactor, e.Brokers)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the broker's error, if any.
func (e *ReplicationFactorError) Unwrap() error { return e.Err }

// ActiveGroupError reports a consumer group with members, whose offsets
// [ResetOffsets] does not reset: a running consumer would commit its own
// positions over them, and brokers refuse commits from outside a group that
// has members.
type ActiveGroupError struct {
	Group string
	// State is the group's state as its coordinator names it (Stable,
	// PreparingRebalance, CompletingRebalance).
	State string
	// Members is the number of members the coordinator reported.
	Members int
}

func (e *ActiveGroupError) Error() string {
	return fmt.Sprintf("mq: consumer group %q is active (state %s, %d member(s)): stop its consumers first, "+
		"or force the reset to remove members that are gone", e.Group, e.State, e.Members)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidOption, fmt.Sprintf(format, args...))
}
