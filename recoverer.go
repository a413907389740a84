package mq

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"
)

// Permanent marks err as not worth retrying: the consumer gives up on the
// message at once and hands it to the recoverer (see [WithRecoverer]). Errors
// are retryable unless marked. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// [Permanent].
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// NotRetryable returns a classification for [WithRetryableIf] and
// [WithHandlerRetryableIf] under which errors matching any of targets
// (errors.Is) are not retried and every other error is, in the spirit of
// Spring's addNotRetryableExceptions:
//
//	mq.WithRetryableIf(mq.NotRetryable(ErrInvalidOrder, sql.ErrNoRows))
func NotRetryable(targets ...error) func(err error) bool {
	targets = append([]error(nil), targets...)
	return func(err error) bool { return !isAny(err, targets) }
}

// RetryableOnly returns a classification for [WithRetryableIf] and
// [WithHandlerRetryableIf] under which only errors matching one of targets
// (errors.Is) are retried; every other error goes to the recoverer at once.
//
//	mq.WithRetryableIf(mq.RetryableOnly(context.DeadlineExceeded, ErrServiceUnavailable))
func RetryableOnly(targets ...error) func(err error) bool {
	targets = append([]error(nil), targets...)
	return func(err error) bool { return isAny(err, targets) }
}

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Headers that mq adds to messages it moves to a retry or dead-letter topic.
// The original message's own headers are kept alongside them.
const (
	HeaderOriginalTopic     = "mq-original-topic"     // topic the message was first consumed from
	HeaderOriginalPartition = "mq-original-partition" // its partition, decimal
	HeaderOriginalOffset    = "mq-original-offset"    // its offset, decimal
	HeaderOriginalTimestamp = "mq-original-timestamp" // its timestamp, Unix milliseconds
	HeaderConsumerGroup     = "mq-consumer-group"     // group that failed to process it
	HeaderFailure           = "mq-failure"            // "decode" or "handler"
	HeaderFailedHandler     = "mq-failed-handler"     // names of the failing handlers, comma-separated
	HeaderError             = "mq-error"              // text of the last error
	HeaderAttempts          = "mq-attempts"           // handler calls so far, all tiers included
	HeaderRetryTier         = "mq-retry-tier"         // retry tier the message was sent to, 1-based
	HeaderDueTime           = "mq-due"                // when a retry tier may process it, Unix milliseconds
	HeaderHandlersDone      = "mq-handlers-done"      // handlers that already succeeded, comma-separated
)

type recoverKind int

const (
	recoverStop recoverKind = iota
	recoverSkip
	recoverDeadLetter
	recoverRetryTopics
	recoverFunc
)

// Recoverer decides what happens to a message once its handlers gave up on it
// (retries exhausted, a [Permanent] error, or one [WithRetryableIf] does not
// retry) or its value could not be decoded. Build one with [StopRecoverer],
// [SkipRecoverer], [DeadLetterRecoverer], [RetryTopicRecoverer] or
// [FuncRecoverer] and pass it to [WithRecoverer]. The zero value is
// [StopRecoverer].
type Recoverer struct {
	kind   recoverKind
	dlt    string
	delays []time.Duration
	fn     func(context.Context, FailedMessage) error
}

// StopRecoverer stops the consumer: Run returns a [*HandlerError] or
// [*DecodeError] naming the message, and nothing from it on is committed, so a
// restart delivers it again. It is the default.
func StopRecoverer() Recoverer { return Recoverer{kind: recoverStop} }

// SkipRecoverer logs the message's coordinates and error at error level,
// counts it ([ConsumerStats].Skipped) and commits past it.
func SkipRecoverer() Recoverer { return Recoverer{kind: recoverSkip} }

// DeadLetterRecoverer publishes the message — original key, value bytes and
// headers, plus the mq-* headers describing the failure — to a dead-letter
// topic: topic, or "<source topic>.dlt" when topic is empty. The source offset
// is committed only after the broker acknowledged the dead-letter write; if
// the write fails, nothing is committed and it is retried until it succeeds or
// the consumer stops (the message is then delivered again after a restart).
// The topic must exist: Run checks it at start.
func DeadLetterRecoverer(topic string) Recoverer {
	return Recoverer{kind: recoverDeadLetter, dlt: topic}
}

// RetryTopicRecoverer moves a failed message to non-blocking retry topics
// "<topic>.retry.1" … "<topic>.retry.N", one per delay, so that its partition
// keeps flowing. The consumer also consumes those topics: a message there is
// processed once its due time (failure time + the tier's delay) has come,
// without blocking other partitions, and only by the handlers that had not
// yet succeeded on it. After the last tier it goes to the dead-letter topic
// (deadLetterTopic, or "<topic>.dlt" when empty). Decode failures go straight
// to the dead-letter topic.
//
// Ordering: a message that moves to a retry topic is processed after later
// messages of its partition, so per-key order is not kept for failed
// messages. Use [StopRecoverer] or blocking retries where order matters.
func RetryTopicRecoverer(delays []time.Duration, deadLetterTopic string) Recoverer {
	return Recoverer{kind: recoverRetryTopics, dlt: deadLetterTopic, delays: append([]time.Duration(nil), delays...)}
}

// FailedMessage is what a [FuncRecoverer] receives: a message whose handlers
// gave up on it, or whose value could not be decoded.
type FailedMessage struct {
	// Message is the record as consumed: topic, partition, offset, key,
	// headers, time, and the value's bytes undecoded (Value and Raw are the
	// same bytes).
	Message Message[[]byte]
	// Group is the consumer group.
	Group string
	// Err says why: a [*DecodeError] for a value that could not be decoded,
	// else the last error of the first handler that gave up.
	Err error
	// Handlers names the handlers that gave up (none for a decode failure).
	Handlers []string
	// Attempts is the most calls one of those handlers got for the message
	// (0 for a decode failure).
	Attempts int
}

// FuncRecoverer hands every failed message to fn, for recoveries the
// built-in recoverers do not cover (a table of failed orders, an alert, a
// topic of your own making). fn runs on the message's partition goroutine
// (concurrently for different partitions and lanes), with the handlers'
// context; the partition waits for it. What it returns decides:
//
//   - nil: the message is done and may be committed (counted in
//     [ConsumerStats].Recovered, outcome [OutcomeRecovered]);
//   - an error: fn is called again for the same message with backoff (100ms
//     doubling to 5s), and nothing from the message on is committed
//     meanwhile, so a stop or crash delivers it again; a panic counts as
//     such an error;
//   - an error marked with [Permanent]: the consumer stops as with
//     [StopRecoverer], and Run returns a [*RecovererError] wrapping fn's
//     error and the message's [*HandlerError] or [*DecodeError].
//
// A nil fn is an invalid option.
func FuncRecoverer(fn func(ctx context.Context, f FailedMessage) error) Recoverer {
	return Recoverer{kind: recoverFunc, fn: fn}
}

// Topics returns the topics the recoverer writes to for a consumer of topic
// (retry tiers, then the dead-letter topic), so they can be created ahead of
// time (see [Recoverer.TopicSpecs] and [CreateTopics]): consumers never
// create topics.
func (r Recoverer) Topics(topic string) []string {
	out := r.retryTopics(topic)
	if r.kind == recoverDeadLetter || r.kind == recoverRetryTopics {
		out = append(out, r.deadLetterTopic(topic))
	}
	return out
}

// TopicSpecs returns main followed by the retry and dead-letter topics the
// recoverer writes to for a consumer of main.Name, each with main's
// partitions, replication factor and configs, ready for [CreateTopics]:
//
//	err := mq.CreateTopics(ctx, brokers, recoverer.TopicSpecs(mq.TopicSpec{Name: "orders", Partitions: 6, ReplicationFactor: 3}))
func (r Recoverer) TopicSpecs(main TopicSpec) []TopicSpec {
	out := []TopicSpec{main}
	for _, name := range r.Topics(main.Name) {
		t := main
		t.Name = name
		t.Configs = maps.Clone(main.Configs)
		out = append(out, t)
	}
	return out
}

func (r Recoverer) deadLetterTopic(topic string) string {
	if r.dlt != "" {
		return r.dlt
	}
	return topic + ".dlt"
}

func (r Recoverer) retryTopics(topic string) []string {
	if r.kind != recoverRetryTopics {
		return nil
	}
	out := make([]string, len(r.delays))
	for i := range r.delays {
		out[i] = topic + ".retry." + strconv.Itoa(i+1)
	}
	return out
}

func (r Recoverer) String() string {
	switch r.kind {
	case recoverSkip:
		return "skip"
	case recoverDeadLetter:
		return "dead-letter"
	case recoverRetryTopics:
		return fmt.Sprintf("retry-topics%v", r.delays)
	case recoverFunc:
		return "func"
	}
	return "stop"
}

func (r Recoverer) validate() error {
	switch r.kind {
	case recoverStop, recoverSkip, recoverDeadLetter:
		return nil
	case recoverRetryTopics:
		if len(r.delays) == 0 || len(r.delays) > 20 {
			return invalid("retry topics: want 1 to 20 delays, got %d", len(r.delays))
		}
		for i, d := range r.delays {
			if d <= 0 {
				return invalid("retry topics: delay %d is %v, must be > 0", i+1, d)
			}
		}
		return nil
	case recoverFunc:
		if r.fn == nil {
			return invalid("func recoverer: nil function")
		}
		return nil
	}
	return invalid("unknown recoverer")
}
