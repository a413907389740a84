package mq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/fetch"
	"github.com/mqkit/mq/internal/offsets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Unit tests of batch handling: batches run on a hand-built processor,
// without a broker (the integration module runs them on brokers).

// batchCalls records the offsets of each call of a batch handler.
type batchCalls struct {
	mu    sync.Mutex
	calls [][]int64
}

func (b *batchCalls) add(msgs []Message[testEvent]) {
	offs := make([]int64, len(msgs))
	for i, m := range msgs {
		offs[i] = m.Offset
	}
	b.mu.Lock()
	b.calls = append(b.calls, offs)
	b.mu.Unlock()
}

func (b *batchCalls) all() [][]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]int64(nil), b.calls...)
}

// testBatch returns n messages at offsets 0..n-1 of one partition, begun in
// its tracker; values are {"id":offset} except those listed as poison.
func testBatch(n int, poison ...int64) (*partitionState, []inbound) {
	ps := &partitionState{topic: "orders", main: "orders", id: 2, tracker: offsets.New(-1), done: make(chan struct{})}
	out := make([]inbound, n)
	for i := range out {
		off := int64(i)
		v := []byte(fmt.Sprintf(`{"id":%d}`, off))
		for _, p := range poison {
			if p == off {
				v = []byte("{not json")
			}
		}
		ps.tracker.Begin(off)
		out[i] = inbound{ps: ps, rec: &fetch.Record{Offset: off, Key: []byte("k"), Value: v}}
	}
	return ps, out
}

// failAt returns BatchFailedAt(err) for the message of msgs at offset off,
// nil when msgs does not hold it.
func failAt(msgs []Message[testEvent], off int64, err error) error {
	for i, m := range msgs {
		if m.Offset == off {
			return BatchFailedAt(i, err)
		}
	}
	return nil
}

func TestBatchHandledCommitsAll(t *testing.T) {
	var calls batchCalls
	tp := newTestPipeline(t, nil, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterBatchHandlerFunc(func(_ context.Context, msgs []Message[testEvent]) error {
			calls.add(msgs)
			for i, m := range msgs {
				if m.Value.ID != int(m.Offset) {
					return BatchFailedAt(i, errors.New("bad value"))
				}
			}
			return nil
		}))
	})
	ps, batch := testBatch(5)
	require.True(t, tp.p.processBatch(batch, nil))
	assert.Equal(t, [][]int64{{0, 1, 2, 3, 4}}, calls.all(), "one call for the whole batch")
	assert.EqualValues(t, 5, ps.tracker.CommitPoint())
	assert.EqualValues(t, 5, tp.c.Stats().Handled)
}

// BatchFailedAt(2): 0 and 1 are committed, 2 is retried alone under the
// policy (the batch call was its first attempt) and then recovered, and 3
// and 4 come back as a batch afterwards.
func TestBatchFailedAtRetriesAndRecoversTheFailedMessage(t *testing.T) {
	var calls batchCalls
	var rec recorderCalls
	tp := newTestPipeline(t, []ConsumerOption{
		rec.option(),
	}, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterBatchHandlerFunc(func(_ context.Context, msgs []Message[testEvent]) error {
			calls.add(msgs)
			return failAt(msgs, 2, errBusy)
		}, WithHandlerName("store")))
	})
	ps, batch := testBatch(5)
	require.True(t, tp.p.processBatch(batch, nil))
	assert.Equal(t, [][]int64{{0, 1, 2, 3, 4}, {2}, {2}, {3, 4}}, calls.all())
	got := rec.all()
	require.Len(t, got, 1)
	assert.EqualValues(t, 2, got[0].Message.Offset)
	assert.Equal(t, fastRetry.MaxAttempts, got[0].Attempts, "the batch call counts as the first attempt")
	assert.Equal(t, []string{"store"}, got[0].Handlers)
	assert.ErrorIs(t, got[0].Err, errBusy)
	assert.EqualValues(t, 5, ps.tracker.CommitPoint())
}

// With the default recoverer the consumer stops on the failed message: the
// commit point is exactly the failed message, nothing after it.
func TestBatchFailedAtStopsAtTheFailedMessage(t *testing.T) {
	tp := newTestPipeline(t, nil, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterBatchHandlerFunc(func(_ context.Context, msgs []Message[testEvent]) error {
			return failAt(msgs, 3, errInvalid)
		}, WithHandlerName("store")))
	})
	ps, batch := testBatch(6)
	require.False(t, tp.p.processBatch(batch, nil))
	assert.EqualValues(t, 3, ps.tracker.CommitPoint(), "0..2 commit, 3 and after do not")
	var herr *HandlerError
	require.ErrorAs(t, tp.s.fatalErr(), &herr)
	assert.EqualValues(t, 3, herr.Offset)
	assert.Equal(t, "store", herr.Handler)
	assert.Equal(t, fastRetry.MaxAttempts, herr.Attempts)
	assert.ErrorIs(t, herr, errInvalid)
}

// A plain error fails the whole batch: it is retried as a batch, then the
// messages go through the handler one by one, and only the one that still
// fails reaches the recoverer.
func TestBatchPlainErrorRetriesTheBatchThenOneByOne(t *testing.T) {
	var calls batchCalls
	var rec recorderCalls
	tp := newTestPipeline(t, []ConsumerOption{
		rec.option(),
	}, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterBatchHandlerFunc(func(_ context.Context, msgs []Message[testEvent]) error {
			calls.add(msgs)
			for _, m := range msgs {
				if m.Offset == 1 {
					return errBusy
				}
			}
			return nil
		}))
	})
	ps, batch := testBatch(3)
	require.True(t, tp.p.processBatch(batch, nil))
	want := [][]int64{{0, 1, 2}, {0, 1, 2}, {0, 1, 2}, {0}, {1}, {1}, {1}, {2}}
	assert.Equal(t, want, calls.all())
	got := rec.all()
	require.Len(t, got, 1)
	assert.EqualValues(t, 1, got[0].Message.Offset)
	assert.EqualValues(t, 3, ps.tracker.CommitPoint())
	assert.EqualValues(t, fastRetry.MaxAttempts-1+fastRetry.MaxAttempts-1, tp.c.Stats().Retries)
}

// A Permanent error is not retried as a batch.
func TestBatchPermanentErrorIsNotRetried(t *testing.T) {
	var calls batchCalls
	tp := newTestPipeline(t, []ConsumerOption{WithRecoverer(SkipRecoverer())}, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterBatchHandlerFunc(func(_ context.Context, msgs []Message[testEvent]) error {
			calls.add(msgs)
			return Permanent(errInvalid)
		}))
	})
	ps, batch := testBatch(2)
	require.True(t, tp.p.processBatch(batch, nil))
	assert.Equal(t, [][]int64{{0, 1}, {0}, {1}}, calls.all())
	assert.EqualValues(t, 2, ps.tracker.CommitPoint())
}

// Per-message and batch handlers run in registration order; a message a
// per-message handler fails on splits the batch as BatchFailedAt does (and,
// as in the per-message pipeline, the handlers after the failing one run
// on that message before it is retried).
func TestBatchMixedWithPerMessageHandlers(t *testing.T) {
	var mu sync.Mutex
	var log []string
	note := func(s string) { mu.Lock(); log = append(log, s); mu.Unlock() }
	failed := false
	tp := newTestPipeline(t, nil, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterHandlerFunc(func(_ context.Context, m Message[testEvent]) error {
			if m.Offset == 1 && !failed {
				failed = true
				note("validate 1 failed")
				return errBusy
			}
			note(fmt.Sprintf("validate %d", m.Offset))
			return nil
		}))
		require.NoError(t, c.RegisterBatchHandlerFunc(func(_ context.Context, msgs []Message[testEvent]) error {
			s := "store"
			for _, m := range msgs {
				s += fmt.Sprintf(" %d", m.Offset)
			}
			note(s)
			return nil
		}))
	})
	ps, batch := testBatch(3)
	require.True(t, tp.p.processBatch(batch, nil))
	assert.Equal(t, []string{"validate 0", "validate 1 failed", "store 0", "store 1", "validate 1", "validate 2", "store 2"}, log)
	assert.EqualValues(t, 3, ps.tracker.CommitPoint())
}

// A poison message in a batch: the messages before it are handled as a
// batch, it goes to the recoverer, and the rest follow as a batch.
func TestBatchPoisonMessage(t *testing.T) {
	var calls batchCalls
	var rec recorderCalls
	tp := newTestPipeline(t, []ConsumerOption{
		rec.option(),
	}, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterBatchHandlerFunc(func(_ context.Context, msgs []Message[testEvent]) error {
			calls.add(msgs)
			return nil
		}))
	})
	ps, batch := testBatch(5, 2)
	require.True(t, tp.p.processBatch(batch, nil))
	assert.Equal(t, [][]int64{{0, 1}, {3, 4}}, calls.all())
	got := rec.all()
	require.Len(t, got, 1)
	var derr *DecodeError
	assert.ErrorAs(t, got[0].Err, &derr)
	assert.EqualValues(t, 5, ps.tracker.CommitPoint())
}

// A panicking batch handler is a failed attempt, retried like any other.
func TestBatchPanicIsRetried(t *testing.T) {
	n := 0
	tp := newTestPipeline(t, nil, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterBatchHandlerFunc(func(_ context.Context, msgs []Message[testEvent]) error {
			n++
			if n == 1 {
				panic("boom")
			}
			return nil
		}))
	})
	ps, batch := testBatch(4)
	require.True(t, tp.p.processBatch(batch, nil))
	assert.Equal(t, 2, n)
	assert.EqualValues(t, 4, ps.tracker.CommitPoint())
	assert.EqualValues(t, 1, tp.c.Stats().Retries)
}

func TestBatchFailedAtError(t *testing.T) {
	err := BatchFailedAt(3, Permanent(errInvalid))
	var bf *BatchFailedError
	require.ErrorAs(t, err, &bf)
	assert.Equal(t, 3, bf.Index)
	assert.ErrorIs(t, err, errInvalid)
	assert.True(t, IsPermanent(err))
	assert.Equal(t, "mq: batch failed at message 3: "+Permanent(errInvalid).Error(), err.Error())
	require.ErrorAs(t, BatchFailedAt(0, nil), &bf)
	assert.Error(t, bf.Err, "a nil error is still an error")
}

func TestRegisterBatchHandlerRejectsNil(t *testing.T) {
	c, err := NewKafkaConsumer[testEvent]([]string{"127.0.0.1:9092"}, "orders", "billing")
	require.NoError(t, err)
	assert.ErrorIs(t, c.RegisterBatchHandler(nil), ErrNilHandler)
	assert.ErrorIs(t, c.RegisterBatchHandlerFunc(nil), ErrNilHandler)
	assert.ErrorIs(t, c.RegisterBatchHandler(BatchHandlerFunc[testEvent](nil)), ErrNilHandler)
	for _, o := range []ConsumerOption{WithBatchMaxMessages(0), WithBatchMaxBytes(-1), WithBatchLinger(-1)} {
		_, err := NewKafkaConsumer[testEvent]([]string{"127.0.0.1:9092"}, "orders", "billing", o)
		assert.ErrorIs(t, err, ErrInvalidOption)
	}
}

// obsLog records what an observer sees of the consumer side. Its
// ProcessStarted context carries the message's offset (what a tracing
// observer's span would be); the events of a call that gets another
// context end in " ctx!".
type obsLog struct {
	NopObserver
	mu     sync.Mutex
	events []string
}

// obsOffset is the context key of the offset ProcessStarted saw.
type obsOffset struct{}

// ctxOffset is the offset of the process context ctx derives from, -1 for
// none.
func ctxOffset(ctx context.Context) int64 {
	if off, ok := ctx.Value(obsOffset{}).(int64); ok {
		return off
	}
	return -1
}

func (o *obsLog) add(s string) { o.mu.Lock(); o.events = append(o.events, s); o.mu.Unlock() }

func (o *obsLog) addFor(ctx context.Context, m MessageInfo, s string) {
	if ctxOffset(ctx) != m.Offset {
		s += " ctx!"
	}
	o.add(s)
}

func (o *obsLog) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.events...)
}

func (o *obsLog) ProcessStarted(ctx context.Context, m MessageInfo) context.Context {
	o.add(fmt.Sprintf("start %d", m.Offset))
	return context.WithValue(ctx, obsOffset{}, m.Offset)
}

func (o *obsLog) HandlerFinished(ctx context.Context, m MessageInfo, h string, attempt int, _ time.Duration, err error) {
	o.addFor(ctx, m, fmt.Sprintf("%s %d attempt %d err=%v", h, m.Offset, attempt, err != nil))
}

func (o *obsLog) ProcessFinished(ctx context.Context, m MessageInfo, out Outcome, _ time.Duration, _ error) {
	o.addFor(ctx, m, fmt.Sprintf("finish %d %s", m.Offset, out))
}

// Observers see a batch's messages one by one, as the README says: each
// message's processing starts before the first handler call and finishes
// once, the message that leaves the batch keeping its process context.
func TestBatchObserver(t *testing.T) {
	obs := &obsLog{}
	calls := 0
	tp := newTestPipeline(t, []ConsumerOption{WithObserver(obs)}, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterBatchHandlerFunc(func(_ context.Context, msgs []Message[testEvent]) error {
			calls++
			if calls == 1 {
				return BatchFailedAt(2, errBusy)
			}
			return nil
		}, WithHandlerName("store")))
	})
	ps, batch := testBatch(4)
	require.True(t, tp.p.processBatch(batch, nil))
	assert.Equal(t, []string{
		"start 0", "start 1", "start 2", "start 3", // before any handler
		"store 0 attempt 1 err=false", "store 1 attempt 1 err=false", "store 2 attempt 1 err=true",
		"finish 0 handled", "finish 1 handled", // the messages before the failure
		"store 2 attempt 2 err=false", "finish 2 handled", // the failed one, on its own
		"store 3 attempt 1 err=false", "finish 3 handled", // the rest, as a batch
	}, obs.all())
	assert.EqualValues(t, 4, ps.tracker.CommitPoint())
}

// On the batch path, per-message handlers get their message's process
// context and the batch handler the consumer's; HandlerFinished and
// ProcessFinished get the message's process context, started once before
// any handler, through a partial failure, a retry on its own and a poison
// message alike.
func TestBatchObserverContexts(t *testing.T) {
	obs := &obsLog{}
	var mu sync.Mutex
	var seen []string // what context each handler call got
	note := func(s string) { mu.Lock(); seen = append(seen, s); mu.Unlock() }
	failed := false
	var rec recorderCalls
	tp := newTestPipeline(t, []ConsumerOption{WithObserver(obs), rec.option()}, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterHandlerFunc(func(ctx context.Context, m Message[testEvent]) error {
			note(fmt.Sprintf("validate %d ctx %d", m.Offset, ctxOffset(ctx)))
			if m.Offset == 1 && !failed {
				failed = true
				return errBusy
			}
			return nil
		}, WithHandlerName("validate")))
		require.NoError(t, c.RegisterBatchHandlerFunc(func(ctx context.Context, msgs []Message[testEvent]) error {
			s := "store"
			for _, m := range msgs {
				s += fmt.Sprintf(" %d", m.Offset)
			}
			note(fmt.Sprintf("%s ctx %d", s, ctxOffset(ctx)))
			return nil
		}, WithHandlerName("store")))
	})
	ps, batch := testBatch(5, 3)
	require.True(t, tp.p.processBatch(batch, nil))
	assert.Equal(t, []string{
		"validate 0 ctx 0", "validate 1 ctx 1", // 1 fails: 0 goes on
		"store 0 ctx -1",                    // a batch: the consumer's context
		"store 1 ctx 1", "validate 1 ctx 1", // 1 on its own (store as a batch of one), in its context
		"validate 2 ctx 2", "store 2 ctx -1",
		// 3 is a poison message: no handler
		"validate 4 ctx 4", "store 4 ctx -1",
	}, seen)
	events := obs.all()
	assert.Equal(t, []string{"start 0", "start 1", "start 2", "start 3", "start 4"}, events[:5],
		"every message's processing starts before any handler")
	assert.Equal(t, []string{
		"validate 0 attempt 1 err=false", "validate 1 attempt 1 err=true",
		"store 0 attempt 1 err=false", "finish 0 handled",
		"store 1 attempt 1 err=false", "validate 1 attempt 2 err=false", "finish 1 handled",
		"validate 2 attempt 1 err=false", "store 2 attempt 1 err=false", "finish 2 handled",
		"finish 3 recovered",
		"validate 4 attempt 1 err=false", "store 4 attempt 1 err=false", "finish 4 handled",
	}, events[5:], "no ctx! suffix: every call got its message's process context")
	assert.Len(t, rec.all(), 1)
	assert.EqualValues(t, 5, ps.tracker.CommitPoint())
}

// A batch the consumer stops on: every message whose processing started
// and did not finish is reported abandoned, once; a per-message handler's
// context is still cancelled by the shutdown timeout (the consumer's hard
// context).
func TestBatchObserverAbandonsOnStop(t *testing.T) {
	obs := &obsLog{}
	hard, cancelHard := context.WithCancel(context.Background())
	defer cancelHard()
	var cancelled bool
	tp := newTestPipeline(t, []ConsumerOption{WithObserver(obs)}, func(c *KafkaConsumer[testEvent]) {
		require.NoError(t, c.RegisterHandlerFunc(func(ctx context.Context, m Message[testEvent]) error {
			if m.Offset == 1 {
				cancelHard() // the shutdown timeout passes
				cancelled = ctx.Err() != nil
				return ctx.Err()
			}
			return nil
		}, WithHandlerName("validate")))
		require.NoError(t, c.RegisterBatchHandlerFunc(func(context.Context, []Message[testEvent]) error {
			return nil
		}, WithHandlerName("store")))
	})
	tp.p.hard = hard
	ps, batch := testBatch(3)
	require.False(t, tp.p.processBatch(batch, nil))
	assert.True(t, cancelled, "the handler's context derives from the consumer's hard context")
	assert.Equal(t, []string{
		"start 0", "start 1", "start 2",
		"validate 0 attempt 1 err=false", "validate 1 attempt 1 err=true",
		"finish 0 abandoned", "finish 1 abandoned", "finish 2 abandoned",
	}, obs.all())
	assert.EqualValues(t, -1, ps.tracker.CommitPoint(), "nothing committed")
}
