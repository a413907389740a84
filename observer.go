package mq

import (
	"context"
	"time"
)

// MessageInfo describes a consumed message to an [Observer].
type MessageInfo struct {
	Topic         string
	Partition     int
	Offset        int64
	Key           []byte
	Headers       []Header
	Time          time.Time
	TimestampType TimestampType
	// Tombstone reports a null value (see [Message].Tombstone).
	Tombstone     bool
	HighWaterMark int64
	Group         string
}

// Outcome is how the consumer finished with a message.
type Outcome string

// Message outcomes reported to [Observer.ProcessFinished].
const (
	OutcomeHandled      Outcome = "handled"       // every handler succeeded
	OutcomeSkipped      Outcome = "skipped"       // SkipRecoverer
	OutcomeDeadLettered Outcome = "dead_lettered" // written to the dead-letter topic
	OutcomeRetryTopic   Outcome = "retry_topic"   // moved to a retry topic
	OutcomeRecovered    Outcome = "recovered"     // a FuncRecoverer took care of it
	OutcomeFailed       Outcome = "failed"        // StopRecoverer: the consumer stops
	OutcomeAbandoned    Outcome = "abandoned"     // stopping or shutdown timeout: left uncommitted
)

// Observer receives events from producers and consumers: metrics and tracing
// plug in here (see the mqotel and mqprom packages), so the core depends on
// neither. Methods are called synchronously on hot paths: keep them fast,
// non-blocking and safe for concurrent use. Embed [NopObserver] to implement
// only some of them. No observer is set by default, which costs nothing.
type Observer interface {
	// SendStarted is called when a message is accepted for sending. It may
	// return a derived context (a span) and headers to add to the message
	// (trace context); the context is passed to SendFinished.
	SendStarted(ctx context.Context, topic string, headers []Header) (context.Context, []Header)
	// SendFinished reports a message's delivery outcome (err nil: the broker
	// acknowledged it at partition/offset), took being the time since
	// SendStarted.
	SendFinished(ctx context.Context, topic string, partition int, offset int64, took time.Duration, err error)
	// ProcessStarted is called before a consumed message enters the handler
	// pipeline (for a batch, for each of its messages before any handler).
	// The returned context is the parent of every per-message handler's
	// context for that message, and it is passed to the message's
	// HandlerFinished and ProcessFinished calls (extract the trace context
	// from msg.Headers here). A batch handler, called with many messages,
	// gets the consumer's context instead.
	ProcessStarted(ctx context.Context, msg MessageInfo) context.Context
	// HandlerFinished reports one handler call on msg, in msg's
	// ProcessStarted context; a batch handler's call is reported for each
	// message it handled (or failed on), with the call's duration.
	HandlerFinished(ctx context.Context, msg MessageInfo, handler string, attempt int, took time.Duration, err error)
	// ProcessFinished reports how the pipeline finished with a message.
	ProcessFinished(ctx context.Context, msg MessageInfo, outcome Outcome, took time.Duration, err error)
	// Committed reports an offset commit for a partition.
	Committed(group, topic string, partition int, offset int64)
	// Rebalanced reports a new group generation and the partitions it
	// assigned to this member.
	Rebalanced(group string, generation int32, assigned map[string][]int)
}

// NopObserver implements [Observer] doing nothing; embed it to implement only
// the methods you need.
type NopObserver struct{}

// SendStarted implements [Observer].
func (NopObserver) SendStarted(ctx context.Context, _ string, h []Header) (context.Context, []Header) {
	return ctx, h
}

// SendFinished implements [Observer].
func (NopObserver) SendFinished(context.Context, string, int, int64, time.Duration, error) {}

// ProcessStarted implements [Observer].
func (NopObserver) ProcessStarted(ctx context.Context, _ MessageInfo) context.Context { return ctx }

// HandlerFinished implements [Observer].
func (NopObserver) HandlerFinished(context.Context, MessageInfo, string, int, time.Duration, error) {}

// ProcessFinished implements [Observer].
func (NopObserver) ProcessFinished(context.Context, MessageInfo, Outcome, time.Duration, error) {}

// Committed implements [Observer].
func (NopObserver) Committed(string, string, int, int64) {}

// Rebalanced implements [Observer].
func (NopObserver) Rebalanced(string, int32, map[string][]int) {}

// Observers combines several observers into one, called in order; the
// context and headers returned by one are passed to the next.
func Observers(obs ...Observer) Observer {
	var list multiObserver
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	return list
}

type multiObserver []Observer

func (m multiObserver) SendStarted(ctx context.Context, topic string, h []Header) (context.Context, []Header) {
	for _, o := range m {
		ctx, h = o.SendStarted(ctx, topic, h)
	}
	return ctx, h
}

func (m multiObserver) SendFinished(ctx context.Context, topic string, partition int, offset int64, took time.Duration, err error) {
	for _, o := range m {
		o.SendFinished(ctx, topic, partition, offset, took, err)
	}
}

func (m multiObserver) ProcessStarted(ctx context.Context, msg MessageInfo) context.Context {
	for _, o := range m {
		ctx = o.ProcessStarted(ctx, msg)
	}
	return ctx
}

func (m multiObserver) HandlerFinished(ctx context.Context, msg MessageInfo, handler string, attempt int, took time.Duration, err error) {
	for _, o := range m {
		o.HandlerFinished(ctx, msg, handler, attempt, took, err)
	}
}

func (m multiObserver) ProcessFinished(ctx context.Context, msg MessageInfo, outcome Outcome, took time.Duration, err error) {
	for _, o := range m {
		o.ProcessFinished(ctx, msg, outcome, took, err)
	}
}

func (m multiObserver) Committed(group, topic string, partition int, offset int64) {
	for _, o := range m {
		o.Committed(group, topic, partition, offset)
	}
}

func (m multiObserver) Rebalanced(group string, generation int32, assigned map[string][]int) {
	for _, o := range m {
		o.Rebalanced(group, generation, assigned)
	}
}
