package mq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqkit/mq/internal/fetch"
	"github.com/mqkit/mq/internal/group"
	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// KafkaConsumer consumes one topic (or several, see [WithTopics]) as a
// member of a consumer group and passes every message, decoded into T, to
// each registered [Handler].
//
// Partitions are processed concurrently, each strictly in offset order. An
// offset is committed only after every handler succeeded for that message and
// for every earlier message of its partition. Commits are batched (see
// [WithCommitInterval]), always made when partitions are revoked and at
// shutdown, only through the group generation that owns the partition, and
// never move an offset backwards.
//
// A failing handler is retried with backoff ([WithRetryPolicy]) while its
// partition waits; when attempts run out, or a value cannot be decoded, the
// consumer stops and [KafkaConsumer.Run] returns a [*HandlerError] or
// [*DecodeError] naming the message, with nothing past it committed.
//
// Delivery is at-least-once: messages processed but not committed when a
// process crashes or loses its partitions are delivered again.
//
// Records are fetched by mq's own fetch engine: for each broker, one
// connection and one multi-partition Fetch request at a time for all the
// partitions it leads, into one buffer budget for the whole consumer
// ([WithFetchBufferBytes]). Transaction markers never reach handlers, and
// committed offsets move past them ([WithIsolationLevel]). Group membership
// is mq's own implementation of the classic consumer-group protocol, which
// Java members share (see [WithGroupProtocol], [WithGroupInstanceID]): it
// heartbeats for the member's whole life, including while revoked
// partitions drain, so the commit at revoke goes through.
type KafkaConsumer[T any] struct {
	cfg     consumerConfig
	brokers []string
	topic   string
	topics  []string // topic first, then those of WithTopics
	group   string
	codec   Codec[T]
	log     *zap.Logger

	consumerCounters
	parts   atomic.Pointer[[]*partitionState] // current generation, for Stats and Health
	joined  atomic.Bool
	missing atomic.Pointer[[]string]      // consumed topics found missing, while waiting for them
	fetcher atomic.Pointer[fetch.Fetcher] // while running, for Stats

	ctls partitionControls // pauses and seeks (pause.go)

	mu       sync.Mutex
	handlers []registeredHandler[T]
	running  bool
	closed   bool
	stopCh   chan struct{}
	stopOnce sync.Once
	doneCh   chan struct{}
}

// NewKafkaConsumer returns a consumer of T values from topic in consumer group
// group. It connects only when Run is called. It returns an error wrapping
// [ErrInvalidOption] for bad input, and never panics.
func NewKafkaConsumer[T any](brokers []string, topic, group string, opts ...ConsumerOption) (*KafkaConsumer[T], error) {
	cfg := defaultConsumerConfig()
	for _, o := range opts {
		if o != nil {
			o.applyConsumer(&cfg)
		}
	}
	if err := validateBrokers(brokers); err != nil {
		return nil, err
	}
	if topic == "" {
		return nil, invalid("topic must not be empty")
	}
	if group == "" {
		return nil, invalid("consumer group must not be empty")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	codec, err := resolveCodec[T](cfg.codec)
	if err != nil {
		return nil, err
	}
	topics := []string{topic}
	for _, t := range cfg.topics {
		if t == "" {
			return nil, invalid("topic must not be empty")
		}
		if !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	for _, t := range topics {
		for _, r := range cfg.recoverer.Topics(t) {
			if slices.Contains(topics, r) {
				return nil, invalid("topic %q is also a recovery topic of %q", r, t)
			}
		}
	}
	c := &KafkaConsumer[T]{
		cfg:     cfg,
		brokers: append([]string(nil), brokers...),
		topic:   topic,
		topics:  topics,
		group:   group,
		codec:   codec,
		log:     logger(cfg.logger).With(zap.String("group", group)),
		stopCh:  make(chan struct{}),
		doneCh:  make(chan struct{}),
	}
	c.wrapAssignedHook() // lets Seek be called from the assigned hook
	return c, nil
}

// Topic returns the topic given to [NewKafkaConsumer].
func (c *KafkaConsumer[T]) Topic() string { return c.topic }

// Topics returns every topic the consumer reads, retry topics aside: the
// one given to [NewKafkaConsumer], then those of [WithTopics].
func (c *KafkaConsumer[T]) Topics() []string { return slices.Clone(c.topics) }

// Group returns the consumer group.
func (c *KafkaConsumer[T]) Group() string { return c.group }

// RegisterHandler adds a handler. Every message is passed to every handler,
// in registration order. It returns [ErrNilHandler] for a nil handler,
// [ErrRunning] once Run has started, and an [ErrInvalidOption] error for a
// name already taken by another handler (names must be unique: retry topics
// record which handlers already succeeded by name).
func (c *KafkaConsumer[T]) RegisterHandler(h Handler[T], opts ...HandlerOption) error {
	if isNil(h) {
		return ErrNilHandler
	}
	return c.register(func(index int) (registeredHandler[T], error) {
		return newRegisteredHandler(index, h, c.cfg.retry, c.cfg.retryableIf, opts)
	})
}

// register adds the handler that build makes (given its index) while the
// consumer accepts handlers, unless another handler (per-message or batch)
// has its name.
func (c *KafkaConsumer[T]) register(build func(index int) (registeredHandler[T], error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return ErrRunning
	}
	if c.closed {
		return ErrClosed
	}
	rh, err := build(len(c.handlers))
	if err != nil {
		return err
	}
	for _, other := range c.handlers {
		if other.name == rh.name {
			return fmt.Errorf("handler %q: %w", rh.name, invalid("another handler has this name; give each a unique WithHandlerName"))
		}
	}
	c.handlers = append(c.handlers, rh)
	return nil
}

// RegisterHandlerFunc registers a function as a handler; it is
// RegisterHandler(HandlerFunc[T](fn), opts...) without spelling out T.
func (c *KafkaConsumer[T]) RegisterHandlerFunc(fn func(ctx context.Context, msg Message[T]) error, opts ...HandlerOption) error {
	if fn == nil {
		return ErrNilHandler
	}
	return c.RegisterHandler(HandlerFunc[T](fn), opts...)
}

// Run joins the group and consumes until ctx is cancelled, Close is called,
// or a message fails for good. It blocks and can be called once.
//
// On cancellation or Close it stops fetching, lets in-flight handlers finish
// (bounded by [WithShutdownTimeout]), commits what was processed, leaves the
// group, and returns nil — or the last join error if it never managed to join
// the group, or [ErrShutdownTimeout] if some handler did not finish in
// time, then or at an earlier rebalance that revoked its partition (its
// message stayed uncommitted and is delivered again, here or to another
// member; a warning is logged when it happens). When a handler exhausts its
// retries or a value cannot be decoded, it does the same for the other
// partitions and returns a [*HandlerError] or [*DecodeError].
//
// A consumed topic that does not exist makes Run wait for it (see
// [KafkaConsumer.Ready]), or, with [WithMissingTopicsFatal], return an error
// wrapping [ErrTopicNotFound]. A join the group refuses for good (no
// protocol in common with the other members, an invalid session timeout, a
// static member fenced by another with its instance ID, authorization)
// stops Run with that error.
func (c *KafkaConsumer[T]) Run(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.running:
		c.mu.Unlock()
		return ErrRunning
	case len(c.handlers) == 0:
		c.mu.Unlock()
		return ErrNoHandlers
	}
	c.running = true
	handlers := append([]registeredHandler[T](nil), c.handlers...)
	c.mu.Unlock()
	defer close(c.doneCh)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-c.stopCh:
			stop()
		case <-runCtx.Done():
		}
	}()

	dialer := c.cfg.dialer
	if dialer == nil {
		dialer = &kafka.Dialer{ClientID: c.cfg.clientID, Timeout: c.cfg.dialTimeout, DualStack: true,
			TLS: c.cfg.tls, SASLMechanism: c.cfg.sasl}
	}
	subs := subscriptions(c.topics, c.cfg.recoverer)
	topics := make([]string, len(subs))
	for i, sub := range subs {
		topics[i] = sub.topic
	}

	pool := wire.NewPool(c.cfg.wireDialer())
	defer func() { _ = pool.Close() }()
	client := wire.NewClient(pool, c.brokers)
	fetcher := fetch.New(fetch.Config{
		Network:           pool,
		Client:            client,
		Isolation:         fetch.IsolationLevel(c.cfg.isolation),
		MinBytes:          int32(c.cfg.minBytes),
		MaxWait:           c.cfg.maxWait,
		PartitionMaxBytes: int32(c.cfg.maxBytes),
		BufferBytes:       c.cfg.bufferBytes,
		Reset:             int64(c.cfg.startOffset), // StartEarliest/StartLatest are the engine's sentinels
		Logger:            c.log,
	})
	defer fetcher.Close()
	c.fetcher.Store(fetcher)
	defer c.fetcher.Store(nil)

	member, err := group.NewMembership(group.Config{
		Network:           pool,
		Client:            client,
		Group:             c.group,
		InstanceID:        c.cfg.instanceID,
		Rack:              c.cfg.rack,
		Topics:            topics,
		Assignors:         c.cfg.assignors(),
		SessionTimeout:    c.cfg.sessionTimeout,
		RebalanceTimeout:  c.cfg.rebalanceTimeout,
		HeartbeatInterval: c.cfg.heartbeatInterval,
		RequestTimeout:    c.cfg.commitTimeout,
		Logger:            c.log,
	})
	if err != nil {
		return fmt.Errorf("mq: consumer group %q: %w", c.group, err)
	}

	s := &session[T]{c: c, handlers: handlers, runCtx: runCtx, stop: stop, userCtx: ctx, dialer: dialer,
		fetcher: fetcher, subs: subs}
	defer s.closePublishers()
	if err := s.checkRecoveryTopics(runCtx); err != nil {
		_ = member.Close(context.Background())
		return err
	}
	s.runGroup(member, client)

	// Partitions are released and committed: now leave the group (a
	// static member stays, for its restart).
	leaveCtx, cancel := context.WithTimeout(context.Background(), c.cfg.commitTimeout+time.Second)
	if err := member.Close(leaveCtx); err != nil {
		c.log.Warn("leaving the group failed; the group rebalances after the session timeout", zap.Error(err))
	}
	cancel()
	c.setPartitions(nil)
	c.joined.Store(false)
	c.log.Info("consumer stopped")
	if err := s.fatalErr(); err != nil {
		return err
	}
	if !s.joinedOnce && s.lastJoinErr != nil {
		// Stopped without ever joining: say why rather than report success.
		return fmt.Errorf("mq: consumer group %q never joined: %w", c.group, s.lastJoinErr)
	}
	return nil
}

func (c *KafkaConsumer[T]) isRunning() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return false
	}
	select {
	case <-c.doneCh:
		return false
	default:
		return true
	}
}

// Close stops a running consumer as cancelling Run's context does, and waits
// for Run to return. It is idempotent; Run after Close returns [ErrClosed].
func (c *KafkaConsumer[T]) Close() error {
	c.stopOnce.Do(func() { close(c.stopCh) })
	c.mu.Lock()
	c.closed = true
	running := c.running
	c.mu.Unlock()
	if running {
		<-c.doneCh
	}
	return nil
}

// membershipChurn reports errors that any join can meet while the group
// settles (rebalances, member or coordinator changes, timeouts): they say
// nothing about whether the consumer can ever join.
func membershipChurn(err error) bool {
	for _, e := range []kafka.Error{kafka.RebalanceInProgress, kafka.UnknownMemberId, kafka.IllegalGeneration,
		kafka.NotCoordinatorForGroup, kafka.GroupCoordinatorNotAvailable, kafka.GroupLoadInProgress,
		kafka.MemberIDRequired, kafka.FencedInstanceID} {
		if errors.Is(err, e) {
			return true
		}
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, os.ErrDeadlineExceeded)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
