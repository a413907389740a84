package mq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"
	"github.com/segmentio/kafka-go/protocol/rawproduce"
	"go.uber.org/zap"
)

// Producer sends values of type T to one Kafka topic.
//
// Messages are batched per partition without waiting for a timer: a partition
// with no produce request in flight sends at once, and messages that arrive
// while a request is in flight leave together in the next one. A lone
// synchronous send therefore takes one round trip, while many concurrent
// senders are batched. Each partition has at most one request in flight, so
// messages of a partition are written in the order they were sent — except
// after a request timed out: the broker may still apply it after its retry,
// which can reorder or duplicate those messages (kafka-go has no idempotent
// producer).
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
	stop    chan struct{} // closed when the sender may exit
	abort   context.Context
	cancel  context.CancelFunc

	rt         kafka.RoundTripper
	addr       net.Addr
	wake       chan struct{} // wakes the sender
	senderOnce sync.Once
	wg         sync.WaitGroup

	qmu    sync.Mutex // guards closed and queues
	closed bool
	queues map[int]*partQueue[T]

	pendMu  sync.Mutex
	pending int
	idle    chan struct{} // closed while pending == 0

	meta      atomic.Pointer[topicMeta]
	metaMu    sync.Mutex
	rr        atomic.Uint32
	sent      atomic.Int64
	delivered atomic.Int64
	failed    atomic.Int64
	lastErr   atomic.Pointer[errBox]

	closeOnce sync.Once
	closeErr  error
}

type topicMeta struct {
	partitions []int
	leaders    map[int]int // partition -> leader broker ID
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
		queues:     make(map[int]*partQueue[T]),
		wake:       make(chan struct{}, 1),
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
			TLS:            cfg.tls,
			SASL:           cfg.sasl,
		}
		p.transport = tr
	}
	p.addr = kafka.TCP(brokers...)
	p.rt = tr
	p.client = &kafka.Client{Addr: p.addr, Transport: tr, Timeout: cfg.writeTimeout}
	return p, nil
}

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
// a [*BatchError] whose Errors line up with msgs; the others were delivered.
// An encoding error sends nothing. In asynchronous mode it returns once all
// are buffered.
func (p *Producer[T]) SendMessages(ctx context.Context, msgs ...Message[T]) ([]Result, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	recs := make([]*record[T], len(msgs))
	for i := range msgs {
		r, err := p.newRecord(ctx, msgs[i])
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
		return nil, nil
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
		p.qmu.Lock()
		p.closed = true
		p.qmu.Unlock()
		p.signal()

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
	p.qmu.Lock()
	for _, l := range p.queues {
		l.urgent = true
	}
	p.qmu.Unlock()
	p.signal()
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
	obsCtx   context.Context // set only with an observer
	started  time.Time
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

func (p *Producer[T]) newRecord(ctx context.Context, msg Message[T]) (*record[T], error) {
	value, err := p.codec.Encode(msg.Value)
	if err != nil {
		return nil, fmt.Errorf("mq: encode: %w", err)
	}
	var obsCtx context.Context
	var started time.Time
	if o := p.cfg.observer; o != nil {
		started = time.Now()
		obsCtx, msg.Headers = o.SendStarted(ctx, p.topic, msg.Headers)
	}
	size := len(msg.Key) + len(value) + recordOverhead
	for _, h := range msg.Headers {
		size += len(h.Key) + len(h.Value) + 8
	}
	if size > p.cfg.batchBytes {
		err := fmt.Errorf("mq: message of about %d bytes exceeds the batch bytes limit of %d", size, p.cfg.batchBytes)
		if obsCtx != nil {
			p.cfg.observer.SendFinished(obsCtx, p.topic, -1, -1, time.Since(started), err)
		}
		return nil, err
	}
	if msg.Time.IsZero() {
		msg.Time = time.Now()
	}
	msg.Topic = p.topic
	return &record[T]{msg: msg, value: value, size: size, offset: -1, obsCtx: obsCtx, started: started}, nil
}

func (p *Producer[T]) enqueue(ctx context.Context, r *record[T], urgent bool) error {
	err := p.enqueue1(ctx, r, urgent)
	if err != nil {
		p.abandon(r, err)
	}
	return err
}

// abandon tells the observer about a record that never entered the buffer.
func (p *Producer[T]) abandon(r *record[T], err error) {
	if o := p.cfg.observer; o != nil && r.obsCtx != nil {
		o.SendFinished(r.obsCtx, p.topic, -1, -1, time.Since(r.started), err)
	}
}

func (p *Producer[T]) enqueue1(ctx context.Context, r *record[T], urgent bool) error {
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

	p.qmu.Lock()
	if p.closed {
		p.qmu.Unlock()
		<-p.sem
		return ErrClosed
	}
	p.senderOnce.Do(func() { // under qmu and before closed: never races Close's Wait
		p.wg.Add(1)
		go p.sendLoop()
	})
	l, ok := p.queues[part]
	if !ok {
		l = &partQueue[T]{partition: part}
		p.queues[part] = l
	}
	p.addPending(1)
	p.sent.Add(1)
	if len(l.queue) == 0 {
		l.oldest = time.Now()
	}
	l.queue = append(l.queue, r)
	l.bytes += r.size
	if urgent {
		l.urgent = true
	}
	p.qmu.Unlock()
	p.signal()
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
	r.err = err
	if o := p.cfg.observer; o != nil && r.obsCtx != nil {
		o.SendFinished(r.obsCtx, p.topic, r.msg.Partition, r.offset, time.Since(r.started), err)
	}
	if err == nil {
		p.delivered.Add(1)
	} else {
		p.failed.Add(1)
		p.lastErr.Store(&errBox{err})
	}
	// Count it out before freeing its slot, so that Buffered never exceeds
	// the bound while another sender takes the slot. A synchronous sender is
	// told after the count (Stats read when Send returns no longer show the
	// message as buffered); a callback runs before it, so that Flush returns
	// only once every callback has run.
	switch {
	case r.waiter != nil:
		p.addPending(-1)
		r.waiter.finish()
	case r.done != nil:
		msg := r.msg
		msg.Offset = r.offset
		r.done(msg, err)
		p.addPending(-1)
	default:
		if err != nil {
			p.log.Error("message not delivered", zap.Int("partition", r.msg.Partition), zap.Error(err))
		}
		p.addPending(-1)
	}
	<-p.sem
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
		parts, leaders, err := p.fetchPartitions(ctx)
		if err == nil {
			p.meta.Store(&topicMeta{partitions: parts, leaders: leaders, expires: time.Now().Add(time.Second)})
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
	if errors.Is(authError(lastErr), ErrAuthentication) {
		return nil, fmt.Errorf("mq: metadata for topic %q: %w", p.topic, authError(lastErr))
	}
	if errors.Is(lastErr, kafka.UnknownTopicOrPartition) {
		return nil, fmt.Errorf("mq: topic %q does not exist (topics are never auto-created by mq): %w", p.topic, lastErr)
	}
	return nil, fmt.Errorf("mq: metadata for topic %q: %w", p.topic, lastErr)
}

func (p *Producer[T]) fetchPartitions(ctx context.Context) ([]int, map[int]int, error) {
	res, err := p.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{p.topic}})
	if err != nil {
		return nil, nil, err
	}
	for _, t := range res.Topics {
		if t.Name != p.topic {
			continue
		}
		if t.Error != nil {
			return nil, nil, t.Error
		}
		if len(t.Partitions) == 0 {
			return nil, nil, kafka.UnknownTopicOrPartition
		}
		parts := make([]int, len(t.Partitions))
		leaders := make(map[int]int, len(t.Partitions))
		for i := range parts {
			parts[i] = i
		}
		for _, tp := range t.Partitions {
			leaders[tp.ID] = tp.Leader.ID
		}
		return parts, leaders, nil
	}
	return nil, nil, kafka.UnknownTopicOrPartition
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
	return javaPartitioner.Balance(kafka.Message{Topic: p.topic, Key: key}, parts...), nil
}

// javaPartitioner hashes keys exactly like the Java client's default
// partitioner (murmur2, positive, modulo the partition count).
var javaPartitioner = kafka.Murmur2Balancer{}

// retriable reports whether a produce error may succeed when tried again.
func retriable(err error) bool {
	if errors.Is(authError(err), ErrAuthentication) {
		return false
	}
	var routing *produceAPI.Error // no topic, partition or leader in the cached layout
	if errors.As(err, &routing) {
		return true
	}
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

// ----- sending -----

// partQueue buffers the records of one partition. Queues are guarded by
// Producer.qmu; a queue never has more than one batch in flight, because a
// sending round completes before the next one takes new batches.
type partQueue[T any] struct {
	partition int
	queue     []*record[T]
	bytes     int
	urgent    bool
	oldest    time.Time
	retryAt   time.Time
	backoff   time.Duration
	single    int // records to send one per request (after MESSAGE_TOO_LARGE)
}

type partBatch[T any] struct {
	queue *partQueue[T]
	recs  []*record[T]
	size  int
}

func (p *Producer[T]) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// sendLoop runs sending rounds: it takes one batch from every partition that
// is ready, sends them in one produce request per leader broker (so many
// partitions share a round trip), and settles every record before the next
// round. Messages that arrive during a round form the next round's batches.
func (p *Producer[T]) sendLoop() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		batches, next, done := p.collect()
		if done {
			return
		}
		if len(batches) > 0 {
			p.sendRound(batches)
			continue
		}
		var tc <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			tc = timer.C
		}
		select {
		case <-p.wake:
		case <-tc:
		case <-p.stop:
		case <-p.closing:
		case <-p.abort.Done():
		}
		if tc != nil && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// collect takes the batches that should leave now. It returns the earliest
// time a lingering or backing-off partition becomes ready, and done once the
// producer is stopped and empty.
func (p *Producer[T]) collect() (batches []*partBatch[T], next time.Time, done bool) {
	var failed, expired []*record[T]
	p.qmu.Lock()
	now := time.Now()
	aborted := p.abort.Err() != nil
	closing := false
	select {
	case <-p.closing:
		closing = true
	default:
	}
	empty := true
	for _, l := range p.queues {
		n := len(l.queue)
		if n == 0 {
			l.urgent = false
			continue
		}
		empty = false
		if aborted {
			failed = append(failed, l.queue...)
			clear(l.queue)
			l.queue, l.bytes = l.queue[:0], 0
			continue
		}
		if now.Before(l.retryAt) && !closing {
			// Backing off: still fail, on time, what reached its delivery timeout.
			k := 0
			for k < n && now.After(l.queue[k].deadline) {
				expired = append(expired, l.queue[k])
				l.bytes -= l.queue[k].size
				k++
			}
			if k > 0 {
				rest := copy(l.queue, l.queue[k:])
				clear(l.queue[rest:])
				l.queue = l.queue[:rest]
			}
			next = earliest(next, l.retryAt)
			if len(l.queue) > 0 {
				next = earliest(next, l.queue[0].deadline)
			}
			continue
		}
		due := l.oldest.Add(p.cfg.batchTimeout)
		if !(l.urgent || closing || p.cfg.batchTimeout == 0 || n >= p.cfg.batchSize ||
			l.bytes >= p.cfg.batchBytes || !now.Before(due)) {
			next = earliest(next, due)
			continue
		}
		k, size := 0, 0
		limit := p.cfg.batchSize
		if l.single > 0 {
			limit = 1
			l.single--
		}
		for k < n && k < limit {
			s := l.queue[k].size
			if k > 0 && size+s > p.cfg.batchBytes {
				break
			}
			size += s
			k++
		}
		b := &partBatch[T]{queue: l, recs: make([]*record[T], k), size: size}
		copy(b.recs, l.queue[:k])
		rest := copy(l.queue, l.queue[k:])
		clear(l.queue[rest:])
		l.queue = l.queue[:rest]
		l.bytes -= size
		if rest > 0 {
			l.oldest = now
		}
		batches = append(batches, b)
	}
	if empty && !aborted {
		select {
		case <-p.stop:
			done = true
		default:
		}
	}
	if aborted && empty {
		select {
		case <-p.stop:
			done = true
		default:
		}
	}
	p.qmu.Unlock()
	for _, r := range failed {
		p.complete(r, ErrClosed)
	}
	for _, r := range expired {
		p.complete(r, p.timeoutError(r))
	}
	return batches, next, done
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// sendRound sends the batches, one request per leader broker in parallel, and
// settles them.
func (p *Producer[T]) sendRound(batches []*partBatch[T]) {
	leaders := p.leaders()
	groups := make(map[int][]*partBatch[T], 1)
	for _, b := range batches {
		id, ok := leaders[b.queue.partition]
		if !ok {
			id = -1 - b.queue.partition // unknown leader: send alone
		}
		groups[id] = append(groups[id], b)
	}
	if len(groups) == 1 {
		for _, g := range groups {
			p.produce(g)
		}
		return
	}
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Add(1)
		go func(g []*partBatch[T]) {
			defer wg.Done()
			p.produce(g)
		}(g)
	}
	wg.Wait()
}

func (p *Producer[T]) leaders() map[int]int {
	if m := p.meta.Load(); m != nil {
		return m.leaders
	}
	return nil
}

// produce sends one request holding the batches (all for one leader) and
// settles every record: delivered, failed, or put back for a retry.
func (p *Producer[T]) produce(group []*partBatch[T]) {
	now := time.Now()
	deadline := now.Add(p.cfg.writeTimeout)
	live := group[:0]
	for _, b := range group {
		recs := b.recs[:0]
		for _, r := range b.recs {
			if now.After(r.deadline) {
				p.complete(r, p.timeoutError(r))
				b.size -= r.size
				continue
			}
			if r.deadline.Before(deadline) {
				deadline = r.deadline
			}
			recs = append(recs, r)
		}
		b.recs = recs
		if len(recs) > 0 {
			live = append(live, b)
		}
	}
	if len(live) == 0 {
		return
	}
	bufs, err := p.encode(live, now)
	if err != nil { // cannot happen with validated options; fail, never drop
		for _, b := range live {
			for _, r := range b.recs {
				p.complete(r, err)
			}
		}
		return
	}
	parts := make([]rawproduce.RequestPartition, len(live))
	for i, b := range live {
		parts[i] = rawproduce.RequestPartition{
			Partition: int32(b.queue.partition),
			RecordSet: protocol.RawRecordSet{Reader: bytes.NewReader(bufs[i].out)},
		}
	}
	req := &rawproduce.Request{
		Acks:    int16(p.cfg.acks),
		Timeout: int32(p.cfg.writeTimeout / time.Millisecond),
		Topics:  []rawproduce.RequestTopic{{Topic: p.topic, Partitions: parts}},
	}
	ctx, cancel := context.WithDeadline(p.abort, deadline)
	resp, err := p.rt.RoundTrip(ctx, p.addr, req)
	cancel()
	if err != nil {
		// The transport may still be writing the request: the buffers are
		// left to the garbage collector, not reused.
		for _, b := range live {
			p.failOrRetry(b, err)
		}
		return
	}
	for _, b := range bufs {
		if cap(b.out) <= maxPooledBatch && cap(b.recs) <= maxPooledBatch {
			encBufs.Put(b)
		}
	}
	if p.cfg.acks == AcksNone {
		for _, b := range live {
			p.succeed(b, -1, 0)
		}
		return
	}
	res, ok := resp.(*produceAPI.Response)
	if !ok {
		for _, b := range live {
			p.failOrRetry(b, fmt.Errorf("mq: unexpected produce response %T", resp))
		}
		return
	}
	byPart := make(map[int32]*produceAPI.ResponsePartition, len(live))
	for i := range res.Topics {
		for j := range res.Topics[i].Partitions {
			rp := &res.Topics[i].Partitions[j]
			byPart[rp.Partition] = rp
		}
	}
	for _, b := range live {
		rp, ok := byPart[int32(b.queue.partition)]
		switch {
		case !ok:
			p.failOrRetry(b, fmt.Errorf("mq: no produce response for partition %d", b.queue.partition))
		case rp.ErrorCode != 0 && len(rp.RecordErrors) > 0:
			kerr := kafka.Error(rp.ErrorCode)
			rejected := make(map[int32]string, len(rp.RecordErrors))
			for _, re := range rp.RecordErrors {
				rejected[re.BatchIndex] = re.BatchIndexErrorMessage
			}
			for i, r := range b.recs {
				if msg, bad := rejected[int32(i)]; bad {
					p.complete(r, fmt.Errorf("mq: produce to %s[%d]: record rejected: %w: %s", p.topic, b.queue.partition, kerr, msg))
				} else {
					p.complete(r, fmt.Errorf("mq: produce to %s[%d]: batch rejected because of another record: %w", p.topic, b.queue.partition, kerr))
				}
			}
		case rp.ErrorCode == int16(kafka.MessageSizeTooLarge) && len(b.recs) > 1:
			// One record is too large for the broker: send the batch's
			// records one by one so that only the culprit fails.
			p.requeue(b, len(b.recs), 0)
		case rp.ErrorCode != 0:
			err := error(kafka.Error(rp.ErrorCode))
			if rp.ErrorMessage != "" {
				err = fmt.Errorf("%w: %s", err, rp.ErrorMessage)
			}
			p.failOrRetry(b, err)
		default:
			p.succeed(b, rp.BaseOffset, rp.LogAppendTime)
		}
	}
}

func (p *Producer[T]) timeoutError(r *record[T]) error {
	err := fmt.Errorf("mq: delivery timeout after %v to %s[%d]", p.cfg.deliveryTimeout, p.topic, r.msg.Partition)
	if r.err != nil {
		err = fmt.Errorf("%w: last error: %w", err, r.err)
	}
	return err
}

func (p *Producer[T]) succeed(b *partBatch[T], base int64, logAppendMs int64) {
	var logTime time.Time
	if logAppendMs > 0 {
		logTime = time.UnixMilli(logAppendMs)
	}
	p.qmu.Lock()
	b.queue.backoff = 0
	p.qmu.Unlock()
	for i, r := range b.recs {
		if base >= 0 {
			r.offset = base + int64(i)
		}
		r.logTime = logTime
		p.complete(r, nil)
	}
}

// failOrRetry puts a failed batch back at the head of its partition for a
// retry after a backoff, or fails its records when the error is permanent or
// the producer is aborting.
func (p *Producer[T]) failOrRetry(b *partBatch[T], err error) {
	if p.abort.Err() != nil {
		for _, r := range b.recs {
			p.complete(r, fmt.Errorf("%w: message not delivered before close: %w", ErrClosed, err))
		}
		return
	}
	if !retriable(err) {
		err = authError(err)
		for _, r := range b.recs {
			p.complete(r, fmt.Errorf("mq: produce to %s[%d]: %w", p.topic, b.queue.partition, err))
		}
		return
	}
	p.meta.Store(nil) // leaders may have moved
	p.log.Debug("retrying produce", zap.Int("partition", b.queue.partition), zap.Error(err))
	for _, r := range b.recs {
		r.err = err // remembered for a later delivery timeout message
	}
	p.qmu.Lock()
	l := b.queue
	if l.backoff == 0 {
		l.backoff = p.cfg.retryBackoff
	} else {
		l.backoff = min(l.backoff*2, time.Second)
	}
	backoff := l.backoff
	p.qmu.Unlock()
	p.requeue(b, 0, backoff)
}

// requeue puts a batch back at the head of its partition, to be sent after
// backoff; single > 0 makes the next single records leave one per request.
func (p *Producer[T]) requeue(b *partBatch[T], single int, backoff time.Duration) {
	p.qmu.Lock()
	l := b.queue
	l.retryAt = time.Now().Add(backoff)
	l.queue = append(b.recs, l.queue...)
	l.bytes += b.size
	if single > l.single {
		l.single = single
	}
	p.qmu.Unlock()
	p.signal()
}

// maxPooledBatch bounds the encode buffers kept for reuse.
const maxPooledBatch = 4 << 20

// encode encodes the batches of one request, in parallel when they are large
// enough for compression to be worth spreading over the CPUs.
func (p *Producer[T]) encode(live []*partBatch[T], now time.Time) ([]*encBuf, error) {
	bufs := make([]*encBuf, len(live))
	for i := range bufs {
		bufs[i] = encBufs.Get().(*encBuf)
	}
	total := 0
	for _, b := range live {
		total += b.size
	}
	workers := min(runtime.GOMAXPROCS(0), len(live), max(1, total/parallelEncodeBytes))
	if workers <= 1 {
		for i, b := range live {
			if err := encodeBatch(bufs[i], b.recs, p.cfg.compression, now); err != nil {
				return nil, err
			}
		}
		return bufs, nil
	}
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(live) {
					return
				}
				if err := encodeBatch(bufs[i], live[i].recs, p.cfg.compression, now); err != nil {
					errs[w] = err
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return bufs, nil
}

// parallelEncodeBytes is the request size from which each additional
// goroutine encodes a share of the batches.
const parallelEncodeBytes = 64 << 10
