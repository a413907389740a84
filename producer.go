package mq

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqkit/mq/internal/produce"
	"github.com/mqkit/mq/internal/wire"
	"go.uber.org/zap"
)

// Producer sends values of type T to Kafka: to its own topic, or to the
// topic a message names ([Message.Topic]).
//
// Messages are batched per partition without waiting for a timer: a
// partition with nothing in flight sends at once, and messages that arrive
// while a request is in flight leave together in the next one. A lone
// synchronous send therefore takes one round trip, while many concurrent
// senders are batched. Each broker has its own pipeline of requests, so a
// slow or unreachable broker delays only the partitions it leads.
//
// With idempotence (the default with [AcksAll], see [WithIdempotence]) the
// broker deduplicates a retried batch and rejects any reordering: a retry
// after a lost response or a leader move writes nothing twice, and the
// messages of a partition are written in the order they were sent.
//
// Every buffered message reports its outcome exactly once: to the synchronous
// caller, to the callback of [Producer.SendAsync], or, in asynchronous mode
// ([WithAsync]), to the handler set with [WithDeliveryHandler]. Retriable
// errors are retried until [WithDeliveryTimeout].
//
// Producer is safe for concurrent use. Call Close to deliver buffered
// messages and release connections.
type Producer[T any] struct {
	cfg        producerConfig
	topic      string
	codec      Codec[T]
	jsonPtr    bool // encode with json.Marshal(&record.value), see jsonThroughPointer
	log        *zap.Logger
	engine     *produce.Engine
	pool       *wire.Pool
	onDelivery func(Message[T], error)

	sent atomic.Int64 // counted by the sending goroutines
	// Keeps sent and the counters the engine's goroutines update on
	// separate cache lines: sharing one cost an atomic add per message a
	// cache miss in the asynchronous throughput benchmark.
	_         [56]byte
	delivered atomic.Int64
	failed    atomic.Int64
	lastErr   atomic.Pointer[errBox]

	// failMu orders failures against Flush and Close, which count them:
	// failed is added to under it, unheard counts the failures that no
	// caller or callback was told about (asynchronous sends without a
	// delivery handler: only logged), and heard how many of those a Flush
	// or Close has counted.
	failMu  sync.Mutex
	unheard int64
	heard   int64

	closeOnce sync.Once
	closeErr  error
}

type errBox struct{ err error }

// NewProducer returns a producer of T values whose messages go to topic
// unless they name another ([Message.Topic]). It connects lazily: brokers
// are first contacted by the first send. It returns an error wrapping
// [ErrInvalidOption] for bad input, and never panics.
func NewProducer[T any](brokers []string, topic string, opts ...ProducerOption) (*Producer[T], error) {
	cfg := defaultProducerConfig()
	for _, o := range opts {
		if o != nil {
			o.applyProducer(&cfg)
		}
	}
	if err := validateBrokers(brokers); err != nil {
		return nil, err
	}
	if topic == "" {
		return nil, invalid("topic must not be empty")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	codec, err := resolveCodec[T](cfg.codec)
	if err != nil {
		return nil, err
	}
	var onDelivery func(Message[T], error)
	if cfg.onDelivery != nil {
		fn, ok := cfg.onDelivery.(func(Message[T], error))
		if !ok {
			var zero T
			return nil, invalid("delivery handler %T does not take messages of type %T", cfg.onDelivery, zero)
		}
		onDelivery = fn
	}
	p := &Producer[T]{
		cfg:        cfg,
		topic:      topic,
		codec:      codec,
		log:        logger(cfg.logger).With(zap.String("topic", topic)),
		onDelivery: onDelivery,
	}
	if _, ok := codec.(JSONCodec[T]); ok {
		p.jsonPtr = jsonThroughPointer(reflect.TypeFor[T]())
	}
	p.pool = wire.NewPool(cfg.dialer())
	p.engine, err = produce.New(produce.Config{
		Network:          p.pool,
		Bootstrap:        brokers,
		Acks:             int16(cfg.acks),
		Idempotent:       cfg.idempotent(),
		Compression:      produce.Compression(cfg.compression),
		BatchRecords:     cfg.batchSize,
		BatchBytes:       cfg.batchBytes,
		MaxRequestBytes:  cfg.maxRequestSize,
		Linger:           cfg.batchTimeout,
		MaxBuffered:      cfg.maxBuffered,
		DeliveryTimeout:  cfg.deliveryTimeout,
		RequestTimeout:   cfg.writeTimeout,
		RetryBackoff:     cfg.retryBackoff,
		MaxRetryBackoff:  maxRetryBackoff,
		ManualPartitions: cfg.manualPartitions,
		Balancer:         cfg.balancer,
		Fatal:            isAuthFailure,
		Done:             p.complete,
		Logger:           p.log,
	})
	if err != nil {
		_ = p.pool.Close()
		return nil, invalid("%v", err)
	}
	return p, nil
}

// maxRetryBackoff caps the doubling of WithRetryBackoff.
const maxRetryBackoff = time.Second

func validateBrokers(brokers []string) error {
	if len(brokers) == 0 {
		return invalid("no brokers given")
	}
	for _, b := range brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil {
			return invalid("broker address %q: %v", b, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
			return invalid("broker address %q: want host:port with a port in 1-65535", b)
		}
	}
	return nil
}

// Topic returns the producer's topic: where messages go that name none.
func (p *Producer[T]) Topic() string { return p.topic }

// Send encodes value and sends it with key and headers to the producer's
// topic. Synchronously (the default) it returns once the broker acknowledged
// the message, as [WithRequiredAcks] asks, or failed. In asynchronous mode
// ([WithAsync]) it returns once the message is buffered, with a Result whose
// Partition and Offset are -1, and the outcome goes to the delivery handler.
//
// Send never waits for metadata or a connection beyond its context. If ctx
// ends first, Send returns ctx.Err() but the message may still be delivered.
// Send blocks while the buffer is full ([WithMaxBufferedRecords]). After
// Close it returns [ErrClosed].
func (p *Producer[T]) Send(ctx context.Context, key []byte, value T, headers ...Header) (Result, error) {
	msg := Message[T]{Key: key, Value: value, Headers: headers}
	return p.sendMessage(ctx, &msg)
}

// SendMessage is [Producer.Send] for a whole message: key, value (or a
// tombstone), headers, time, topic (empty: the producer's) and, with
// [WithManualPartitioning], partition. Its Offset is ignored.
func (p *Producer[T]) SendMessage(ctx context.Context, msg Message[T]) (Result, error) {
	return p.sendMessage(ctx, &msg)
}

// sendMessage is SendMessage; the message is passed by reference down to
// newRecord, not copied at each call.
func (p *Producer[T]) sendMessage(ctx context.Context, msg *Message[T]) (Result, error) {
	if p.cfg.async {
		if err := p.sendAsync(ctx, msg, nil); err != nil {
			return Result{}, err
		}
		return Result{Topic: p.topicOf(msg), Partition: -1, Offset: -1}, nil
	}
	r, err := p.newRecord(ctx, msg)
	if err != nil {
		return Result{}, err
	}
	w := newWaiter(1)
	r.waiter = w
	if err := p.enqueue(ctx, r, true); err != nil {
		return Result{}, err
	}
	select {
	case <-w.ch:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	if r.err != nil {
		return Result{}, r.err
	}
	return r.result(), nil
}

// SendMessages sends several messages at once and, synchronously, waits for
// all of them. Results has one entry per message. If some fail, the error is
// a [*BatchError] whose Errors line up with msgs; the others were delivered,
// and a failed message's Result has Partition and Offset -1. In asynchronous
// mode it returns once all are buffered, every Result with Partition and
// Offset -1 (as [Producer.Send]), and the outcomes go to the delivery
// handler. A message that cannot be encoded or is too large sends nothing:
// the error names its index, and there are no results.
func (p *Producer[T]) SendMessages(ctx context.Context, msgs ...Message[T]) ([]Result, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	recs := make([]*record[T], len(msgs))
	for i := range msgs {
		r, err := p.newRecord(ctx, &msgs[i])
		if err != nil {
			for _, prev := range recs[:i] {
				p.abandon(prev, err)
			}
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		recs[i] = r
	}
	if p.cfg.async {
		for i, r := range recs {
			r.done = p.onDelivery
			if err := p.enqueue(ctx, r, false); err != nil {
				for _, later := range recs[i+1:] {
					p.abandon(later, err)
				}
				return nil, fmt.Errorf("message %d (and later ones) not sent: %w", i, err)
			}
		}
		results := make([]Result, len(recs))
		for i, r := range recs {
			results[i] = Result{Topic: r.rec.Topic, Partition: -1, Offset: -1}
		}
		return results, nil
	}
	w := newWaiter(int32(len(recs)))
	for i, r := range recs {
		r.waiter = w
		if err := p.enqueue(ctx, r, true); err != nil {
			// Those already buffered will still be sent; say which were not.
			for j := i; j < len(recs); j++ {
				if j > i {
					p.abandon(recs[j], err)
				}
				recs[j].err = err
				w.finish()
			}
			break
		}
	}
	select {
	case <-w.ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	results := make([]Result, len(recs))
	var errs []error
	for i, r := range recs {
		if r.err != nil {
			if errs == nil {
				errs = make([]error, len(recs))
			}
			errs[i] = r.err
			results[i] = Result{Topic: r.rec.Topic, Partition: -1, Offset: -1}
			continue
		}
		results[i] = r.result()
	}
	if errs != nil {
		return results, &BatchError{Errors: errs}
	}
	return results, nil
}

// SendAsync buffers msg and returns without waiting for metadata or the
// broker. If it returns nil, done is called exactly once with the outcome:
// the message with Topic, Partition and Offset filled in and a nil error, or
// the delivery error (a missing topic, a refused producer ID and the
// delivery timeout are reported here, not by SendAsync). A nil done reports
// to the producer's delivery handler ([WithDeliveryHandler]) or, without
// one, logs failures. If SendAsync returns an error (encoding, a message too
// large, ctx ended while the buffer was full, closed), the message was not
// buffered and done is not called.
//
// done runs on a goroutine of the producer (the sender of the partition's
// broker): keep it fast and do not call blocking sends from it.
func (p *Producer[T]) SendAsync(ctx context.Context, msg Message[T], done func(Message[T], error)) error {
	return p.sendAsync(ctx, &msg, done)
}

func (p *Producer[T]) sendAsync(ctx context.Context, msg *Message[T], done func(Message[T], error)) error {
	r, err := p.newRecord(ctx, msg)
	if err != nil {
		return err
	}
	if done == nil {
		done = p.onDelivery
	}
	r.done = done
	return p.enqueue(ctx, r, false)
}

// Flush sends every buffered message without waiting for batch timeouts and
// waits until the messages buffered before the call have an outcome (their
// callbacks have returned), or ctx ends. Messages sent meanwhile by other
// goroutines are not waited for. It returns an [*UndeliveredError] counting
// the messages that failed meanwhile and those that failed earlier without
// anyone being told (asynchronous sends without a delivery handler, see
// [WithAsync]) and that no earlier Flush or Close counted.
func (p *Producer[T]) Flush(ctx context.Context) error {
	c := p.startCount()
	if err := p.engine.Flush(ctx); err != nil {
		return err
	}
	return p.undelivered(c)
}

// Close stops accepting messages (later sends return [ErrClosed]), delivers
// what is buffered within the close timeout ([WithCloseTimeout]; retries keep
// their backoff), fails what is left with [ErrClosed], and releases
// connections. It returns an [*UndeliveredError] counting every message that
// failed while closing (each was also reported to its caller or callback),
// and those that failed earlier without anyone being told (asynchronous
// sends without a delivery handler) and that no Flush counted. Close is
// idempotent.
func (p *Producer[T]) Close() error {
	p.closeOnce.Do(func() {
		c := p.startCount()
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.closeTimeout)
		err := p.engine.Close(ctx)
		cancel()
		if err != nil {
			p.log.Warn("close timeout: failed undelivered messages", zap.Duration("timeout", p.cfg.closeTimeout))
		}
		_ = p.pool.Close()
		p.closeErr = p.undelivered(c)
	})
	return p.closeErr
}

// failCount is where a Flush or Close starts counting failures: the
// failures so far, and how many of them nobody was told about.
type failCount struct {
	failed, unheard int64
}

func (p *Producer[T]) startCount() failCount {
	p.failMu.Lock()
	defer p.failMu.Unlock()
	return failCount{failed: p.failed.Load(), unheard: p.unheard}
}

// undelivered returns the error of a Flush or Close that started counting
// at c and waited successfully, or nil if nothing failed: the failures
// since c, and those before c that nobody was told about and no Flush or
// Close counted yet. A Flush that ends with its context's error counts
// nothing, so what it would have counted is left to the next.
func (p *Producer[T]) undelivered(c failCount) error {
	p.failMu.Lock()
	n := p.failed.Load() - c.failed + max(0, c.unheard-p.heard)
	p.heard = max(p.heard, p.unheard) // those since c are in failed's count
	p.failMu.Unlock()
	if n == 0 {
		return nil
	}
	return &UndeliveredError{Count: int(n), Last: p.lastError()}
}

func (p *Producer[T]) lastError() error {
	if b := p.lastErr.Load(); b != nil {
		return b.err
	}
	return nil
}

// ----- records -----

// record is a message on its way: the engine's record (bytes, and the
// message's topic, key, headers and time) and the typed value it came from.
// The message is rebuilt when its outcome is reported rather than kept
// whole: copying a Message[T] into the record cost a write barrier per
// pointer on the sending goroutine, and made the record larger for the GC
// to scan (576 bytes against 384 for the benchmark's event).
type record[T any] struct {
	rec    produce.Record
	value  T
	done   func(Message[T], error)
	waiter *waiter
	err    error
	rare   *rareFields // nil for most messages
}

// rareFields are what few records have: an observer's context, and the
// fields of a sent message that the producer does not use but gives back.
type rareFields struct {
	obsCtx    context.Context // set only with an observer
	started   time.Time
	raw       []byte
	hwm       int64
	tsType    TimestampType
	tombstone bool
}

// message is the message as sent, with its partition, offset and time.
func (r *record[T]) message() Message[T] {
	m := Message[T]{
		Topic:     r.rec.Topic,
		Partition: int(r.rec.Partition),
		Offset:    r.rec.Offset,
		Key:       r.rec.Key,
		Value:     r.value,
		Headers:   r.rec.Headers,
		Time:      r.rec.Time,
	}
	if x := r.rare; x != nil {
		m.TimestampType, m.Tombstone, m.HighWaterMark, m.Raw = x.tsType, x.tombstone, x.hwm, x.raw
	}
	return m
}

func (r *record[T]) result() Result {
	t := r.rec.LogAppendTime
	if t.IsZero() {
		t = r.rec.Time
	}
	return Result{Topic: r.rec.Topic, Partition: int(r.rec.Partition), Offset: r.rec.Offset, Time: t}
}

type waiter struct {
	n  atomic.Int32
	ch chan struct{}
}

func newWaiter(n int32) *waiter {
	w := &waiter{ch: make(chan struct{})}
	w.n.Store(n)
	return w
}

func (w *waiter) finish() {
	if w.n.Add(-1) == 0 {
		close(w.ch)
	}
}

func (p *Producer[T]) topicOf(msg *Message[T]) string {
	if msg.Topic != "" {
		return msg.Topic
	}
	return p.topic
}

func (p *Producer[T]) newRecord(ctx context.Context, msg *Message[T]) (*record[T], error) {
	r := &record[T]{value: msg.Value}
	var value []byte
	if !msg.Tombstone {
		var err error
		if value, err = p.encode(&r.value); err != nil {
			return nil, fmt.Errorf("mq: encode: %w", err)
		}
	}
	topic := p.topicOf(msg)
	headers := msg.Headers
	if msg.Raw != nil || msg.HighWaterMark != 0 || msg.TimestampType != 0 || msg.Tombstone {
		r.rare = &rareFields{raw: msg.Raw, hwm: msg.HighWaterMark, tsType: msg.TimestampType, tombstone: msg.Tombstone}
	}
	if o := p.cfg.observer; o != nil {
		if r.rare == nil {
			r.rare = &rareFields{}
		}
		r.rare.started = time.Now()
		r.rare.obsCtx, headers = o.SendStarted(ctx, topic, headers)
	}
	// A zero Time is stamped by the engine when it buffers the record, and
	// given back with the message when its outcome is reported.
	// Field by field: r is new and zeroed, and a composite literal would be
	// built aside and copied in whole.
	r.rec.Topic = topic
	r.rec.Key = msg.Key
	r.rec.Value = value
	r.rec.Headers = headers
	r.rec.Time = msg.Time
	r.rec.Offset = -1
	r.rec.Opaque = r
	if p.cfg.manualPartitions {
		r.rec.Partition = int32(msg.Partition)
	}
	if err := p.engine.Check(&r.rec); err != nil {
		p.abandon(r, err)
		return nil, err
	}
	return r, nil
}

// encode encodes *v with the producer's codec. The default JSON codec
// marshals *v through the pointer when that gives the same bytes: v is the
// record's copy, already on the heap, and passing the value would box it
// again.
func (p *Producer[T]) encode(v *T) ([]byte, error) {
	if p.jsonPtr {
		return json.Marshal(v)
	}
	return p.codec.Encode(*v)
}

func (p *Producer[T]) enqueue(ctx context.Context, r *record[T], urgent bool) error {
	if err := p.engine.Produce(ctx, &r.rec, urgent); err != nil {
		p.abandon(r, err)
		return err
	}
	p.sent.Add(1)
	return nil
}

// abandon tells the observer about a record that never entered the buffer.
func (p *Producer[T]) abandon(r *record[T], err error) {
	if o := p.cfg.observer; o != nil && r.rare != nil && r.rare.obsCtx != nil {
		o.SendFinished(r.rare.obsCtx, r.rec.Topic, -1, -1, time.Since(r.rare.started), err)
	}
}

// complete reports one record's outcome; the engine calls it exactly once
// per buffered record, after counting it out of Buffered and before freeing
// its buffer slot. A synchronous sender is woken after the counters are
// updated (Stats read when Send returns are settled); a callback runs
// before the engine counts the record out of a Flush, so that Flush returns
// only once every callback has run.
func (p *Producer[T]) complete(rec *produce.Record, err error) {
	r := rec.Opaque.(*record[T])
	err = authError(err)
	r.err = err
	if o := p.cfg.observer; o != nil && r.rare != nil && r.rare.obsCtx != nil {
		o.SendFinished(r.rare.obsCtx, rec.Topic, int(rec.Partition), rec.Offset, time.Since(r.rare.started), err)
	}
	if err == nil {
		p.delivered.Add(1)
	} else {
		p.failMu.Lock()
		p.failed.Add(1)
		p.lastErr.Store(&errBox{err})
		if r.waiter == nil && r.done == nil {
			p.unheard++
		}
		p.failMu.Unlock()
	}
	switch {
	case r.waiter != nil:
		r.waiter.finish()
	case r.done != nil:
		r.done(r.message(), err)
	case err != nil:
		p.log.Error("message not delivered", zap.String("to", rec.Topic), zap.Int32("partition", rec.Partition), zap.Error(err))
	}
}
