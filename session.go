package mq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqkit/mq/internal/backoff"
	"github.com/mqkit/mq/internal/offsets"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

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

// publisher returns the session's producer for a retry or dead-letter topic.
func (s *session[T]) publisher(topic string) (*Producer[[]byte], error) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if p, ok := s.publishers[topic]; ok {
		return p, nil
	}
	c := s.c
	p, err := NewProducer[[]byte](c.brokers, topic,
		WithCodec[[]byte](BytesCodec{}), WithLogger(c.cfg.logger), WithClientID(c.cfg.clientID),
		WithTransport(s.transportLocked()), WithDeliveryTimeout(c.cfg.commitTimeout+10*time.Second),
		WithObserver(c.cfg.observer))
	if err != nil {
		return nil, err
	}
	if s.publishers == nil {
		s.publishers = make(map[string]*Producer[[]byte])
	}
	s.publishers[topic] = p
	return p, nil
}

// transportLocked returns the kafka-go transport shared by the session's
// publishers, with the consumer's dialer settings. Called with pubMu held.
func (s *session[T]) transportLocked() *kafka.Transport {
	if s.tr == nil {
		c := s.c
		s.tr = &kafka.Transport{
			Dial:        (&net.Dialer{Timeout: c.cfg.dialTimeout}).DialContext,
			DialTimeout: c.cfg.dialTimeout,
			ClientID:    c.cfg.clientID,
			TLS:         s.dialer.TLS,
			SASL:        s.dialer.SASLMechanism,
			MetadataTTL: 2 * time.Second,
		}
	}
	return s.tr
}

func (s *session[T]) closePublishers() {
	s.pubMu.Lock()
	pubs := s.publishers
	s.publishers = nil
	tr := s.tr
	s.pubMu.Unlock()
	for topic, p := range pubs {
		if err := p.Close(); err != nil {
			s.c.log.Error("closing a recovery publisher", zap.String("to", topic), zap.Error(err))
		}
	}
	if tr != nil {
		tr.CloseIdleConnections()
	}
}

// checkRecoveryTopics makes Run fail fast when a retry or dead-letter topic
// does not exist. Connection problems are left to the consumer's own retries.
func (s *session[T]) checkRecoveryTopics(ctx context.Context) error {
	c := s.c
	topics := c.cfg.recoverer.Topics(c.topic)
	if len(topics) == 0 {
		return nil
	}
	s.pubMu.Lock()
	tr := s.transportLocked() // shared with the publishers; closed by closePublishers
	s.pubMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(c.brokers...), Transport: tr}
	res, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		c.log.Warn("cannot check the recovery topics", zap.Strings("topics", topics), zap.Error(err))
		return nil
	}
	for _, t := range res.Topics {
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			return fmt.Errorf("mq: %s recoverer: topic %q does not exist (consumers never create topics; create %v, e.g. with mq.CreateTopics and Recoverer.TopicSpecs): %w",
				c.cfg.recoverer, t.Name, topics, t.Error)
		}
	}
	return nil
}
