package mq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqkit/mq/internal/fetch"
	"github.com/mqkit/mq/internal/offsets"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// session holds the state of one Run call.
//
// Group membership (membership.go, on internal/group) and fetching meet at
// one seam: startPartition assigns a partition to the fetch engine and
// starts its worker, and cancelling the context it was started with stops
// it (the worker revokes it from the engine once its in-flight messages are
// done). Nothing in a worker depends on the other partitions of its
// generation, so cooperative rebalancing starts and stops partitions one by
// one.
type session[T any] struct {
	c        *KafkaConsumer[T]
	handlers []registeredHandler[T]
	runCtx   context.Context
	stop     context.CancelFunc
	userCtx  context.Context
	dialer   *kafka.Dialer
	fetcher  *fetch.Fetcher

	subs []subscription // every topic the group subscribes to

	// Written by runGroup only.
	joinedOnce  bool
	lastJoinErr error // the last join error that was not membership churn

	mu      sync.Mutex
	fatal   error
	overran bool // a handler outlived the shutdown timeout

	pubMu      sync.Mutex
	publishers map[string]*Producer[[]byte]
	pubClosed  bool // closePublishers ran: no new publisher
	tr         *kafka.Transport
}

// subscription is one topic the group reads: a main topic (tier 0) or the
// n-th retry topic of one.
type subscription struct {
	topic string
	main  string // the main topic; topic itself for tier 0
	tier  int
}

// subscriptions lists the main topics, each followed by its retry topics.
func subscriptions(topics []string, r Recoverer) []subscription {
	var out []subscription
	for _, t := range topics {
		out = append(out, subscription{topic: t, main: t})
		for i, rt := range r.retryTopics(t) {
			out = append(out, subscription{topic: rt, main: t, tier: i + 1})
		}
	}
	return out
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
	main    string // the main topic, for a retry topic's partition
	tier    int    // 0 for a main topic, n for the n-th retry topic
	id      int
	start   int64 // committed offset, or StartEarliest/StartLatest
	tracker *offsets.Tracker
	done    chan struct{}

	// Read by Stats and health checks from other goroutines.
	fp           atomic.Pointer[fetch.Partition]
	ctl          partitionControl // pause and seek requests (pause.go)
	committed    atomic.Int64     // last committed offset, -1 if none
	lastProgress atomic.Int64     // UnixNano of the last completed message (or assignment)
}

func newPartitionState(sub subscription, id int, start int64) *partitionState {
	if sub.tier > 0 && start == int64(StartLatest) {
		// A retry topic holds messages the group already took from its main
		// topic (and committed there): with no commit of its own yet, it is
		// read from its beginning whatever WithStartOffset says.
		start = int64(StartEarliest)
	}
	committed := start
	if committed < 0 {
		committed = -1 // no commit yet: -1/-2 are sentinels, never offsets
	}
	ps := &partitionState{topic: sub.topic, main: sub.main, tier: sub.tier, id: id, start: start,
		tracker: offsets.New(committed), done: make(chan struct{})}
	ps.committed.Store(committed)
	ps.lastProgress.Store(time.Now().UnixNano())
	return ps
}

// highWatermark is the partition's end offset as of its last fetch, -1
// before the first.
func (ps *partitionState) highWatermark() int64 {
	if fp := ps.fp.Load(); fp != nil {
		return fp.HighWatermark()
	}
	return -1
}

// startPartition assigns ps to the fetch engine and starts its worker,
// which runs until ctx ends, the run stops, or a message fails for good.
// ps.done is closed once the worker is done and the partition revoked.
func (s *session[T]) startPartition(ctx context.Context, ps *partitionState) {
	fp, err := s.fetcher.Assign(ps.topic, int32(ps.id), ps.start)
	if err != nil {
		s.fail(fmt.Errorf("mq: consuming %s[%d]: %w", ps.topic, ps.id, err))
		close(ps.done)
		return
	}
	s.c.startControls(ps, fp) // applies pauses and seeks, and publishes fp
	go s.consumePartition(ctx, ps, fp)
}

// consumePartition takes the partition's records from the fetch engine and
// processes them in order until ctx ends, the run stops, or a message fails
// for good; then it revokes the partition from the engine.
func (s *session[T]) consumePartition(ctx context.Context, ps *partitionState, fp *fetch.Partition) {
	c := s.c
	defer close(ps.done)
	defer s.fetcher.Revoke(fp)
	log := c.log.With(zap.String("topic", ps.topic), zap.Int("partition", ps.id))

	// soft: stop fetching and retrying. hard: handlers' context, cancelled a
	// shutdown timeout after soft.
	soft, softCancel := context.WithCancel(s.runCtx)
	defer softCancel()
	stopGen := context.AfterFunc(ctx, softCancel)
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

	proc := &processor[T]{s: s, soft: soft, hard: hard, log: log, tier: ps.tier}
	if ps.tier == 0 && c.cfg.lanes == 1 && s.batching() {
		s.consumeBatches(soft, ps, proc, fp)
		return
	}
	var lanes *laneSet[T]
	if c.cfg.lanes > 1 && ps.tier == 0 {
		lanes = startLanes(proc, ps, c.cfg.lanes)
		defer func() { lanes.stop() }()
	}
	drop := func() { // a seek waits for the lanes' queued messages first
		if lanes != nil {
			lanes.stop()
			lanes = startLanes(proc, ps, c.cfg.lanes)
		}
	}
	for {
		if !s.control(soft, ps, fp, drop) {
			return
		}
		next, cancel := ps.ctl.nextContext(soft)
		chunk, err := fp.Next(next)
		cancel()
		if soft.Err() != nil {
			chunk.Release()
			return
		}
		if err != nil {
			if next.Err() != nil {
				continue // a pause or seek request
			}
			log.Error("fetching the partition failed: stopping the consumer", zap.Error(err))
			s.fail(fmt.Errorf("mq: consuming %s[%d]: %w", ps.topic, ps.id, err))
			return
		}
		if chunk.Restarted {
			drop() // the lanes finish what they hold first
			chunk.Release()
			if soft.Err() != nil {
				return // one of them failed for good, or stopping: commit nothing past it
			}
			ps.restartAt(chunk.NextOffset)
			continue
		}
		seeks := ps.ctl.seeks()
		ok := s.processChunk(soft, ps, proc, lanes, chunk, drop)
		if ok && ps.ctl.seeks() != seeks {
			chunk.Release() // sought: the rest of the chunk is stale
			continue
		}
		if ok {
			// Transaction markers, aborted records and compaction gaps
			// after the last record need no processing: commit past them.
			ps.tracker.Advance(chunk.NextOffset)
		}
		chunk.Release()
		if !ok {
			return // failed for good or stopping: the rest stays uncommitted
		}
	}
}

// processChunk passes a chunk's records through the pipeline in order, or to
// the lanes. It reports false when the partition must stop.
func (s *session[T]) processChunk(soft context.Context, ps *partitionState, proc *processor[T], lanes *laneSet[T], chunk *fetch.Chunk,
	drop func()) bool {
	c := s.c
	seeks := ps.ctl.seeks()
	for i := range chunk.Records {
		if soft.Err() != nil {
			return false
		}
		if ps.ctl.pending() {
			if !s.control(soft, ps, ps.fp.Load(), drop) {
				return false
			}
			if ps.ctl.seeks() != seeks {
				return true // the caller drops the rest of the chunk
			}
		}
		r := &chunk.Records[i]
		if !ps.tracker.Begin(r.Offset) {
			continue // already seen (never re-process below the commit point)
		}
		c.consumed.Add(1)
		in := inbound{ps: ps, rec: r, hwm: chunk.HighWatermark}
		if lanes != nil {
			if !lanes.dispatch(soft, in) {
				return false
			}
			continue
		}
		if !proc.process(in) {
			return false
		}
		ps.finish(r.Offset)
	}
	return true
}

// restartAt makes the partition's consumption restart at off, backwards
// too: after a seek, or when its fetch position was out of range. Nothing
// tracked before may be marked done afterwards (the caller waits for it
// first), and the next commit commits off.
func (ps *partitionState) restartAt(off int64) {
	ps.tracker.Reset(off)
	ps.committed.Store(off - 1)
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
	if s.pubClosed {
		// A handler that outlived the shutdown: a publisher made now would
		// never be closed. Its message stays uncommitted.
		return nil, fmt.Errorf("mq: publishing to %s after the consumer stopped: %w", topic, ErrClosed)
	}
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
	s.pubClosed = true
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
	var topics []string
	seen := make(map[string]bool)
	for _, main := range c.topics {
		for _, t := range c.cfg.recoverer.Topics(main) {
			if !seen[t] {
				seen[t] = true
				topics = append(topics, t)
			}
		}
	}
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
			return fmt.Errorf("mq: %s recoverer: topic %q does not exist (consumers never create topics; create %v, e.g. with mq.CreateTopics and Recoverer.TopicSpecs): %w (%w)",
				c.cfg.recoverer, t.Name, topics, ErrTopicNotFound, t.Error)
		}
	}
	return nil
}
