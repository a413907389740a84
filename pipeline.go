package mq

import (
	"context"
	"errors"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqkit/mq/internal/backoff"
	"github.com/mqkit/mq/internal/fetch"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// inbound is a fetched record on its way through its partition's pipeline.
// It is passed by value: the record stays in its fetch chunk.
type inbound struct {
	ps  *partitionState
	rec *fetch.Record
	hwm int64 // the partition's high watermark when it was fetched
}

// processor runs the handler pipeline for one partition's messages.
type processor[T any] struct {
	s    *session[T]
	soft context.Context // stop fetching, waiting and retrying
	hard context.Context // handlers' context: cancelled a shutdown timeout after soft
	log  *zap.Logger
	tier int // 0 for the main topic, n for retry tier n
}

// handlerRun tracks one handler that has not yet succeeded on a message.
type handlerRun struct {
	idx      int
	attempts int
	next     time.Time
	err      error
	final    bool // gave up because err is not retryable, not for lack of attempts
}

// failure describes a message the pipeline gave up on.
type failure struct {
	decode   bool
	err      error
	handlers []string // failing handlers
	attempts int      // most calls of a failing handler, in this tier
	done     []string // handlers that succeeded
	final    bool     // every failing handler's error was not retryable: no retry tier
}

// process runs the pipeline on one message and reports whether its offset may
// be committed (handled, skipped, or safely moved to a retry or dead-letter
// topic). It reports false when the consumer must stop or is stopping; the
// message then stays uncommitted.
func (p *processor[T]) process(m inbound) bool { return p.processWith(m, nil, nil, traces{}) }

// processWith is process for a message on which the handlers named in done
// already succeeded, and, when first is set, one handler already failed
// its first attempt (both in a batch). tr, when it holds a context, is the
// message's process context, started with its batch (processBatch): the
// message goes on with it instead of starting another, and its processing
// counts from the batch's start.
func (p *processor[T]) processWith(m inbound, done []string, first *handlerRun, tr traces) bool {
	if p.tier > 0 && !p.waitDue(m) {
		return false
	}
	obs := p.s.c.cfg.observer
	if obs == nil {
		ok, _, _ := p.run(p.hard, m, nil, done, first)
		return ok
	}
	info := &MessageInfo{Topic: m.ps.topic, Partition: m.ps.id, Offset: m.rec.Offset, Key: m.rec.Key,
		Headers: m.rec.Headers, Time: m.rec.Timestamp, TimestampType: TimestampType(m.rec.TimestampType),
		Tombstone: m.rec.Value == nil, HighWaterMark: m.hwm, Group: p.s.c.group}
	var ctx context.Context
	start := tr.start
	if tr.ctxs != nil {
		ctx = tr.ctxs[0]
	} else {
		start = time.Now()
		ctx = obs.ProcessStarted(p.hard, *info)
	}
	ok, outcome, err := p.run(ctx, m, info, done, first)
	obs.ProcessFinished(ctx, *info, outcome, time.Since(start), err)
	return ok
}

// call runs one handler, reporting it to the observer when there is one.
func (p *processor[T]) call(ctx context.Context, h *registeredHandler[T], msg Message[T], info *MessageInfo, attempt int) error {
	if info == nil {
		return h.h.Handle(ctx, msg)
	}
	start := time.Now()
	err := h.h.Handle(ctx, msg)
	p.s.c.cfg.observer.HandlerFinished(ctx, *info, h.name, attempt, time.Since(start), err)
	return err
}

// run is process without the observer bookkeeping; ctx is the handlers'
// context, info is nil when no observer is set.
func (p *processor[T]) run(ctx context.Context, m inbound, info *MessageInfo, done []string, first *handlerRun) (bool, Outcome, error) {
	c := p.s.c
	if p.tier > 0 {
		done = splitNames(header(m.rec.Headers, HeaderHandlersDone))
	}
	var v T
	tombstone := m.rec.Value == nil
	if !tombstone { // a null value has nothing to decode: never a poison message
		var err error
		if v, err = c.codec.Decode(m.rec.Value); err != nil {
			c.decodeErrors.Add(1)
			derr := &DecodeError{Topic: m.ps.topic, Partition: m.ps.id, Offset: m.rec.Offset, Err: err}
			return p.applyRecoverer(m, &failure{decode: true, err: derr, done: done})
		}
	}
	msg := Message[T]{
		Topic:         m.ps.topic,
		Partition:     m.ps.id,
		Offset:        m.rec.Offset,
		Key:           m.rec.Key,
		Value:         v,
		Headers:       m.rec.Headers,
		Time:          m.rec.Timestamp,
		TimestampType: TimestampType(m.rec.TimestampType),
		Tombstone:     tombstone,
		HighWaterMark: m.hwm,
		Raw:           m.rec.Value,
	}

	// First round: every handler once, in order. Allocation-free when all succeed.
	var pending []handlerRun
	for i := range p.s.handlers {
		h := &p.s.handlers[i]
		if len(done) > 0 && slices.Contains(done, h.name) {
			continue
		}
		var err error
		if first != nil && first.idx == i {
			err = first.err // failed in its batch: that was the first attempt
		} else {
			err = p.call(ctx, h, msg, info, 1)
		}
		if err == nil {
			c.handled.Add(1)
			if pending != nil || p.tier > 0 {
				done = append(done, h.name)
			}
			continue
		}
		if p.stoppedWaiting(h.name, m, err) {
			return false, OutcomeAbandoned, err
		}
		if pending == nil {
			done = p.succeededBefore(i, done)
		}
		pending = append(pending, handlerRun{idx: i, attempts: 1, err: err})
	}
	if pending == nil {
		return true, OutcomeHandled, nil
	}

	// Retry only the handlers that failed, each on its own backoff schedule.
	var failed []handlerRun
	for len(pending) > 0 {
		now := time.Now()
		still := pending[:0]
		var wake time.Time
		for _, run := range pending {
			h := &p.s.handlers[run.idx]
			if run.attempts > 0 && run.next.IsZero() {
				// Just failed: decide whether to try again.
				c.handlerErrors.Add(1)
				fields := []zap.Field{zap.String("handler", h.name), zap.Int64("offset", m.rec.Offset),
					zap.Int("attempt", run.attempts), zap.Error(run.err)}
				var perr *PanicError
				if errors.As(run.err, &perr) {
					fields = append(fields, zap.ByteString("stack", perr.Stack))
				}
				if run.final = !h.retryable(run.err); run.final || run.attempts >= h.retry.MaxAttempts {
					p.log.Warn("handler gave up on the message", append(fields, zap.Bool("retryable", !run.final))...)
					failed = append(failed, run)
					continue
				}
				p.log.Warn("handler failed, retrying", fields...)
				c.retries.Add(1)
				bo := backoff.Policy{Initial: h.retry.InitialBackoff, Max: h.retry.MaxBackoff,
					Multiplier: h.retry.Multiplier, Jitter: h.retry.Jitter}
				run.next = now.Add(bo.Delay(run.attempts))
			}
			if now.Before(run.next) {
				if wake.IsZero() || run.next.Before(wake) {
					wake = run.next
				}
				still = append(still, run)
				continue
			}
			run.attempts++
			err := p.call(ctx, h, msg, info, run.attempts)
			if err == nil {
				c.handled.Add(1)
				done = append(done, h.name)
				continue
			}
			if p.stoppedWaiting(h.name, m, err) {
				return false, OutcomeAbandoned, err
			}
			run.err, run.next = err, time.Time{}
			still = append(still, run)
		}
		pending = still
		if len(pending) == 0 {
			break
		}
		if !wake.IsZero() && !sleepCtx(p.soft, time.Until(wake)) {
			return false, OutcomeAbandoned, pending[0].err // stopping: leave the message uncommitted
		}
	}
	if len(failed) == 0 {
		return true, OutcomeHandled, nil
	}
	f := &failure{err: failed[0].err, done: done, final: true}
	for _, run := range failed {
		f.handlers = append(f.handlers, p.s.handlers[run.idx].name)
		f.attempts = max(f.attempts, run.attempts)
		f.final = f.final && run.final
	}
	return p.applyRecoverer(m, f)
}

// succeededBefore lists the handlers before index i that ran successfully in
// the first round (called once, when the first failure shows up).
func (p *processor[T]) succeededBefore(i int, done []string) []string {
	for j := 0; j < i; j++ {
		name := p.s.handlers[j].name
		if !slices.Contains(done, name) {
			done = append(done, name)
		}
	}
	return done
}

// stoppedWaiting reports, after a handler error, whether the handler's context
// was cancelled by the shutdown timeout.
func (p *processor[T]) stoppedWaiting(name string, m inbound, err error) bool {
	if p.hard.Err() == nil {
		return false
	}
	p.log.Warn("handler cancelled by the shutdown timeout; the message stays uncommitted",
		zap.String("handler", name), zap.Int64("offset", m.rec.Offset), zap.Error(err))
	p.s.mu.Lock()
	p.s.overran = true
	p.s.mu.Unlock()
	return true
}

// waitDue blocks a retry-tier partition until its message is due.
func (p *processor[T]) waitDue(m inbound) bool {
	due, err := strconv.ParseInt(header(m.rec.Headers, HeaderDueTime), 10, 64)
	if err != nil {
		return true // no or bad due time: process now
	}
	wait := time.Until(time.UnixMilli(due))
	if wait <= 0 {
		return true
	}
	p.log.Debug("waiting for a retry to be due", zap.Int64("offset", m.rec.Offset), zap.Duration("wait", wait))
	return sleepCtx(p.soft, wait)
}

// applyRecoverer hands a message the pipeline gave up on to the recoverer.
func (p *processor[T]) applyRecoverer(m inbound, f *failure) (bool, Outcome, error) {
	c := p.s.c
	r := c.cfg.recoverer
	fields := []zap.Field{zap.String("topic", m.ps.topic), zap.Int("partition", m.ps.id),
		zap.Int64("offset", m.rec.Offset), zap.Strings("handlers", f.handlers), zap.Bool("decode", f.decode),
		zap.Error(f.err)}
	switch r.kind {
	case recoverSkip:
		p.log.Error("skipping a message that failed", fields...)
		c.skipped.Add(1)
		return true, OutcomeSkipped, f.err
	case recoverDeadLetter:
		return published(p.publish(r.deadLetterTopic(m.ps.main), m, f, 0), OutcomeDeadLettered, f.err)
	case recoverRetryTopics:
		// Errors that are not retryable skip the retry tiers too.
		if f.decode || f.final || p.tier >= len(r.delays) {
			return published(p.publish(r.deadLetterTopic(m.ps.main), m, f, 0), OutcomeDeadLettered, f.err)
		}
		return published(p.publish(r.retryTopics(m.ps.main)[p.tier], m, f, p.tier+1), OutcomeRetryTopic, f.err)
	case recoverFunc:
		return p.recoverWith(r.fn, m, f)
	}
	if f.decode {
		p.log.Error("poison message: stopping the consumer", fields...)
	} else {
		p.log.Error("handler failed for good: stopping the consumer", fields...)
	}
	err := stopError(m, f)
	p.s.fail(err)
	return false, OutcomeFailed, err
}

// stopError is the error Run returns when the consumer stops on a failed
// message: the *DecodeError, or a *HandlerError naming the message.
func stopError(m inbound, f *failure) error {
	if f.decode {
		return f.err // a *DecodeError
	}
	return &HandlerError{Topic: m.ps.topic, Partition: m.ps.id, Offset: m.rec.Offset,
		Handler: strings.Join(f.handlers, ","), Attempts: f.attempts, Err: f.err}
}

// recoverWith hands a failed message to a [FuncRecoverer] until it returns
// nil (the message may be committed), an error marked [Permanent] (the
// consumer stops) or the consumer stops. Other errors are retried with
// backoff; nothing past the message is committed meanwhile, as when a
// dead-letter write fails.
func (p *processor[T]) recoverWith(fn func(context.Context, FailedMessage) error, m inbound, f *failure) (bool, Outcome, error) {
	c := p.s.c
	fm := FailedMessage{
		Message: Message[[]byte]{Topic: m.ps.topic, Partition: m.ps.id, Offset: m.rec.Offset, Key: m.rec.Key,
			Value: m.rec.Value, Tombstone: m.rec.Value == nil, Headers: m.rec.Headers, Time: m.rec.Timestamp,
			TimestampType: TimestampType(m.rec.TimestampType), HighWaterMark: m.hwm, Raw: m.rec.Value},
		Group: c.group, Err: f.err, Handlers: f.handlers, Attempts: f.attempts,
	}
	bo := backoff.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2}
	for attempt := 1; ; attempt++ {
		err := callRecoverer(p.hard, fn, fm)
		if err == nil {
			c.recovered.Add(1)
			p.log.Info("failed message recovered", zap.Int64("offset", m.rec.Offset), zap.Error(f.err))
			return true, OutcomeRecovered, f.err
		}
		if IsPermanent(err) {
			rerr := &RecovererError{Failure: stopError(m, f), Err: err}
			p.log.Error("recoverer gave up on the message: stopping the consumer", zap.Int64("offset", m.rec.Offset), zap.Error(rerr))
			p.s.fail(rerr)
			return false, OutcomeFailed, rerr
		}
		if p.stoppedWaiting("recoverer", m, err) {
			return false, OutcomeAbandoned, f.err
		}
		p.log.Error("recoverer failed; retrying, nothing is committed meanwhile",
			zap.Int64("offset", m.rec.Offset), zap.Int("attempt", attempt), zap.Error(err))
		if !sleepCtx(p.soft, bo.Delay(attempt)) {
			return false, OutcomeAbandoned, f.err
		}
	}
}

// callRecoverer calls fn, turning a panic into a *PanicError.
func callRecoverer(ctx context.Context, fn func(context.Context, FailedMessage) error, fm FailedMessage) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return fn(ctx, fm)
}

func published(ok bool, outcome Outcome, err error) (bool, Outcome, error) {
	if !ok {
		return false, OutcomeAbandoned, err
	}
	return true, outcome, err
}

// publish writes the failed message to a retry tier (tier > 0) or the
// dead-letter topic (tier 0) and reports true once the broker acknowledged it.
// A failed write is retried with backoff until it succeeds or the consumer
// stops; nothing is committed meanwhile, so nothing is dropped.
func (p *processor[T]) publish(topic string, m inbound, f *failure, tier int) bool {
	c := p.s.c
	out := Message[[]byte]{Key: m.rec.Key, Value: m.rec.Value, Tombstone: m.rec.Value == nil,
		Headers: failureHeaders(m, f, c.group, tier, c.cfg.recoverer)}
	bo := backoff.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2}
	for attempt := 1; ; attempt++ {
		pub, err := p.s.publisher(topic)
		if err == nil {
			_, err = pub.SendMessage(p.hard, out)
		}
		if err == nil {
			if tier > 0 {
				c.retryPublished.Add(1)
				p.log.Info("message moved to a retry topic", zap.String("to", topic), zap.Int64("offset", m.rec.Offset), zap.Error(f.err))
			} else {
				c.deadLettered.Add(1)
				p.log.Error("message dead-lettered", zap.String("to", topic), zap.Int64("offset", m.rec.Offset),
					zap.Strings("handlers", f.handlers), zap.Bool("decode", f.decode), zap.Error(f.err))
			}
			return true
		}
		p.log.Error("cannot publish a failed message; retrying, nothing is committed meanwhile",
			zap.String("to", topic), zap.Int64("offset", m.rec.Offset), zap.Int("attempt", attempt), zap.Error(err))
		if !sleepCtx(p.soft, bo.Delay(attempt)) {
			return false
		}
	}
}

// failureHeaders keeps the message's own headers, keeps the mq-original-*
// headers of an earlier failure, and sets the others afresh.
func failureHeaders(m inbound, f *failure, group string, tier int, r Recoverer) []Header {
	prevAttempts, _ := strconv.Atoi(header(m.rec.Headers, HeaderAttempts))
	out := make([]Header, 0, len(m.rec.Headers)+12)
	original := false
	for _, h := range m.rec.Headers {
		switch h.Key {
		case HeaderOriginalTopic:
			original = true
			out = append(out, h)
		case HeaderOriginalPartition, HeaderOriginalOffset, HeaderOriginalTimestamp:
			out = append(out, h)
		case HeaderConsumerGroup, HeaderFailure, HeaderFailedHandler, HeaderError, HeaderAttempts,
			HeaderRetryTier, HeaderDueTime, HeaderHandlersDone:
			// replaced below
		default:
			out = append(out, h)
		}
	}
	if !original {
		out = append(out,
			Header{Key: HeaderOriginalTopic, Value: []byte(m.ps.topic)},
			Header{Key: HeaderOriginalPartition, Value: []byte(strconv.Itoa(m.ps.id))},
			Header{Key: HeaderOriginalOffset, Value: []byte(strconv.FormatInt(m.rec.Offset, 10))},
			Header{Key: HeaderOriginalTimestamp, Value: []byte(strconv.FormatInt(m.rec.Timestamp.UnixMilli(), 10))},
		)
	}
	kind := "handler"
	if f.decode {
		kind = "decode"
	}
	out = append(out,
		Header{Key: HeaderConsumerGroup, Value: []byte(group)},
		Header{Key: HeaderFailure, Value: []byte(kind)},
		Header{Key: HeaderFailedHandler, Value: []byte(strings.Join(f.handlers, ","))},
		Header{Key: HeaderError, Value: []byte(f.err.Error())},
		Header{Key: HeaderAttempts, Value: []byte(strconv.Itoa(prevAttempts + f.attempts))},
	)
	if len(f.done) > 0 {
		out = append(out, Header{Key: HeaderHandlersDone, Value: []byte(strings.Join(f.done, ","))})
	}
	if tier > 0 {
		due := time.Now().Add(r.delays[tier-1]).UnixMilli()
		out = append(out,
			Header{Key: HeaderRetryTier, Value: []byte(strconv.Itoa(tier))},
			Header{Key: HeaderDueTime, Value: []byte(strconv.FormatInt(due, 10))},
		)
	}
	return out
}

func header(hs []kafka.Header, key string) string {
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Key == key {
			return string(hs[i].Value)
		}
	}
	return ""
}

func splitNames(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
