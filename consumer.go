package mq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqkit/mq/internal/backoff"
	"github.com/mqkit/mq/internal/offsets"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// KafkaConsumer consumes one topic as a member of a consumer group and passes
// every message, decoded into T, to each registered [Handler].
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
// It is built on kafka-go's ConsumerGroup and Generation API rather than the
// group Reader, whose commits can go to the wrong generation or backwards
// around rebalances.
type KafkaConsumer[T any] struct {
	cfg     consumerConfig
	brokers []string
	topic   string
	group   string
	codec   Codec[T]
	log     *zap.Logger

	consumerCounters
	parts  atomic.Pointer[[]*partitionState] // current generation, for Stats and Health
	joined atomic.Bool

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
	return &KafkaConsumer[T]{
		cfg:     cfg,
		brokers: append([]string(nil), brokers...),
		topic:   topic,
		group:   group,
		codec:   codec,
		log:     logger(cfg.logger).With(zap.String("topic", topic), zap.String("group", group)),
		stopCh:  make(chan struct{}),
		doneCh:  make(chan struct{}),
	}, nil
}

// Topic returns the topic the consumer reads (retry topics aside).
func (c *KafkaConsumer[T]) Topic() string { return c.topic }

// Group returns the consumer group.
func (c *KafkaConsumer[T]) Group() string { return c.group }

// RegisterHandler adds a handler. Every message is passed to every handler,
// in registration order. It returns [ErrNilHandler] for a nil handler and
// [ErrRunning] once Run has started.
func (c *KafkaConsumer[T]) RegisterHandler(h Handler[T], opts ...HandlerOption) error {
	if isNil(h) {
		return ErrNilHandler
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return ErrRunning
	}
	if c.closed {
		return ErrClosed
	}
	rh, err := newRegisteredHandler(len(c.handlers), h, c.cfg.retry, opts)
	if err != nil {
		return err
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
// the group, or [ErrShutdownTimeout] if some handler did not
// finish in time (its message stays uncommitted and will be delivered
// again). When a handler exhausts its retries or a value
// cannot be decoded, it does the same for the other partitions and returns a
// [*HandlerError] or [*DecodeError].
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
	topics := append([]string{c.topic}, c.cfg.recoverer.retryTopics(c.topic)...)
	sugar := c.log.Sugar()
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                     c.group,
		Brokers:                c.brokers,
		Dialer:                 dialer,
		Topics:                 topics,
		GroupBalancers:         c.cfg.groupBalancers,
		HeartbeatInterval:      c.cfg.heartbeatInterval,
		SessionTimeout:         c.cfg.sessionTimeout,
		RebalanceTimeout:       c.cfg.rebalanceTimeout,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
		JoinGroupBackoff:       time.Second,
		StartOffset:            int64(c.cfg.startOffset),
		Timeout:                c.cfg.commitTimeout,
		Logger:                 kafka.LoggerFunc(func(f string, a ...any) { sugar.Debugf(f, a...) }),
		ErrorLogger:            kafka.LoggerFunc(func(f string, a ...any) { sugar.Warnf(f, a...) }),
	})
	if err != nil {
		return fmt.Errorf("mq: consumer group %q: %w", c.group, err)
	}

	s := &session[T]{c: c, handlers: handlers, runCtx: runCtx, stop: stop, userCtx: ctx, dialer: dialer, topics: topics}
	defer s.closePublishers()
	if err := s.checkRecoveryTopics(runCtx); err != nil {
		_ = cg.Close()
		return err
	}
	var lastJoinErr error
	joinedOnce := false
	for runCtx.Err() == nil {
		gen, err := cg.Next(runCtx)
		if err != nil {
			if runCtx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				break
			}
			if aerr := authError(err); errors.Is(aerr, ErrAuthentication) {
				s.fail(fmt.Errorf("mq: consumer group %q: %w", c.group, aerr))
				break
			}
			c.log.Warn("joining group failed, retrying", zap.Error(err))
			if !membershipChurn(err) {
				lastJoinErr = err
			}
			continue
		}
		joinedOnce = true
		s.runGeneration(gen)
	}
	closed := make(chan struct{})
	go func() {
		_ = cg.Close() // ends the generation and leaves the group
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(c.cfg.shutdownTimeout + c.cfg.commitTimeout):
		c.log.Error("leaving the group timed out")
	}
	c.setPartitions(nil)
	c.joined.Store(false)
	c.log.Info("consumer stopped")
	if err := s.fatalErr(); err != nil {
		return err
	}
	if !joinedOnce && lastJoinErr != nil {
		// Stopped without ever joining: say why rather than report success.
		return fmt.Errorf("mq: consumer group %q never joined: %w", c.group, lastJoinErr)
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

// session holds the state of one Run call.
type session[T any] struct {
	c        *KafkaConsumer[T]
	handlers []registeredHandler[T]
	runCtx   context.Context
	stop     context.CancelFunc
	userCtx  context.Context
	dialer   *kafka.Dialer

	topics []string // main topic, then retry topics by tier

	mu      sync.Mutex
	fatal   error
	overran bool // a handler outlived the shutdown timeout

	pubMu      sync.Mutex
	publishers map[string]*Producer[[]byte]
	tr         *kafka.Transport
}

func (s *session[T]) fail(err error) {
	s.mu.Lock()
	if s.fatal == nil {
		s.fatal = err
	}
	s.mu.Unlock()
	s.stop()
}

func (s *session[T]) fatalErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fatal == nil && s.overran {
		return ErrShutdownTimeout
	}
	return s.fatal
}

// partitionState is one assigned partition within a generation.
type partitionState struct {
	topic   string
	tier    int // 0 for the main topic, n for the n-th retry topic
	id      int
	tracker *offsets.Tracker
	done    chan struct{}

	// Read by Stats and health checks from other goroutines.
	committed    atomic.Int64 // last committed offset, -1 if none
	hwm          atomic.Int64 // high-water mark seen on the last fetch, -1 if none
	lastProgress atomic.Int64 // UnixNano of the last completed message (or assignment)
}

// runGeneration consumes the partitions a generation assigned and returns
// once their processed offsets were committed for the last time: when the
// generation ends (rebalance) or the run stops.
func (s *session[T]) runGeneration(gen *kafka.Generation) {
	c := s.c
	ids := make(map[string][]int)
	var parts []*partitionState
	var starts []int64
	for tier, topic := range s.topics {
		for _, a := range gen.Assignments[topic] {
			ids[topic] = append(ids[topic], a.ID)
			start := a.Offset
			if start < 0 {
				start = -1 // no commit yet: -1/-2 are sentinels, never offsets
			}
			ps := &partitionState{topic: topic, tier: tier, id: a.ID,
				tracker: offsets.New(start), done: make(chan struct{})}
			ps.committed.Store(start)
			ps.hwm.Store(-1)
			ps.lastProgress.Store(time.Now().UnixNano())
			parts = append(parts, ps)
			starts = append(starts, a.Offset)
		}
	}
	c.rebalances.Add(1)
	c.log.Info("partitions assigned", zap.Int32("generation", gen.ID), zap.Any("partitions", ids))
	if c.cfg.onAssigned != nil {
		c.cfg.onAssigned(ids)
	}
	if obs := c.cfg.observer; obs != nil {
		obs.Rebalanced(c.group, gen.ID, ids)
	}
	c.setPartitions(parts)
	c.joined.Store(true)

	for i := range parts {
		ps, start := parts[i], starts[i]
		gen.Start(func(genCtx context.Context) {
			s.consumePartition(genCtx, ps, start)
			<-genCtx.Done() // returning early would end the generation
		})
	}

	final := make(chan struct{})
	gen.Start(func(genCtx context.Context) {
		s.commitLoop(gen, genCtx, parts)
		if c.cfg.onRevoked != nil {
			c.cfg.onRevoked(ids)
		}
		c.joined.Store(false)
		close(final)
		<-genCtx.Done()
	})
	<-final
}

// commitLoop commits on every tick until all partition workers are done, then
// commits one last time.
func (s *session[T]) commitLoop(gen *kafka.Generation, genCtx context.Context, parts []*partitionState) {
	c := s.c
	allDone := make(chan struct{})
	go func() {
		for _, ps := range parts {
			<-ps.done
		}
		close(allDone)
	}()
	ticker := time.NewTicker(c.cfg.commitInterval)
	defer ticker.Stop()
	stopCh := make(chan struct{})
	stopWatch := context.AfterFunc(s.runCtx, func() { close(stopCh) })
	stopping := (<-chan struct{})(stopCh)
	defer stopWatch()
	genDone := genCtx.Done()
	var deadline <-chan time.Time
loop:
	for {
		select {
		case <-ticker.C:
			s.commit(gen, parts, false)
		case <-allDone:
			break loop
		case <-stopping:
			stopping = nil
			genDone = nil
			deadline = time.After(c.cfg.shutdownTimeout + time.Second)
		case <-genDone:
			stopping = nil
			genDone = nil
			deadline = time.After(c.cfg.shutdownTimeout + time.Second)
		case <-deadline:
			c.log.Warn("handlers did not finish within the shutdown timeout; their messages stay uncommitted",
				zap.Duration("timeout", c.cfg.shutdownTimeout))
			s.mu.Lock()
			s.overran = true
			s.mu.Unlock()
			break loop
		}
	}
	s.commit(gen, parts, true)
	c.log.Info("partitions released", zap.Int32("generation", gen.ID))
}

func (s *session[T]) commit(gen *kafka.Generation, parts []*partitionState, final bool) {
	c := s.c
	var offs map[string]map[int]int64
	for _, ps := range parts {
		if p := ps.tracker.CommitPoint(); p >= 0 && p > ps.committed.Load() {
			if offs == nil {
				offs = make(map[string]map[int]int64)
			}
			if offs[ps.topic] == nil {
				offs[ps.topic] = make(map[int]int64)
			}
			offs[ps.topic][ps.id] = p
		}
	}
	if offs == nil {
		return
	}
	errc := make(chan error, 1)
	go func() { errc <- gen.CommitOffsets(offs) }()
	var err error
	select {
	case err = <-errc:
	case <-time.After(c.cfg.commitTimeout + time.Second):
		err = errors.New("commit timed out")
	}
	if err != nil {
		lvl := zap.WarnLevel
		if final {
			lvl = zap.ErrorLevel
		}
		c.log.Log(lvl, "commit failed; offsets will be committed later or the messages redelivered",
			zap.Int32("generation", gen.ID), zap.Bool("final", final), zap.Error(err))
		return
	}
	for _, ps := range parts {
		if o, ok := offs[ps.topic][ps.id]; ok {
			ps.committed.Store(o)
			if obs := c.cfg.observer; obs != nil {
				obs.Committed(c.group, ps.topic, ps.id, o)
			}
		}
	}
	c.commits.Add(1)
	c.log.Debug("committed", zap.Int32("generation", gen.ID), zap.Any("offsets", offs))
}

// consumePartition fetches one partition and processes it in order until the
// generation ends, the run stops, or a message fails for good.
func (s *session[T]) consumePartition(genCtx context.Context, ps *partitionState, startOffset int64) {
	c := s.c
	defer close(ps.done)
	log := c.log.With(zap.Int("partition", ps.id))
	if ps.tier > 0 {
		log = log.With(zap.String("retry_topic", ps.topic))
	}

	// soft: stop fetching and retrying. hard: handlers' context, cancelled a
	// shutdown timeout after soft.
	soft, softCancel := context.WithCancel(s.runCtx)
	defer softCancel()
	stopGen := context.AfterFunc(genCtx, softCancel)
	defer stopGen()
	hard, hardCancel := context.WithCancel(context.WithoutCancel(s.userCtx))
	defer hardCancel()
	var hardTimer *time.Timer
	var timerMu sync.Mutex
	stopHard := context.AfterFunc(soft, func() {
		timerMu.Lock()
		hardTimer = time.AfterFunc(c.cfg.shutdownTimeout, hardCancel)
		timerMu.Unlock()
	})
	defer func() {
		stopHard()
		timerMu.Lock()
		if hardTimer != nil {
			hardTimer.Stop()
		}
		timerMu.Unlock()
	}()

	rcfg := kafka.ReaderConfig{
		Brokers:         c.brokers,
		Topic:           ps.topic,
		Partition:       ps.id,
		Dialer:          s.dialer,
		MinBytes:        c.cfg.minBytes,
		MaxBytes:        c.cfg.maxBytes,
		MaxWait:         c.cfg.maxWait,
		QueueCapacity:   c.cfg.queueCapacity,
		ReadLagInterval: -1,
		Logger:          kafka.LoggerFunc(func(string, ...any) {}),
		// The reader retries its own errors (timeouts while partitions move,
		// for instance): informational, not warnings.
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) { log.Sugar().Infof(f, a...) }),
	}
	if err := rcfg.Validate(); err != nil {
		s.fail(fmt.Errorf("mq: reader for %s[%d]: %w", ps.topic, ps.id, err))
		return
	}
	r := kafka.NewReader(rcfg)
	defer func() { _ = r.Close() }()
	if err := r.SetOffset(startOffset); err != nil {
		s.fail(fmt.Errorf("mq: reader for %s[%d]: %w", ps.topic, ps.id, err))
		return
	}

	proc := &processor[T]{s: s, soft: soft, hard: hard, log: log, tier: ps.tier}
	var lanes *laneSet[T]
	if c.cfg.lanes > 1 && ps.tier == 0 {
		lanes = startLanes(proc, ps, c.cfg.lanes, c.cfg.queueCapacity)
		defer lanes.stop()
	}
	fetchBackoff := backoff.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2}
	fetchFailures := 0
	for {
		m, err := r.FetchMessage(soft)
		if soft.Err() != nil {
			return // a cancelled context can still yield a message: drop it
		}
		if err != nil {
			fetchFailures++
			log.Warn("fetch failed, retrying", zap.Error(err))
			if !sleepCtx(soft, fetchBackoff.Delay(fetchFailures)) {
				return
			}
			continue
		}
		fetchFailures = 0
		if !ps.tracker.Begin(m.Offset) {
			continue // already seen (never re-process below the commit point)
		}
		c.consumed.Add(1)
		ps.hwm.Store(m.HighWaterMark)
		if lanes != nil {
			if !lanes.dispatch(soft, &m) {
				return
			}
			continue
		}
		if !proc.process(&m) {
			return // failed for good or stopping: leave it uncommitted
		}
		ps.finish(m.Offset)
	}
}

// finish marks a message fully processed.
func (ps *partitionState) finish(offset int64) {
	ps.tracker.Done(offset)
	ps.lastProgress.Store(time.Now().UnixNano())
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
