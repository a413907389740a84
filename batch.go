package mq

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/mqkit/mq/internal/backoff"
	"github.com/mqkit/mq/internal/fetch"
	"go.uber.org/zap"
)

// BatchHandler processes consumed messages a batch at a time: consecutive
// messages of one partition, in offset order, up to [WithBatchMaxMessages]
// and [WithBatchMaxBytes], gathered for up to [WithBatchLinger] (with
// [WithLanes], the messages of one lane: in order for each key, not
// consecutive offsets). Register
// one with [KafkaConsumer.RegisterBatchHandler]; it can be registered beside
// per-message handlers or instead of them.
//
// The commit contract is the one of [Handler], applied to each message of
// the batch: returning nil means the handler is done with every message of
// msgs, and each is committed once every handler succeeded for it and for
// every earlier message of its partition.
//
// A partial failure is reported with [BatchFailedAt](i, err): msgs[:i]
// succeeded and msgs[i] failed with err. The messages before i then go on
// (and are committed once every handler is done with them); msgs[i] goes
// through the retry policy and the recoverer exactly as a message a
// per-message handler failed on (the batch call counts as its first
// attempt; the retries call HandleBatch with msgs[i] alone); the messages
// after it are handed to the handler again, as a new batch, once msgs[i] is
// resolved. Any other error fails the whole batch: it is retried as a batch
// under the retry policy (classification included: a [Permanent] error is
// not retried), and when it still fails, its messages go through the
// handler one by one (each a batch of one, with a fresh retry policy), so
// that only the messages that still fail reach the recoverer.
//
// msgs is valid only during the call: the consumer reuses the slice for
// its next batch. Copy the messages you keep.
//
// ctx is the consumer's context, bounded by the handler's timeout, as a
// per-message handler's; but it carries no message's trace, since the
// messages of a batch each have their own: an [Observer]'s ProcessStarted
// context of a message (with mqotel, its process span) reaches its
// per-message handlers and its HandlerFinished calls, not the batch
// handler, except when the message is handed to it alone through the
// per-message pipeline (its retries on its own, retry topics). Extract a
// message's trace from its Headers to continue it.
type BatchHandler[T any] interface {
	HandleBatch(ctx context.Context, msgs []Message[T]) error
}

// BatchHandlerFunc adapts a function to a [BatchHandler].
type BatchHandlerFunc[T any] func(ctx context.Context, msgs []Message[T]) error

// HandleBatch calls f(ctx, msgs).
func (f BatchHandlerFunc[T]) HandleBatch(ctx context.Context, msgs []Message[T]) error {
	return f(ctx, msgs)
}

var _ BatchHandler[struct{}] = BatchHandlerFunc[struct{}](nil)

// BatchFailedError is the error [BatchFailedAt] returns: a batch handler
// handled msgs[:Index] and failed on msgs[Index] with Err.
type BatchFailedError struct {
	Index int
	Err   error
}

func (e *BatchFailedError) Error() string {
	return fmt.Sprintf("mq: batch failed at message %d: %v", e.Index, e.Err)
}

// Unwrap returns Err, so that errors.Is and errors.As (and [Permanent],
// and the consumer's retry classification) see the message's own error.
func (e *BatchFailedError) Unwrap() error { return e.Err }

// BatchFailedAt is what a [BatchHandler] returns when it handled msgs[:i]
// and failed on msgs[i] with err (as Spring's BatchListenerFailedException
// does): the messages before i are committed (once every other handler is
// done with them too), msgs[i] is retried and recovered on its own, and
// the rest of the batch is handed over again afterwards. An i outside the
// batch (below 0 or at its length or beyond) makes the error a failure of
// the whole batch. err may be marked [Permanent].
func BatchFailedAt(i int, err error) error {
	if err == nil {
		err = errors.New("mq: batch failed (no error given)")
	}
	return &BatchFailedError{Index: i, Err: err}
}

// RegisterBatchHandler adds a batch handler; it takes the same options as
// [KafkaConsumer.RegisterHandler] (its name, retry policy, timeout for each
// call, retry classification). Per-message handlers and batch handlers run
// in registration order on each batch of a partition; a batch handler of a
// consumer that also has per-message handlers still gets batches. It
// returns [ErrNilHandler] for a nil handler, [ErrRunning] once Run has
// started, and an [ErrInvalidOption] error for a name another handler has.
//
// Batches are per partition, so order holds within a partition. Messages
// of retry topics ([RetryTopics]) are handed over one at a time, each a
// batch of one, since each waits for its own due time. With [WithLanes],
// each lane forms batches of its own messages: in order (for each key), but
// not consecutive offsets, since other lanes take the other keys.
func (c *KafkaConsumer[T]) RegisterBatchHandler(h BatchHandler[T], opts ...HandlerOption) error {
	if isNil(h) {
		return ErrNilHandler
	}
	return c.register(func(index int) (registeredHandler[T], error) {
		rh, err := newRegisteredHandler(index, batchOfOne(h), c.cfg.retry, c.cfg.retryableIf, opts)
		rh.batch = h
		rh.timeout = handlerTimeout(opts)
		return rh, err
	})
}

// RegisterBatchHandlerFunc registers a function as a batch handler; it is
// RegisterBatchHandler(BatchHandlerFunc[T](fn), opts...) without spelling
// out T.
func (c *KafkaConsumer[T]) RegisterBatchHandlerFunc(fn func(ctx context.Context, msgs []Message[T]) error, opts ...HandlerOption) error {
	if fn == nil {
		return ErrNilHandler
	}
	return c.RegisterBatchHandler(BatchHandlerFunc[T](fn), opts...)
}

func handlerTimeout(opts []HandlerOption) time.Duration {
	var cfg handlerConfig
	for _, o := range opts {
		if o != nil {
			o.applyHandler(&cfg)
		}
	}
	return cfg.timeout
}

// batchOfOne is a batch handler seen as a per-message handler: what the
// per-message pipeline calls (retry topics, lanes, a message retried on its
// own). A partial failure at 0 is the message's failure.
func batchOfOne[T any](h BatchHandler[T]) Handler[T] {
	return HandlerFunc[T](func(ctx context.Context, msg Message[T]) error {
		err := h.HandleBatch(ctx, []Message[T]{msg})
		var bf *BatchFailedError
		if errors.As(err, &bf) && bf.Index == 0 {
			return bf.Err
		}
		return err
	})
}

// batching reports whether the consumer forms batches on its main topics'
// partitions: it has a batch handler (with lanes, each lane forms its own).
func (s *session[T]) batching() bool {
	for i := range s.handlers {
		if s.handlers[i].batch != nil {
			return true
		}
	}
	return false
}

// batcher gathers a partition's messages into batches.
type batcher[T any] struct {
	s       *session[T]
	ps      *partitionState
	proc    *processor[T]
	pending []inbound
	bytes   int
	first   time.Time // when the first pending message was added
	held    []*fetch.Chunk
	buf     batchBuf[T] // reused by every batch
}

// batchBuf holds what processBatch reuses from one batch to the next (one
// per goroutine: a partition's worker or lane): the messages handed to the
// handlers and, with an observer, their process contexts.
type batchBuf[T any] struct {
	msgs []Message[T]
	ctxs []context.Context
}

// size is what a message counts against WithBatchMaxBytes.
func (m inbound) size() int { return len(m.rec.Key) + len(m.rec.Value) }

// batchFull reports whether a batch of n messages and bytes is full.
func (c *consumerConfig) batchFull(n, bytes int) bool {
	return n >= c.batchMaxMessages || (c.batchMaxBytes > 0 && bytes >= c.batchMaxBytes)
}

// batchOverflows reports whether a message of size would not fit a batch
// of n messages and bytes (a first message always fits).
func (c *consumerConfig) batchOverflows(n, bytes, size int) bool {
	return c.batchMaxBytes > 0 && n > 0 && bytes+size > c.batchMaxBytes
}

// add appends m to the pending batch; it reports whether the batch is full.
func (b *batcher[T]) add(m inbound) bool {
	if len(b.pending) == 0 {
		b.first = time.Now()
	}
	b.pending = append(b.pending, m)
	b.bytes += m.size()
	return b.s.c.cfg.batchFull(len(b.pending), b.bytes)
}

// overflows reports whether m would not fit the pending batch by bytes.
func (b *batcher[T]) overflows(m inbound) bool {
	return b.s.c.cfg.batchOverflows(len(b.pending), b.bytes, m.size())
}

// flush processes the pending batch and releases the chunks it held. It
// reports false when the partition must stop.
func (b *batcher[T]) flush() bool {
	if len(b.pending) == 0 {
		b.release()
		return true
	}
	ok := b.proc.processBatch(b.pending, &b.buf)
	b.drop()
	return ok
}

// drop forgets the pending batch (after processing it, or a seek),
// releasing its chunks.
func (b *batcher[T]) drop() {
	clear(b.pending)
	b.pending = b.pending[:0]
	b.bytes = 0
	b.release()
}

func (b *batcher[T]) release() {
	for _, ch := range b.held {
		ch.Release()
	}
	clear(b.held)
	b.held = b.held[:0]
}

// consumeBatches is consumePartition's loop for a partition whose messages
// go out in batches: it takes the partition's chunks and hands their
// records over in batches until soft ends or a message fails for good.
func (s *session[T]) consumeBatches(soft context.Context, ps *partitionState, proc *processor[T], fp *fetch.Partition) {
	c := s.c
	b := &batcher[T]{s: s, ps: ps, proc: proc}
	defer b.release()
	for {
		if !s.control(soft, ps, fp, b.drop) {
			return
		}
		ctx, cancel := ps.ctl.nextContext(soft)
		if len(b.pending) > 0 {
			// Wait for more records only until the batch's linger ends.
			var cancelLinger context.CancelFunc
			ctx, cancelLinger = context.WithDeadline(ctx, b.first.Add(c.cfg.batchLinger))
			stop := cancel
			cancel = func() { cancelLinger(); stop() }
		}
		chunk, err := fp.Next(ctx)
		cancel()
		if soft.Err() != nil {
			chunk.Release()
			return
		}
		if err != nil {
			if ctx.Err() != nil {
				// The linger ended, or a pause or seek interrupts the wait.
				if errors.Is(ctx.Err(), context.DeadlineExceeded) && !b.flush() {
					return
				}
				continue
			}
			proc.log.Error("fetching the partition failed: stopping the consumer", zap.Error(err))
			s.fail(fmt.Errorf("mq: consuming %s[%d]: %w", ps.topic, ps.id, err))
			return
		}
		if chunk.Restarted {
			chunk.Release()
			if !b.flush() { // what was fetched before, first
				return
			}
			ps.restartAt(chunk.NextOffset)
			continue
		}
		if !s.batchChunk(soft, ps, b, chunk) {
			return
		}
	}
}

// batchChunk adds a chunk's records to the pending batch, handing full
// batches over. It reports false when the partition must stop.
func (s *session[T]) batchChunk(soft context.Context, ps *partitionState, b *batcher[T], chunk *fetch.Chunk) bool {
	c := s.c
	for i := range chunk.Records {
		if soft.Err() != nil {
			chunk.Release()
			return false
		}
		if ps.ctl.pending() {
			seeks := ps.ctl.seeks()
			if !s.control(soft, ps, ps.fp.Load(), b.drop) {
				chunk.Release()
				return false
			}
			if ps.ctl.seeks() != seeks {
				chunk.Release() // sought elsewhere: the rest of the chunk is stale
				return true
			}
		}
		r := &chunk.Records[i]
		if !ps.tracker.Begin(r.Offset) {
			continue
		}
		c.consumed.Add(1)
		in := inbound{ps: ps, rec: r, hwm: chunk.HighWatermark}
		// A message that does not fit sends the pending batch first; one
		// that fills it sends it with itself.
		if (b.overflows(in) && !b.flush()) || (b.add(in) && !b.flush()) {
			chunk.Release()
			return false
		}
	}
	ps.tracker.Advance(chunk.NextOffset)
	if len(b.pending) == 0 {
		chunk.Release()
		return true
	}
	b.held = append(b.held, chunk)
	if c.cfg.batchLinger <= 0 {
		return b.flush()
	}
	return true
}

// processBatch runs the handlers on a batch of one partition's messages,
// in order, and marks each message finished once it may be committed. It
// reports false when the consumer must stop or is stopping. buf, when
// given, is reused for the messages handed to the handlers and their
// process contexts.
//
// With an observer, each message's processing starts here, before any
// handler: its ProcessStarted context is the one its per-message handlers
// and its HandlerFinished calls get, and it ends once, in finishBatch, in
// the per-message pipeline when the message leaves the batch, or as
// abandoned when the consumer stops first.
func (p *processor[T]) processBatch(batch []inbound, buf *batchBuf[T]) bool {
	var tr traces
	if obs := p.s.c.cfg.observer; obs != nil {
		var ctxs []context.Context
		if buf != nil && cap(buf.ctxs) >= len(batch) {
			ctxs = buf.ctxs[:len(batch)]
		} else {
			ctxs = make([]context.Context, len(batch))
			if buf != nil {
				buf.ctxs = ctxs
			}
		}
		defer clear(ctxs) // nothing of the batch stays referenced
		tr = traces{ctxs: ctxs, start: time.Now()}
		for k, m := range batch {
			tr.ctxs[k] = obs.ProcessStarted(p.hard, p.info(m))
		}
	}
	ok := p.decodeBatch(batch, buf, tr)
	if !ok && tr.ctxs != nil {
		p.abandon(batch, tr)
	}
	return ok
}

// decodeBatch is processBatch once the batch's processing started.
func (p *processor[T]) decodeBatch(batch []inbound, buf *batchBuf[T], tr traces) bool {
	c := p.s.c
	var msgs []Message[T]
	if buf != nil && cap(buf.msgs) >= len(batch) {
		msgs = buf.msgs[:len(batch)]
	} else {
		msgs = make([]Message[T], len(batch))
		if buf != nil {
			buf.msgs = msgs
		}
	}
	defer clear(msgs) // nothing of the fetch buffers stays referenced
	for k, m := range batch {
		var v T
		if m.rec.Value != nil {
			var err error
			if v, err = c.codec.Decode(m.rec.Value); err != nil {
				// A poison message: the batch before it goes on, the
				// message goes through the per-message pipeline (to the
				// recoverer), then the rest.
				if !p.runBatch(batch[:k], msgs[:k], tr.slice(0, k), nil, 0) || !p.processOne(m, tr.slice(k, k+1), nil, nil) {
					return false
				}
				clear(msgs)
				return p.decodeBatch(batch[k+1:], buf, tr.slice(k+1, len(batch)))
			}
		}
		msgs[k] = Message[T]{Topic: m.ps.topic, Partition: m.ps.id, Offset: m.rec.Offset, Key: m.rec.Key, Value: v,
			Headers: m.rec.Headers, Time: m.rec.Timestamp, TimestampType: TimestampType(m.rec.TimestampType),
			Tombstone: m.rec.Value == nil, HighWaterMark: m.hwm, Raw: m.rec.Value}
	}
	return p.runBatch(batch, msgs, tr, nil, 0)
}

// traces holds the observer's process contexts of a batch's messages:
// ctxs[k] is the ProcessStarted context of the batch's message k, nil once
// its processing was reported finished; all started at start. Without an
// observer ctxs is nil (and nothing is allocated). Slices of a traces share
// ctxs, so a message finished through a slice is seen finished by the
// whole batch.
type traces struct {
	ctxs  []context.Context
	start time.Time
}

// slice is the traces of the batch's messages i to j-1.
func (tr traces) slice(i, j int) traces {
	if tr.ctxs != nil {
		tr.ctxs = tr.ctxs[i:j]
	}
	return tr
}

// ctx is message k's handler context: its process context, or def (the
// consumer's context) without an observer.
func (tr traces) ctx(k int, def context.Context) context.Context {
	if tr.ctxs == nil {
		return def
	}
	return tr.ctxs[k]
}

// abandon reports the messages of a batch whose processing started and
// did not finish (the consumer stops) as abandoned: left uncommitted.
func (p *processor[T]) abandon(batch []inbound, tr traces) {
	obs := p.s.c.cfg.observer
	took := time.Since(tr.start)
	for k, ctx := range tr.ctxs {
		if ctx != nil {
			obs.ProcessFinished(ctx, p.info(batch[k]), OutcomeAbandoned, took, nil)
			tr.ctxs[k] = nil
		}
	}
}

// processOne passes one message of a batch through the per-message
// pipeline, the handlers of done excepted, and marks it finished when it
// may be committed. first, when set, is the failed first attempt of one
// handler (made in a batch). tr holds the message's process context (its
// batch's traces sliced to it): the pipeline goes on with it and reports
// it finished, so that the message has one process span.
func (p *processor[T]) processOne(m inbound, tr traces, done []string, first *handlerRun) bool {
	ok := p.processWith(m, slices.Clone(done), first, tr)
	if tr.ctxs != nil {
		tr.ctxs[0] = nil // processWith reported it finished
	}
	if !ok {
		return false
	}
	m.ps.finish(m.rec.Offset)
	return true
}

// runBatch runs the handlers from index from on a batch (ins, and msgs
// decoded from them, tr their process contexts), every handler named in
// done having succeeded on all of it, and finishes its messages in order.
func (p *processor[T]) runBatch(ins []inbound, msgs []Message[T], tr traces, done []string, from int) bool {
	if len(ins) == 0 {
		return true
	}
	c := p.s.c
	for hi := from; hi < len(p.s.handlers); hi++ {
		h := &p.s.handlers[hi]
		if slices.Contains(done, h.name) {
			continue
		}
		at, err, stop := p.callBatchRetrying(h, ins, msgs, tr)
		if stop {
			return false
		}
		if err == nil {
			c.handled.Add(int64(len(ins)))
			done = append(slices.Clone(done), h.name)
			continue
		}
		if at < 0 {
			// The whole batch failed for good: its messages go through the
			// handlers one by one.
			for k, m := range ins {
				if !p.processOne(m, tr.slice(k, k+1), done, nil) {
					return false
				}
			}
			return true
		}
		// msgs[:at] go on; msgs[at] failed its first attempt; the rest
		// come back to this handler afterwards.
		c.handled.Add(int64(at))
		if !p.runBatch(ins[:at], msgs[:at], tr.slice(0, at), append(slices.Clone(done), h.name), hi+1) {
			return false
		}
		if !p.processOne(ins[at], tr.slice(at, at+1), done, &handlerRun{idx: hi, attempts: 1, err: err}) {
			return false
		}
		return p.runBatch(ins[at+1:], msgs[at+1:], tr.slice(at+1, len(ins)), done, hi)
	}
	p.finishBatch(ins, tr)
	return true
}

// finishBatch marks a handled batch finished, reporting each message's
// processing finished to the observer (it started in processBatch).
func (p *processor[T]) finishBatch(ins []inbound, tr traces) {
	if tr.ctxs != nil {
		obs := p.s.c.cfg.observer
		took := time.Since(tr.start)
		for k, m := range ins {
			obs.ProcessFinished(tr.ctxs[k], p.info(m), OutcomeHandled, took, nil)
			tr.ctxs[k] = nil
		}
	}
	ps := ins[0].ps
	for _, m := range ins {
		ps.tracker.Done(m.rec.Offset)
	}
	ps.lastProgress.Store(time.Now().UnixNano())
}

// info describes a message to the observer.
func (p *processor[T]) info(m inbound) MessageInfo {
	return MessageInfo{Topic: m.ps.topic, Partition: m.ps.id, Offset: m.rec.Offset, Key: m.rec.Key,
		Headers: m.rec.Headers, Time: m.rec.Timestamp, TimestampType: TimestampType(m.rec.TimestampType),
		Tombstone: m.rec.Value == nil, HighWaterMark: m.hwm, Group: p.s.c.group}
}

// callBatchRetrying calls h on a batch, retrying a failure of the whole
// batch under h's retry policy. It returns at >= 0 with the error of
// msgs[at] for a partial failure; at < 0 with an error when the whole
// batch failed for good; stop when the consumer is stopping.
func (p *processor[T]) callBatchRetrying(h *registeredHandler[T], ins []inbound, msgs []Message[T], tr traces) (at int, err error, stop bool) {
	c := p.s.c
	first, last := ins[0].rec.Offset, ins[len(ins)-1].rec.Offset
	for attempt := 1; ; attempt++ {
		err := p.callBatch(h, ins, msgs, tr, attempt)
		if err == nil {
			return -1, nil, false
		}
		if p.stoppedWaiting(h.name, ins[0], err) {
			return -1, err, true
		}
		var bf *BatchFailedError
		if errors.As(err, &bf) && bf.Index >= 0 && bf.Index < len(ins) {
			return bf.Index, bf.Err, false
		}
		if len(ins) == 1 {
			return 0, err, false // a batch of one fails as its message does
		}
		c.handlerErrors.Add(1)
		fields := []zap.Field{zap.String("handler", h.name), zap.Int64("first_offset", first),
			zap.Int64("last_offset", last), zap.Int("attempt", attempt), zap.Error(err)}
		var perr *PanicError
		if errors.As(err, &perr) {
			fields = append(fields, zap.ByteString("stack", perr.Stack))
		}
		if !h.retryable(err) || attempt >= h.retry.MaxAttempts {
			p.log.Warn("batch handler gave up on the batch; its messages go through it one by one", fields...)
			return -1, err, false
		}
		p.log.Warn("batch handler failed, retrying the batch", fields...)
		c.retries.Add(1)
		bo := backoff.Policy{Initial: h.retry.InitialBackoff, Max: h.retry.MaxBackoff,
			Multiplier: h.retry.Multiplier, Jitter: h.retry.Jitter}
		if !sleepCtx(p.soft, bo.Delay(attempt)) {
			return -1, err, true
		}
	}
}

// callBatch calls h on a batch once: a batch handler with the batch, a
// per-message handler on each message until one fails (a partial failure).
// Panics become *PanicError; the handler's timeout bounds the call. A
// per-message handler gets each message's process context (tr), a batch
// handler the consumer's context (one call, many messages: many parents);
// each message's HandlerFinished gets the message's process context.
func (p *processor[T]) callBatch(h *registeredHandler[T], ins []inbound, msgs []Message[T], tr traces, attempt int) error {
	obs := p.s.c.cfg.observer
	if h.batch == nil {
		for k := range msgs {
			if err := p.call(tr.ctx(k, p.hard), h, msgs[k], p.infoOrNil(ins[k]), attempt); err != nil {
				return BatchFailedAt(k, err)
			}
		}
		return nil
	}
	start := time.Now()
	err := callBatchHandler(p.hard, h, msgs)
	if obs != nil {
		took := time.Since(start)
		var bf *BatchFailedError
		failedAt := -1
		if errors.As(err, &bf) && bf.Index >= 0 && bf.Index < len(ins) {
			failedAt = bf.Index
		}
		for k := range ins {
			var e error
			switch {
			case err == nil || k < failedAt:
			case failedAt < 0 || k == failedAt:
				e = err
			default:
				continue // not handled: it comes back later
			}
			obs.HandlerFinished(tr.ctx(k, p.hard), p.info(ins[k]), h.name, attempt, took, e)
		}
	}
	return err
}

func (p *processor[T]) infoOrNil(m inbound) *MessageInfo {
	if p.s.c.cfg.observer == nil {
		return nil
	}
	info := p.info(m)
	return &info
}

// callBatchHandler calls a batch handler, turning a panic into a
// *PanicError and bounding the call with the handler's timeout.
func callBatchHandler[T any](ctx context.Context, h *registeredHandler[T], msgs []Message[T]) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	if h.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	return h.batch.HandleBatch(ctx, msgs)
}
