package fetch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mqkit/mq/internal/backoff"
	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Defaults of the [Config] durations.
const (
	DefaultMaxWait        = 500 * time.Millisecond
	DefaultRequestTimeout = 30 * time.Second
)

// ErrClosed is returned by [Fetcher.Assign] after [Fetcher.Close].
var ErrClosed = errors.New("fetch: fetcher closed")

// placeBackoff spaces the metadata and ListOffsets lookups of partitions
// that could not be placed (no leader yet, topic not found, broker down).
var placeBackoff = backoff.Policy{Initial: 50 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.2}

// Config configures a [Fetcher]. Network and Client are required; zero
// values of the others mean their defaults.
type Config struct {
	// Network gives the connections: one fetch connection per broker
	// (wire.PurposeFetch), control connections for ListOffsets.
	Network wire.Network
	// Client looks up leaders (fresh metadata) and broker addresses.
	Client *wire.Client
	// Isolation is the isolation level of fetches and offset lookups.
	Isolation IsolationLevel
	// MinBytes is how many bytes a fetch waits for, up to MaxWait (1).
	MinBytes int32
	// MaxWait bounds how long a broker holds a fetch waiting for MinBytes
	// (DefaultMaxWait).
	MaxWait time.Duration
	// PartitionMaxBytes caps one partition's bytes in one fetch
	// (DefaultPartitionMaxBytes). A batch larger than it is still fetched,
	// whole.
	PartitionMaxBytes int32
	// BufferBytes is the budget for fetched bytes not yet released, shared
	// equally by the assigned partitions (DefaultBufferBytes).
	BufferBytes int64
	// Reset is where a partition whose fetch offset is out of range
	// starts again: OffsetEarliest (also for any value but OffsetLatest)
	// or OffsetLatest.
	Reset int64
	// MaxBatchBytes bounds a batch's decompressed size
	// (DefaultMaxBatchBytes).
	MaxBatchBytes int
	// RequestTimeout bounds a request beyond the time the broker may hold
	// it (DefaultRequestTimeout).
	RequestTimeout time.Duration
	// Logger receives warnings (leader changes, offset resets, failing
	// brokers); nil logs nothing.
	Logger *zap.Logger
}

// Fetcher is the fetch engine of one consumer. Partitions are assigned to
// it with a start offset and revoked from it by whatever manages group
// membership; for each broker that leads some of them, one goroutine (a
// source) fetches all of them in one Fetch request at a time, over one
// connection. Another goroutine looks up leaders and start offsets.
//
// Recoverable partition errors are handled per partition, without stopping
// the others: a leader change (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH,
// UNKNOWN_LEADER_EPOCH, ...) sends the partition back to a metadata lookup,
// then to its new leader's source; an offset out of range restarts it at
// [Config.Reset] (looked up with ListOffsets). A failed request sends its
// partitions to a metadata lookup too, and its source backs off.
//
// Fetcher is safe for concurrent use.
type Fetcher struct {
	cfg        Config
	log        *zap.Logger
	decodeOpts Options
	budget     budget

	ctx       context.Context // ends on Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	placeWake chan struct{} // cap 1: partitions wait for a leader or an offset

	mu       sync.Mutex
	closed   bool
	parts    map[topicPartition]*Partition
	sources  map[int32]*source
	unplaced int // assigned partitions not on a source yet
}

type topicPartition struct {
	topic string
	id    int32
}

// New returns a fetcher and starts its lookup goroutine. Close stops it.
func New(cfg Config) *Fetcher {
	if cfg.MinBytes <= 0 {
		cfg.MinBytes = 1
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.PartitionMaxBytes <= 0 {
		cfg.PartitionMaxBytes = DefaultPartitionMaxBytes
	}
	if cfg.BufferBytes <= 0 {
		cfg.BufferBytes = DefaultBufferBytes
	}
	if cfg.Reset != OffsetLatest {
		cfg.Reset = OffsetEarliest
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fetcher{
		cfg:        cfg,
		log:        log,
		decodeOpts: Options{Isolation: cfg.Isolation, MaxBatchBytes: cfg.MaxBatchBytes},
		budget:     budget{total: cfg.BufferBytes, partitionMax: cfg.PartitionMaxBytes},
		ctx:        ctx,
		cancel:     cancel,
		placeWake:  make(chan struct{}, 1),
		parts:      make(map[topicPartition]*Partition),
		sources:    make(map[int32]*source),
	}
	f.wg.Add(1)
	go f.placeLoop()
	return f
}

// Assign starts fetching a partition from offset, or, for OffsetEarliest or
// OffsetLatest, from the partition's first record or its end. A partition
// assigned already is revoked first: its earlier consumer (say, a worker of
// a group generation that ended and is still finishing a handler) gets
// ErrRevoked. It fails when the fetcher is closed.
func (f *Fetcher) Assign(topic string, partition int32, offset int64) (*Partition, error) {
	if offset < 0 && offset != OffsetEarliest && offset != OffsetLatest {
		return nil, fmt.Errorf("fetch: %s[%d]: start offset %d is neither an offset nor OffsetEarliest/OffsetLatest", topic, partition, offset)
	}
	p := &Partition{f: f, topic: topic, id: partition, wake: make(chan struct{}, 1),
		place: needLeader, leader: -1, epoch: -1, reset: f.cfg.Reset, ratio: initialRatio, hot: true}
	p.hwm.Store(-1)
	if offset >= 0 {
		p.offset = offset
	} else {
		p.unpositioned = true
		p.reset = offset
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, ErrClosed
	}
	key := topicPartition{topic, partition}
	old := f.parts[key]
	if old != nil {
		f.revokeLocked(old)
	}
	f.parts[key] = p
	f.unplaced++
	f.budget.partitions.Add(1)
	f.mu.Unlock()
	if old != nil {
		old.signal()
	}
	f.wakePlacement()
	return p, nil
}

// Revoke stops fetching p and drops what it buffered: its Next returns
// ErrRevoked, and its chunks' Release does nothing. Revoking twice does
// nothing.
func (f *Fetcher) Revoke(p *Partition) {
	f.mu.Lock()
	f.revokeLocked(p)
	for _, s := range f.sources {
		s.kick() // the others' shares grew
	}
	f.mu.Unlock()
	p.signal()
}

// revokeLocked revokes p. f.mu is held.
func (f *Fetcher) revokeLocked(p *Partition) {
	if key := (topicPartition{p.topic, p.id}); f.parts[key] == p {
		delete(f.parts, key)
		f.budget.partitions.Add(-1)
		if p.place != fetching {
			f.unplaced--
		}
	}
	f.detachLocked(p)
	p.mu.Lock()
	if !p.revoked {
		p.revoked = true
		p.gen++
		p.ready = nil
		f.budget.held.Add(-p.held)
		p.held = 0
	}
	p.mu.Unlock()
}

// BufferedBytes returns the bytes fetched and not yet released, by all
// partitions.
func (f *Fetcher) BufferedBytes() int64 { return f.budget.held.Load() }

// Close revokes every partition and stops the fetcher's goroutines,
// waiting for them. Requests in flight are abandoned; connections belong to
// the Network and stay open.
func (f *Fetcher) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	parts := make([]*Partition, 0, len(f.parts))
	for _, p := range f.parts {
		parts = append(parts, p)
	}
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
	for _, p := range parts {
		f.Revoke(p)
	}
}

func (f *Fetcher) wakePlacement() {
	select {
	case f.placeWake <- struct{}{}:
	default:
	}
}

// attachLocked puts p on its leader's source, starting the source if
// needed. f.mu is held.
func (f *Fetcher) attachLocked(p *Partition) {
	if f.closed {
		return
	}
	s := f.sources[p.leader]
	if s == nil {
		s = newSource(f, p.leader)
		f.sources[p.leader] = s
		f.wg.Add(1)
		go s.run()
	}
	s.parts = append(s.parts, p)
	p.src.Store(s)
	f.setPlace(p, fetching)
	s.kick()
}

// setPlace moves p to placement to, counting the partitions not on a
// source. f.mu is held.
func (f *Fetcher) setPlace(p *Partition, to placement) {
	if (p.place == fetching) != (to == fetching) {
		if to == fetching {
			f.unplaced--
		} else {
			f.unplaced++
		}
	}
	p.place = to
}

// detachLocked takes p off its source. f.mu is held.
func (f *Fetcher) detachLocked(p *Partition) {
	s := p.src.Load()
	if s == nil {
		return
	}
	for i, q := range s.parts {
		if q == p {
			s.parts = append(s.parts[:i], s.parts[i+1:]...)
			break
		}
	}
	p.src.Store(nil)
}

// unplace takes a partition off its source after a response (to a request
// of generation gen) said it must be looked up again: its leader (to
// needLeader) or its offset (to needOffset, restarting at Config.Reset).
func (f *Fetcher) unplace(p *Partition, gen uint64, to placement) {
	f.mu.Lock()
	p.mu.Lock()
	if p.gen != gen || p.revoked || p.place != fetching {
		p.mu.Unlock()
		f.mu.Unlock()
		return
	}
	p.gen++ // answers to earlier requests are stale
	if to == needOffset {
		// Only for an offset out of range.
		p.unpositioned, p.outOfRange = true, true
		p.reset = f.cfg.Reset
	}
	p.mu.Unlock()
	f.detachLocked(p)
	f.setPlace(p, to)
	f.mu.Unlock()
	f.wakePlacement()
}

// partitionError deals with the error a fetch response gave a partition.
func (f *Fetcher) partitionError(p *Partition, fp fetchPart, pr *PartitionResponse) {
	switch {
	case errors.Is(pr.Err, kafka.OffsetOutOfRange):
		where := "earliest"
		if f.cfg.Reset == OffsetLatest {
			where = "latest"
		}
		f.log.Warn("fetch offset out of range; restarting the partition at its "+where+" offset",
			zap.String("topic", p.topic), zap.Int32("partition", p.id), zap.Int64("offset", fp.offset),
			zap.Int64("log_start_offset", pr.LogStartOffset), zap.Int64("high_watermark", pr.HighWatermark))
		f.unplace(p, fp.gen, needOffset)
	case leaderError(pr.Err):
		f.log.Info("partition leader changed or unavailable; looking it up again",
			zap.String("topic", p.topic), zap.Int32("partition", p.id), zap.Int32("broker", fp.p.leaderAt(f)),
			zap.Error(pr.Err))
		f.unplace(p, fp.gen, needLeader)
	default:
		p.fail(fp.gen, fmt.Errorf("fetch: %s[%d] at offset %d: %w", p.topic, p.id, fp.offset, pr.Err))
	}
}

// leaderAt returns the partition's leader as the fetcher knows it.
func (p *Partition) leaderAt(f *Fetcher) int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return p.leader
}

// fail makes err the partition's fatal error, unless its position moved on
// since generation gen.
func (p *Partition) fail(gen uint64, err error) {
	p.mu.Lock()
	if p.gen == gen && p.err == nil && !p.revoked {
		p.err = err
	}
	p.mu.Unlock()
	p.signal()
}
