package produce

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// Config configures an [Engine]. New documents the defaults of zero values.
type Config struct {
	// Network gives the connections; Bootstrap are the addresses metadata
	// is first asked from.
	Network   wire.Network
	Bootstrap []string

	// Acks is what a produce request waits for: -1 all in-sync replicas, 1
	// the leader, 0 nothing (no response; offsets unknown).
	Acks int16
	// Idempotent gives every batch a producer ID and sequence numbers so
	// that the broker drops a duplicate and rejects a reordering. It needs
	// Acks -1.
	Idempotent bool

	Compression Compression
	// BatchRecords and BatchBytes bound one partition's batch.
	BatchRecords int
	BatchBytes   int
	// MaxRequestBytes bounds one produce request to a broker (the batches of
	// all its partitions), encoded: the encoded size of the batches a
	// request takes is estimated from recent batches' compression ratio. A
	// batch's estimated size (uncompressed) is never larger than it, so it
	// is also the largest record accepted.
	MaxRequestBytes int
	// Linger is how long a partition's batch may wait for more records when
	// none of its records is urgent.
	Linger time.Duration
	// MaxBuffered bounds the records buffered or in flight; Produce blocks
	// beyond it.
	MaxBuffered int
	// DeliveryTimeout bounds the time from Produce to a record's outcome.
	DeliveryTimeout time.Duration
	// RequestTimeout is the broker's wait for acknowledgements, sent in each
	// produce request, and the deadline of the request on its connection:
	// a response overdue past it by the connection's grace closes the
	// connection. It also bounds each metadata and producer ID attempt.
	RequestTimeout time.Duration
	// RetryBackoff is the first wait before a retriable failure is retried;
	// later waits double up to MaxRetryBackoff.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// MaxInFlight bounds the produce requests in flight per broker. A
	// partition has up to MaxInFlight batches in flight with idempotence,
	// one without (so that a retry cannot reorder it).
	MaxInFlight int
	// ManualPartitions makes every record go to its Partition field.
	ManualPartitions bool
	// Balancer, when set, picks the partitions of records that have no
	// manual partition; nil means the Java client's default: murmur2 for
	// keys, a sticky partition per batch for nil keys (KIP-794).
	Balancer kafka.Balancer
	// MetadataMaxAge is how often the metadata of the topics in use is
	// refreshed when nothing asks for it sooner.
	MetadataMaxAge time.Duration
	// Fatal reports errors from dialing or metadata that no retry can fix
	// (authentication): the records concerned fail at once with them. Nil
	// means none.
	Fatal func(error) bool
	// Done is told the outcome of every record given to Produce, exactly
	// once: a nil error with Partition and Offset filled in, or why it was
	// not delivered. It runs on an engine goroutine (a broker's or the
	// metadata loop's): it must not block, nor call Produce when the buffer
	// may be full.
	Done func(*Record, error)
	// Logger receives debug and warning logs; nil logs nothing.
	Logger *zap.Logger
}

// Defaults of the zero values of Config.
const (
	DefaultBatchRecords    = 1000
	DefaultBatchBytes      = 1 << 20
	DefaultMaxRequestBytes = 1 << 20
	DefaultMaxBuffered     = 10000
	DefaultDeliveryTimeout = 30 * time.Second
	DefaultRequestTimeout  = 10 * time.Second
	DefaultMaxRetryBackoff = time.Second
	DefaultMaxInFlight     = 5
	DefaultMetadataMaxAge  = 5 * time.Minute

	// maxIdempotentInFlight is the most batches of a partition the broker
	// keeps for deduplication (Kafka's producer state holds five).
	maxIdempotentInFlight = 5
)

// Engine delivers records to the partition leaders of a cluster. It is
// safe for concurrent use. Its goroutines start with the first Produce and
// end with Close.
type Engine struct {
	cfg       Config
	limitName string // the option that limits a record's size, for errors
	client    *wire.Client
	log       *zap.Logger

	slots   *slots        // one per buffered record
	closing chan struct{} // closed when Close starts
	ctx     context.Context
	cancel  context.CancelFunc // aborts everything in flight (Close, at the end)
	wg      sync.WaitGroup
	wake    chan struct{} // wakes the metadata loop

	buffered atomic.Int64
	// ratioBits is the float64 bits of the ratio of encoded (compressed)
	// to estimated batch sizes, averaged over recent batches: requests are
	// bounded by their encoded size, which is known only after the batches
	// of a request were chosen.
	ratioBits atomic.Uint64

	mu       sync.Mutex
	started  bool
	closed   bool
	flushing bool // Close is delivering what is left: no lingering
	topics   map[string]*topic
	sinks    map[int32]*sink
	brokers  map[int32]string

	gen       uint64         // the flush generation new records join
	genCount  map[uint64]int // records not yet reported, by generation before gen
	genCur    int            // records of generation gen not yet reported
	flushes   []*flushWaiter
	flushUpTo uint64 // while flushes wait: records of this generation or older do not linger

	meta metaState
	pid  pidState
}

type flushWaiter struct {
	gen uint64
	ch  chan struct{}
}

// New returns an engine. It dials nothing until the first Produce.
func New(cfg Config) (*Engine, error) {
	if cfg.Network == nil || len(cfg.Bootstrap) == 0 {
		return nil, errors.New("mq: produce engine: no network or no bootstrap address")
	}
	if cfg.Idempotent && cfg.Acks != -1 {
		return nil, errors.New("mq: idempotence needs acks=all")
	}
	if cfg.Compression < CompressionNone || cfg.Compression > CompressionZstd {
		return nil, fmt.Errorf("mq: unknown compression %d", cfg.Compression)
	}
	setDefault(&cfg.BatchRecords, DefaultBatchRecords)
	setDefault(&cfg.BatchBytes, DefaultBatchBytes)
	setDefault(&cfg.MaxRequestBytes, DefaultMaxRequestBytes)
	setDefault(&cfg.MaxBuffered, DefaultMaxBuffered)
	setDefault(&cfg.DeliveryTimeout, DefaultDeliveryTimeout)
	setDefault(&cfg.RequestTimeout, DefaultRequestTimeout)
	setDefault(&cfg.MaxRetryBackoff, DefaultMaxRetryBackoff)
	setDefault(&cfg.MaxInFlight, DefaultMaxInFlight)
	setDefault(&cfg.MetadataMaxAge, DefaultMetadataMaxAge)
	if cfg.Idempotent && cfg.MaxInFlight > maxIdempotentInFlight {
		cfg.MaxInFlight = maxIdempotentInFlight
	}
	// A batch never exceeds a request.
	limitName := "batch bytes limit"
	if cfg.MaxRequestBytes < cfg.BatchBytes {
		cfg.BatchBytes = cfg.MaxRequestBytes
		limitName = "max request size"
	}
	if cfg.Done == nil {
		cfg.Done = func(*Record, error) {}
	}
	if cfg.Fatal == nil {
		cfg.Fatal = func(error) bool { return false }
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	client := wire.NewClient(cfg.Network, cfg.Bootstrap)
	client.RequestTimeout = cfg.RequestTimeout
	e := &Engine{
		cfg:       cfg,
		limitName: limitName,
		client:    client,
		log:       log,
		slots:     newSlots(cfg.MaxBuffered),
		closing:   make(chan struct{}),
		wake:      make(chan struct{}, 1),
		topics:    make(map[string]*topic),
		sinks:     make(map[int32]*sink),
		brokers:   make(map[int32]string),
		genCount:  make(map[uint64]int),
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.ratioBits.Store(math.Float64bits(1))
	return e, nil
}

// ratio returns the estimated ratio of a batch's encoded size to its
// estimated size (Record.Size summed), never below 0.05.
func (e *Engine) ratio() float64 { return math.Float64frombits(e.ratioBits.Load()) }

// observeRatio folds an encoded batch's ratio into the estimate. The
// estimate leans to the larger ratios (it moves up at once, down slowly), so
// that a request rarely exceeds MaxRequestBytes by much.
func (e *Engine) observeRatio(encoded, estimated int) {
	if estimated <= 0 {
		return
	}
	r := max(float64(encoded)/float64(estimated), 0.05)
	old := e.ratio()
	if r < old {
		r = old*0.9 + r*0.1
	}
	e.ratioBits.Store(math.Float64bits(r))
}

func setDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Check returns an error wrapping [ErrMessageTooLarge] for a record larger
// than a batch may be, or an error for an invalid manual partition: Produce
// would reject r.
func (e *Engine) Check(r *Record) error {
	if r.size = r.Size(); r.size > e.cfg.BatchBytes {
		return fmt.Errorf("%w: a message of about %d bytes exceeds the %s of %d",
			ErrMessageTooLarge, r.size, e.limitName, e.cfg.BatchBytes)
	}
	if e.cfg.ManualPartitions && r.Partition < 0 {
		return fmt.Errorf("mq: invalid partition %d", r.Partition)
	}
	return nil
}

// Buffered returns the number of records buffered or in flight.
func (e *Engine) Buffered() int64 { return e.buffered.Load() }

// Produce buffers r for delivery and returns once it is buffered. It blocks
// only while the buffer is full, until ctx ends or Close starts. If it
// returns nil, r's outcome is reported to Config.Done exactly once; if it
// returns an error (ctx's, [ErrClosed], [ErrMessageTooLarge], an invalid
// partition), r was not buffered. urgent records make their batch leave
// without lingering.
func (e *Engine) Produce(ctx context.Context, r *Record, urgent bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.Check(r); err != nil {
		return err
	}
	select {
	case <-e.closing:
		return ErrClosed
	default:
	}
	if err := e.slots.acquire(ctx, e.closing); err != nil {
		return err
	}
	now := time.Now()
	if r.Time.IsZero() {
		r.Time = now
	}
	r.Offset = -1
	r.deadline = now.Add(e.cfg.DeliveryTimeout)

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		e.slots.release(1)
		return ErrClosed
	}
	e.start()
	r.gen = e.gen
	e.genCur++ // a counter, not a map update, per record
	e.buffered.Add(1)
	s, loop := e.route(r, urgent, now)
	e.mu.Unlock()
	if s != nil {
		s.signal()
	}
	if loop {
		e.signal()
	}
	return nil
}

// start starts the metadata loop once. e.mu must be held.
func (e *Engine) start() {
	if e.started {
		return
	}
	e.started = true
	e.wg.Add(1)
	go e.loop()
}

// signal wakes the metadata loop.
func (e *Engine) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Flush makes every buffered record leave without lingering and waits until
// every record buffered before the call has its outcome reported (Done has
// returned for it), or ctx ends.
func (e *Engine) Flush(ctx context.Context) error {
	e.mu.Lock()
	w := e.flushWaiterLocked()
	e.mu.Unlock()
	if w == nil {
		return nil
	}
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flushWaiterLocked starts a flush of the records buffered so far; nil when
// there are none. e.mu must be held.
func (e *Engine) flushWaiterLocked() *flushWaiter {
	g := e.gen
	if e.genCur > 0 {
		e.genCount[g] = e.genCur
		e.genCur = 0
	}
	e.gen++
	if !e.pendingUpTo(g) {
		return nil
	}
	w := &flushWaiter{gen: g, ch: make(chan struct{})}
	e.flushes = append(e.flushes, w)
	e.flushUpTo = g
	for _, s := range e.sinks {
		s.signal()
	}
	return w
}

// pendingUpTo reports whether records of generation g or older are not yet
// reported. e.mu must be held.
func (e *Engine) pendingUpTo(g uint64) bool {
	if e.genCur > 0 && e.gen <= g {
		return true
	}
	for gen := range e.genCount {
		if gen <= g {
			return true
		}
	}
	return false
}

// finished is a record and its outcome, reported outside e.mu.
type finished struct {
	r   *Record
	err error
}

// report tells Done the outcomes, then counts the records out: a Flush
// returns only after the Done calls of its records returned, and a buffer
// slot is freed only after its record left Buffered. It must be called
// without e.mu.
func (e *Engine) report(done []finished) {
	if len(done) == 0 {
		return
	}
	e.buffered.Add(-int64(len(done)))
	for _, f := range done {
		e.cfg.Done(f.r, f.err)
	}
	e.mu.Lock()
	for i := 0; i < len(done); { // one map update per run of a generation
		gen, n := done[i].r.gen, 0
		for ; i < len(done) && done[i].r.gen == gen; i++ {
			n++
		}
		if gen == e.gen {
			e.genCur -= n
		} else if e.genCount[gen] -= n; e.genCount[gen] <= 0 {
			delete(e.genCount, gen)
		}
	}
	if len(e.flushes) > 0 {
		kept := e.flushes[:0]
		for _, w := range e.flushes {
			if e.pendingUpTo(w.gen) {
				kept = append(kept, w)
			} else {
				close(w.ch)
			}
		}
		clear(e.flushes[len(kept):])
		e.flushes = kept
	}
	e.mu.Unlock()
	e.slots.release(len(done))
}

// Close stops accepting records (Produce returns [ErrClosed]), delivers what
// is buffered until ctx ends (retries keep their backoff), then fails what
// is left with ErrClosed, and stops every goroutine. It returns ctx's error
// when records were left. The caller closes the Network afterwards.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.flushing = true
	close(e.closing)
	w := e.flushWaiterLocked()
	e.mu.Unlock()

	var err error
	if w != nil {
		select {
		case <-w.ch:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	e.cancel()
	e.wg.Wait()

	// Every goroutine is gone: fail what is left.
	e.mu.Lock()
	var left []finished
	for _, t := range e.topics {
		for _, r := range t.pending {
			left = append(left, finished{r, ErrClosed})
		}
		t.pending = nil
		for _, p := range t.parts {
			for _, b := range p.batches {
				if !b.expired {
					for _, r := range b.recs {
						left = append(left, finished{r, closedError(b)})
					}
				}
				b.release()
			}
			p.batches = nil
			for _, r := range p.queue {
				left = append(left, finished{r, ErrClosed})
			}
			p.queue = nil
		}
	}
	e.mu.Unlock()
	e.report(left)
	return err
}

// closedError is the error of a batch's records failed by Close.
func closedError(b *batch) error {
	if b.maybeWritten {
		return fmt.Errorf("%w: not acknowledged before close (it may have been written)", ErrClosed)
	}
	return ErrClosed
}
