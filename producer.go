package mq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqkit/mq/internal/partition"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Producer sends values of type T to one Kafka topic.
//
// Messages are batched per partition without waiting for a timer: a partition
// with no produce request in flight sends at once, and messages that arrive
// while a request is in flight leave together in the next one. A lone
// synchronous send therefore takes one round trip, while many concurrent
// senders are batched. Each partition has at most one request in flight, so
// messages of a partition are written in the order they were sent.
//
// Every buffered message reports its outcome exactly once: to the synchronous
// caller, to the callback of [Producer.SendAsync], or, in asynchronous mode
// ([WithAsync]), to the handler set with [WithDeliveryHandler]. Retriable
// errors are retried until [WithDeliveryTimeout]; a retry after a lost response
// can write a message twice (kafka-go has no idempotent producer).
//
// Producer is safe for concurrent use. Call Close to deliver buffered
// messages and release connections.
type Producer[T any] struct {
	cfg        producerConfig
	topic      string
	codec      Codec[T]
	log        *zap.Logger
	client     *kafka.Client
	transport  *kafka.Transport // owned by the producer, or nil
	onDelivery func(Message[T], error)

	sem     chan struct{} // one slot per buffered message
	closing chan struct{} // closed when Close starts
	stop    chan struct{} // closed when lanes may exit
	abort   context.Context
	cancel  context.CancelFunc

	mu     sync.RWMutex
	closed bool
	lanes  map[int]*lane[T]
	wg     sync.WaitGroup

	pendMu  sync.Mutex
	pending int
	idle    chan struct{} // closed while pending == 0

	meta    atomic.Pointer[topicMeta]
	metaMu  sync.Mutex
	rr      atomic.Uint32
	failed  atomic.Int64
	lastErr atomic.Pointer[errBox]

	closeOnce sync.Once
	closeErr  error
}

type topicMeta struct {
	partitions []int
	expires    time.Time
}

type errBox struct{ err error }

// NewProducer returns a producer of T values for topic. It connects lazily:
// brokers are first contacted by the first send. It returns an error wrapping
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
		sem:        make(chan struct{}, cfg.maxBuffered),
		closing:    make(chan struct{}),
		stop:       make(chan struct{}),
		lanes:      make(map[int]*lane[T]),
		idle:       make(chan struct{}),
	}
	close(p.idle)
	p.abort, p.cancel = context.WithCancel(context.Background())
	tr := cfg.transport
	if tr == nil {
		tr = &kafka.Transport{
			Dial:           (&net.Dialer{Timeout: cfg.dialTimeout}).DialContext,
			DialTimeout:    cfg.dialTimeout,
			ClientID:       cfg.clientID,
			MetadataTTL:    2 * time.Second,
			MetadataTopics: []string{topic},
		}
		p.transport = tr
	}
	p.client = &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr, Timeout: cfg.writeTimeout}
	return p, nil
}

func validateBrokers(brokers []string) error {
	if len(brokers) == 0 {
		return invalid("no brokers given")
	}
	for _, b := range brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return invalid("broker address %q: %v", b, err)
		}
	}
	return nil
}

// Topic returns the topic the producer writes to.
func (p *Producer[T]) Topic() string { return p.topic }

// Send encodes value and sends it with key and headers. Synchronously (the
// default) it returns once the broker acknowledged the message, as
// [WithRequiredAcks] asks, or failed. In asynchronous mode ([WithAsync]) it
// returns once the message is buffered, with a Result whose Partition and
// Offset are -1, and the outcome goes to the delivery handler.
//
// If ctx ends first, Send returns ctx.Err() but the message may still be
// delivered. Send blocks while the buffer is full ([WithMaxBufferedRecords]).
// After Close it returns [ErrClosed].
func (p *Producer[T]) Send(ctx context.Context, key []byte, value T, headers ...Header) (Result, error) {
	return p.SendMessage(ctx, Message[T]{Key: key, Value: value, Headers: headers})
}

// SendMessage is [Producer.Send] for a whole message (key, value, headers and
// time). The message's Topic, Partition and Offset are ignored.
func (p *Producer[T]) SendMessage(ctx context.Context, msg Message[T]) (Result, error) {
	if p.cfg.async {
		if err := p.SendAsync(ctx, msg, nil); err != nil {
			return Result{}, err
		}
		return Result{Topic: p.topic, Partition: -1, Offset: -1}, nil
	}
	r, err := p.newRecord(msg)
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
// a [*BatchError] whose Errors line up with msgs; the others were delivered.
// An encoding error sends nothing. In asynchronous mode it returns once all
// are buffered.
func (p *Producer[T]) SendMessages(ctx context.Context, msgs ...Message[T]) ([]Result, error) {
	recs := make([]*record[T], len(msgs))
	for i := range msgs {
		r, err := p.newRecord(msgs[i])
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		recs[i] = r
	}
	if p.cfg.async {
		for i, r := range recs {
			r.done = p.onDelivery
			if err := p.enqueue(ctx, r, false); err != nil {
				return nil, fmt.Errorf("message %d (and later ones) not sent: %w", i, err)
			}
		}
		return nil, nil
	}
	w := newWaiter(int32(len(recs)))
	for i, r := range recs {
		r.waiter = w
		if err := p.enqueue(ctx, r, true); err != nil {
			// Those already buffered will still be sent; say which were not.
			for j := i; j < len(recs); j++ {
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
			continue
		}
		results[i] = r.result()
	}
	if errs != nil {
		return results, &BatchError{Errors: errs}
	}
	return results, nil
}

// SendAsync buffers msg and returns without waiting for the broker. If it
// returns nil, done is called exactly once with the outcome: the message with
// Topic, Partition and Offset filled in and a nil error, or the delivery
// error. A nil done reports to the producer's delivery handler
// ([WithDeliveryHandler]) or, without one, logs failures. If SendAsync returns
// an error (encoding, ctx ended while the buffer was full, closed), the
// message was not buffered and done is not called.
//
// done runs on the partition's sender goroutine: keep it fast and do not call
// blocking sends from it.
func (p *Producer[T]) SendAsync(ctx context.Context, msg Message[T], done func(Message[T], error)) error {
	r, err := p.newRecord(msg)
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
// waits until all messages buffered so far have an outcome, or ctx ends. It
// returns an [*UndeliveredError] when messages failed meanwhile.
func (p *Producer[T]) Flush(ctx context.Context) error {
	before := p.failed.Load()
	if err := p.flush(ctx); err != nil {
		return err
	}
	if n := p.failed.Load() - before; n > 0 {
		return &UndeliveredError{Count: int(n), Last: p.lastError()}
	}
	return nil
}

// Close stops accepting messages (later sends return [ErrClosed]), delivers
// what is buffered within the close timeout ([WithCloseTimeout]), fails what
// is left with [ErrClosed], and releases connections. It returns an
// [*UndeliveredError] counting every message that failed while closing; each
// was also reported to its caller or callback. Close is idempotent.
func (p *Producer[T]) Close() error {
	p.closeOnce.Do(func() {
		before := p.failed.Load()
		close(p.closing)
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.closeTimeout)
		err := p.flush(ctx)
		cancel()
		if err != nil {
			p.log.Warn("close timeout: failing undelivered messages", zap.Duration("timeout", p.cfg.closeTimeout))
		}
		p.cancel() // fails whatever is still buffered or in flight
		close(p.stop)
		p.wg.Wait()
		if p.transport != nil {
			p.transport.CloseIdleConnections()
		}
		if n := p.failed.Load() - before; n > 0 {
			p.closeErr = &UndeliveredError{Count: int(n), Last: p.lastError()}
		}
	})
	return p.closeErr
}

func (p *Producer[T]) flush(ctx context.Context) error {
	p.mu.RLock()
	for _, l := range p.lanes {
		l.setUrgent()
	}
	p.mu.RUnlock()
	p.pendMu.Lock()
	idle := p.idle
	p.pendMu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Producer[T]) lastError() error {
	if b := p.lastErr.Load(); b != nil {
		return b.err
	}
	return nil
}

// ----- records -----

type record[T any] struct {
	msg      Message[T]
	value    []byte
	size     int
	deadline time.Time
	done     func(Message[T], error)
	waiter   *waiter
	err      error
	offset   int64
	logTime  time.Time
}

func (r *record[T]) result() Result {
	t := r.logTime
	if t.IsZero() {
		t = r.msg.Time
	}
	return Result{Topic: r.msg.Topic, Partition: r.msg.Partition, Offset: r.offset, Time: t}
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

// recordOverhead approximates the per-record framing of the v2 format.
const recordOverhead = 70

func (p *Producer[T]) newRecord(msg Message[T]) (*record[T], error) {
	value, err := p.codec.Encode(msg.Value)
	if err != nil {
		return nil, fmt.Errorf("mq: encode: %w", err)
	}
	size := len(msg.Key) + len(value) + recordOverhead
	for _, h := range msg.Headers {
		size += len(h.Key) + len(h.Value) + 8
	}
	if size > p.cfg.batchBytes {
		return nil, fmt.Errorf("mq: message of about %d bytes exceeds the batch bytes limit of %d", size, p.cfg.batchBytes)
	}
	if msg.Time.IsZero() {
		msg.Time = time.Now()
	}
	msg.Topic = p.topic
	return &record[T]{msg: msg, value: value, size: size, offset: -1}, nil
}

func (p *Producer[T]) enqueue(ctx context.Context, r *record[T], urgent bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-p.closing:
		return ErrClosed
	default:
	}
	part, err := p.pick(ctx, r.msg.Key)
	if err != nil {
		return err
	}
	r.msg.Partition = part
	select {
	case p.sem <- struct{}{}:
	default:
		select {
		case p.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.closing:
			return ErrClosed
		}
	}
	r.deadline = time.Now().Add(p.cfg.deliveryTimeout)

	p.mu.RLock()
	l, ok := p.lanes[part]
	if !ok && !p.closed {
		p.mu.RUnlock()
		p.mu.Lock()
		if l, ok = p.lanes[part]; !ok && !p.closed {
			l = &lane[T]{p: p, partition: part, wake: make(chan struct{}, 1)}
			p.lanes[part] = l
			p.wg.Add(1)
			go l.run()
		}
		p.mu.Unlock()
		p.mu.RLock()
	}
	if p.closed {
		p.mu.RUnlock()
		<-p.sem
		return ErrClosed
	}
	p.addPending(1)
	l.push(r, urgent)
	p.mu.RUnlock()
	return nil
}

func (p *Producer[T]) addPending(n int) {
	p.pendMu.Lock()
	if p.pending == 0 && n > 0 {
		p.idle = make(chan struct{})
	}
	p.pending += n
	if p.pending == 0 {
		close(p.idle)
	}
	p.pendMu.Unlock()
}

// complete reports one record's outcome, exactly once.
func (p *Producer[T]) complete(r *record[T], err error) {
	if err != nil {
		r.err = err
		p.failed.Add(1)
		p.lastErr.Store(&errBox{err})
	}
	switch {
	case r.waiter != nil:
		r.waiter.finish()
	case r.done != nil:
		msg := r.msg
		msg.Offset = r.offset
		r.done(msg, err)
	case err != nil:
		p.log.Error("message not delivered", zap.Int("partition", r.msg.Partition), zap.Error(err))
	}
	<-p.sem
	p.addPending(-1)
}

// ----- partitioning -----

func (p *Producer[T]) partitions(ctx context.Context) ([]int, error) {
	if m := p.meta.Load(); m != nil && time.Now().Before(m.expires) {
		return m.partitions, nil
	}
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	if m := p.meta.Load(); m != nil && time.Now().Before(m.expires) {
		return m.partitions, nil
	}
	deadline := time.Now().Add(min(p.cfg.deliveryTimeout, 10*time.Second))
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var lastErr error
	for wait := 50 * time.Millisecond; ; wait = min(wait*2, time.Second) {
		parts, err := p.fetchPartitions(ctx)
		if err == nil {
			p.meta.Store(&topicMeta{partitions: parts, expires: time.Now().Add(time.Second)})
			return parts, nil
		}
		lastErr = err
		if !retriable(err) {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			continue
		case <-ctx.Done():
			t.Stop()
		case <-p.closing:
			t.Stop()
			return nil, ErrClosed
		}
		break
	}
	if m := p.meta.Load(); m != nil {
		// Keep using the last known layout rather than failing sends.
		return m.partitions, nil
	}
	if errors.Is(lastErr, kafka.UnknownTopicOrPartition) {
		return nil, fmt.Errorf("mq: topic %q does not exist (topics are never auto-created by mq): %w", p.topic, lastErr)
	}
	return nil, fmt.Errorf("mq: metadata for topic %q: %w", p.topic, lastErr)
}

func (p *Producer[T]) fetchPartitions(ctx context.Context) ([]int, error) {
	res, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{p.topic}})
	if err != nil {
		return nil, err
	}
	for _, t := range res.Topics {
		if t.Name != p.topic {
			continue
		}
		if t.Error != nil {
			return nil, t.Error
		}
		if len(t.Partitions) == 0 {
			return nil, kafka.UnknownTopicOrPartition
		}
		parts := make([]int, len(t.Partitions))
		for i := range parts {
			parts[i] = i
		}
		return parts, nil
	}
	return nil, kafka.UnknownTopicOrPartition
}

func (p *Producer[T]) pick(ctx context.Context, key []byte) (int, error) {
	parts, err := p.partitions(ctx)
	if err != nil {
		return 0, err
	}
	if b := p.cfg.balancer; b != nil {
		return b.Balance(kafka.Message{Topic: p.topic, Key: key}, parts...), nil
	}
	if key == nil {
		return int(p.rr.Add(1) % uint32(len(parts))), nil
	}
	return partition.ForKey(key, len(parts)), nil
}

// retriable reports whether a produce error may succeed when tried again.
func retriable(err error) bool {
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Temporary()
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// ----- per-partition lanes -----

// lane buffers the records of one partition and sends them, one request in
// flight at a time.
type lane[T any] struct {
	p         *Producer[T]
	partition int
	wake      chan struct{}

	mu     sync.Mutex
	queue  []*record[T]
	bytes  int
	urgent bool
	oldest time.Time
}

func (l *lane[T]) push(r *record[T], urgent bool) {
	l.mu.Lock()
	if len(l.queue) == 0 {
		l.oldest = time.Now()
	}
	l.queue = append(l.queue, r)
	l.bytes += r.size
	if urgent {
		l.urgent = true
	}
	l.mu.Unlock()
	l.signal()
}

func (l *lane[T]) setUrgent() {
	l.mu.Lock()
	l.urgent = true
	l.mu.Unlock()
	l.signal()
}

func (l *lane[T]) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *lane[T]) run() {
	p := l.p
	defer p.wg.Done()
	var batch []*record[T]
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		l.mu.Lock()
		n := len(l.queue)
		if n == 0 {
			l.urgent = false
			l.mu.Unlock()
			select {
			case <-l.wake:
				continue
			case <-p.stop:
				l.mu.Lock()
				empty := len(l.queue) == 0
				l.mu.Unlock()
				if empty {
					return
				}
				continue
			}
		}
		if p.abort.Err() != nil {
			batch = append(batch[:0], l.queue...)
			clear(l.queue)
			l.queue = l.queue[:0]
			l.bytes = 0
			l.mu.Unlock()
			for _, r := range batch {
				p.complete(r, ErrClosed)
			}
			clear(batch)
			continue
		}
		if !l.ready(n) {
			wait := time.Until(l.oldest.Add(p.cfg.batchTimeout))
			l.mu.Unlock()
			if wait > 0 {
				timer.Reset(wait)
				select {
				case <-l.wake:
				case <-timer.C:
				case <-p.closing:
				case <-p.abort.Done():
				}
				if !timer.Stop() {
					select {
					case <-timer.C:
					default:
					}
				}
				continue
			}
			l.mu.Lock()
		}
		// Take one batch: up to batch size records and batch bytes.
		k, size := 0, 0
		for k < len(l.queue) && k < p.cfg.batchSize {
			s := l.queue[k].size
			if k > 0 && size+s > p.cfg.batchBytes {
				break
			}
			size += s
			k++
		}
		batch = append(batch[:0], l.queue[:k]...)
		rest := copy(l.queue, l.queue[k:])
		clear(l.queue[rest:])
		l.queue = l.queue[:rest]
		l.bytes -= size
		if rest > 0 {
			l.oldest = time.Now()
		}
		l.mu.Unlock()

		l.send(batch)
		clear(batch)
	}
}

// ready reports whether the queued records should leave now. Called with l.mu held.
func (l *lane[T]) ready(n int) bool {
	p := l.p
	if l.urgent || p.cfg.batchTimeout == 0 || n >= p.cfg.batchSize || l.bytes >= p.cfg.batchBytes {
		return true
	}
	select {
	case <-p.closing:
		return true
	default:
	}
	return !time.Now().Before(l.oldest.Add(p.cfg.batchTimeout))
}

func (l *lane[T]) send(batch []*record[T]) {
	p := l.p
	backoff := p.cfg.retryBackoff
	var lastErr error
	for {
		// Fail records whose delivery timeout passed.
		now := time.Now()
		live := batch[:0]
		for _, r := range batch {
			if now.After(r.deadline) {
				err := fmt.Errorf("mq: delivery timeout after %v to %s[%d]", p.cfg.deliveryTimeout, p.topic, l.partition)
				if lastErr != nil {
					err = fmt.Errorf("%w: %w", err, lastErr)
				}
				p.complete(r, err)
				continue
			}
			live = append(live, r)
		}
		batch = live
		if len(batch) == 0 {
			return
		}
		deadline := now.Add(p.cfg.writeTimeout)
		for _, r := range batch {
			if r.deadline.Before(deadline) {
				deadline = r.deadline
			}
		}
		ctx, cancel := context.WithDeadline(p.abort, deadline)
		res, err := p.client.Produce(ctx, &kafka.ProduceRequest{
			Topic:        p.topic,
			Partition:    l.partition,
			RequiredAcks: kafka.RequiredAcks(p.cfg.acks),
			Compression:  p.cfg.compression.kafka(),
			Records:      &recordReader[T]{recs: batch},
		})
		cancel()
		if err == nil && res != nil && res.Error != nil {
			err = res.Error
		}
		if err == nil {
			l.succeed(batch, res)
			return
		}
		if p.abort.Err() != nil {
			for _, r := range batch {
				p.complete(r, fmt.Errorf("%w: message not delivered before close: %w", ErrClosed, err))
			}
			return
		}
		if res != nil && len(res.RecordErrors) > 0 {
			for i, r := range batch {
				if rerr, ok := res.RecordErrors[i]; ok {
					p.complete(r, fmt.Errorf("mq: produce to %s[%d]: record rejected: %w", p.topic, l.partition, rerr))
				} else {
					p.complete(r, fmt.Errorf("mq: produce to %s[%d]: batch rejected because of another record: %w", p.topic, l.partition, err))
				}
			}
			return
		}
		if !retriable(err) {
			for _, r := range batch {
				p.complete(r, fmt.Errorf("mq: produce to %s[%d]: %w", p.topic, l.partition, err))
			}
			return
		}
		lastErr = err
		p.log.Debug("retrying produce", zap.Int("partition", l.partition), zap.Error(err))
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-p.abort.Done():
			t.Stop()
		}
		backoff = min(backoff*2, time.Second)
	}
}

func (l *lane[T]) succeed(batch []*record[T], res *kafka.ProduceResponse) {
	p := l.p
	base := int64(-1)
	var logTime time.Time
	if res != nil {
		base = res.BaseOffset
		logTime = res.LogAppendTime
		if logTime.Unix() <= 0 {
			logTime = time.Time{}
		}
	}
	for i, r := range batch {
		if base >= 0 {
			r.offset = base + int64(i)
		}
		r.logTime = logTime
		p.complete(r, nil)
	}
}

// recordReader feeds a batch to kafka-go's produce request without copying.
type recordReader[T any] struct {
	recs  []*record[T]
	i     int
	rec   kafka.Record
	key   bytesReadCloser
	value bytesReadCloser
}

func (rr *recordReader[T]) ReadRecord() (*kafka.Record, error) {
	if rr.i >= len(rr.recs) {
		return nil, io.EOF
	}
	r := rr.recs[rr.i]
	rr.i++
	rr.rec = kafka.Record{Time: r.msg.Time, Headers: r.msg.Headers}
	if r.msg.Key != nil {
		rr.key.Reset(r.msg.Key)
		rr.rec.Key = &rr.key
	}
	if r.value != nil {
		rr.value.Reset(r.value)
		rr.rec.Value = &rr.value
	}
	return &rr.rec, nil
}

type bytesReadCloser struct{ bytes.Reader }

func (*bytesReadCloser) Close() error { return nil }
