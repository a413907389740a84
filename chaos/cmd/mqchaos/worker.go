package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/chaos/check"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// WorkerConfig is what the orchestrator passes to a worker process (as JSON
// in -cfg).
type WorkerConfig struct {
	Role     string    `json:"role"` // "producer" or "consumer"
	Name     string    `json:"name"`
	Brokers  []string  `json:"brokers"`
	Topic    string    `json:"topic"`
	Out      string    `json:"out"`     // the record file
	Summary  string    `json:"summary"` // JSON summary written at exit
	Deadline time.Time `json:"deadline"`
	Verbose  bool      `json:"verbose"`

	// producer
	N               int           `json:"n"`
	IDBase          int64         `json:"id_base"`
	Keys            int           `json:"keys"`
	Senders         int           `json:"senders"`
	Rate            float64       `json:"rate"`     // messages per second over all senders; 0: as fast as possible
	Duration        time.Duration `json:"duration"` // with N == 0: send until then
	Async           bool          `json:"async"`
	MaxBuffered     int           `json:"max_buffered"`
	DeliveryTimeout time.Duration `json:"delivery_timeout"`
	WriteTimeout    time.Duration `json:"write_timeout"`
	CloseTimeout    time.Duration `json:"close_timeout"`
	SendTimeout     time.Duration `json:"send_timeout"` // per send context; 0: none
	Payload         int           `json:"payload"`
	PoisonPct       float64       `json:"poison_pct"`
	PanicAlwaysPct  float64       `json:"panic_always_pct"`
	PanicOncePct    float64       `json:"panic_once_pct"`
	Seed            uint64        `json:"seed"`

	// consumer
	Group             string        `json:"group"`
	CommitInterval    time.Duration `json:"commit_interval"`
	SessionTimeout    time.Duration `json:"session_timeout"`
	HeartbeatInterval time.Duration `json:"heartbeat_interval"`
	RebalanceTimeout  time.Duration `json:"rebalance_timeout"`
	ShutdownTimeout   time.Duration `json:"shutdown_timeout"`
	FetchMaxWait      time.Duration `json:"fetch_max_wait"`
	HandlerDelay      time.Duration `json:"handler_delay"`
	DLT               bool          `json:"dlt"`
	RetryAttempts     int           `json:"retry_attempts"`
	Fsync             bool          `json:"fsync"`
	Lanes             int           `json:"lanes"`
	GroupProtocol     string        `json:"group_protocol,omitempty"`
}

// Event is the value of every well-formed chaos message.
type Event struct {
	ID   int64  `json:"id"`
	Key  string `json:"k"`
	Seq  int64  `json:"s"`
	Kind int    `json:"kind"`
	Pad  string `json:"pad,omitempty"`
}

// Headers on every chaos message, so that the checker can identify records
// whose value cannot be decoded (poison) in the log and in the DLT.
const (
	hdrID   = "chaos-id"
	hdrKey  = "chaos-key"
	hdrSeq  = "chaos-seq"
	hdrKind = "chaos-kind"
)

// Exit codes of workers.
const (
	exitOK       = 0
	exitRunError = 2 // Run or the producer reported an error
	exitDeadline = 3 // the hard deadline passed
	exitSetup    = 4
)

func workerMain(args []string) {
	fs := flag.NewFlagSet("worker", flag.ExitOnError)
	role := fs.String("role", "", "producer or consumer")
	cfgJSON := fs.String("cfg", "", "worker configuration (JSON)")
	_ = fs.Parse(args)
	var cfg WorkerConfig
	if err := json.Unmarshal([]byte(*cfgJSON), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "worker: bad -cfg: %v\n", err)
		os.Exit(exitSetup)
	}
	if *role != "" {
		cfg.Role = *role
	}
	// A hard stop, whatever happens: the orchestrator's deadline plus a grace.
	if !cfg.Deadline.IsZero() {
		time.AfterFunc(time.Until(cfg.Deadline)+20*time.Second, func() {
			fmt.Fprintf(os.Stderr, "%s: hard deadline passed, exiting\n", cfg.Name)
			os.Exit(exitDeadline)
		})
	}
	switch cfg.Role {
	case "producer":
		os.Exit(runProducer(cfg))
	case "consumer":
		os.Exit(runConsumer(cfg))
	default:
		fmt.Fprintf(os.Stderr, "worker: unknown role %q\n", cfg.Role)
		os.Exit(exitSetup)
	}
}

func newLogger(cfg WorkerConfig) *zap.Logger {
	lvl := zapcore.WarnLevel
	if cfg.Verbose {
		lvl = zapcore.InfoLevel
	}
	ec := zap.NewDevelopmentEncoderConfig()
	ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(ec), zapcore.Lock(os.Stderr), lvl)
	return zap.New(core).Named(cfg.Name)
}

// recordFile appends lines with one write(2) each, so that a line is either
// wholly in the file or not at all when the process is killed.
type recordFile struct {
	mu    sync.Mutex
	f     *os.File
	fsync bool
	buf   []byte
}

func openRecordFile(path string, fsync bool) (*recordFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &recordFile{f: f, fsync: fsync}, nil
}

func (r *recordFile) write(fn func([]byte) []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = fn(r.buf[:0])
	if _, err := r.f.Write(r.buf); err != nil {
		return err
	}
	if r.fsync {
		return r.f.Sync()
	}
	return nil
}

func writeJSON(path string, v any) {
	if path == "" {
		return
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	_ = os.WriteFile(path, b, 0o644)
}

// ---------------------------------------------------------------- consumer

// ConsumerSummary is written by a consumer process when Run returns.
type ConsumerSummary struct {
	Name     string           `json:"name"`
	RunError string           `json:"run_error,omitempty"`
	Stats    mq.ConsumerStats `json:"stats"`
	PanicOK  int64            `json:"panic_once_recovered"`
	Seconds  float64          `json:"seconds"`
}

// readyEnv names the file descriptor on which a worker announces itself.
const readyEnv = "MQCHAOS_READY_FD"

// announceReady tells the orchestrator (through the descriptor readyEnv
// names, see procs.start) that the signal handlers are installed.
func announceReady() {
	fd, err := strconv.Atoi(os.Getenv(readyEnv))
	if err != nil || fd < 3 {
		return
	}
	f := os.NewFile(uintptr(fd), "ready")
	_, _ = f.Write([]byte{1})
	_ = f.Close()
}

// workerContext is a worker's context: cancelled by SIGTERM or SIGINT (the
// handlers are installed before anything else, then announced) and ended by
// the configured deadline.
func workerContext(cfg WorkerConfig) (context.Context, func()) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	announceReady()
	if cfg.Deadline.IsZero() {
		return ctx, stop
	}
	ctx, cancel := context.WithDeadline(ctx, cfg.Deadline)
	return ctx, func() { cancel(); stop() }
}

func runConsumer(cfg WorkerConfig) int {
	ctx, stop := workerContext(cfg)
	defer stop()
	start := time.Now()
	log := newLogger(cfg)
	defer log.Sync() //nolint:errcheck

	rf, err := openRecordFile(cfg.Out, cfg.Fsync)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", cfg.Name, err)
		return exitSetup
	}
	_ = rf.write(func(b []byte) []byte { return fmt.Appendf(b, "S %d\n", time.Now().UnixNano()) })

	var gen atomic.Int64
	// held is the whole assignment: with cooperative-sticky the hooks get
	// only the partitions added or revoked. Every change starts a new
	// segment: a release mark, then an assigned mark of what is still held.
	var heldMu sync.Mutex
	held := make(map[int]bool)
	heldList := func() []int {
		parts := make([]int, 0, len(held))
		for p := range held {
			parts = append(parts, p)
		}
		sort.Ints(parts)
		return parts
	}
	opts := []mq.ConsumerOption{
		mq.WithLogger(log),
		mq.WithClientID(cfg.Name),
		mq.WithOnAssigned(func(assigned map[string][]int) {
			heldMu.Lock()
			defer heldMu.Unlock()
			for _, p := range assigned[cfg.Topic] {
				held[p] = true
			}
			g := gen.Add(1)
			parts := heldList()
			_ = rf.write(func(b []byte) []byte { return check.AppendAssigned(b, time.Now().UnixNano(), int(g), parts) })
		}),
		mq.WithOnRevoked(func(revoked map[string][]int) {
			heldMu.Lock()
			defer heldMu.Unlock()
			for _, p := range revoked[cfg.Topic] {
				delete(held, p)
			}
			g := gen.Load()
			_ = rf.write(func(b []byte) []byte { return check.AppendReleased(b, time.Now().UnixNano(), int(g)) })
			if len(held) > 0 {
				g = gen.Add(1)
				parts := heldList()
				_ = rf.write(func(b []byte) []byte { return check.AppendAssigned(b, time.Now().UnixNano(), int(g), parts) })
			}
		}),
	}
	if cfg.GroupProtocol != "" {
		opts = append(opts, mq.WithGroupProtocol(mq.GroupProtocol(cfg.GroupProtocol)))
	}
	if cfg.CommitInterval > 0 {
		opts = append(opts, mq.WithCommitInterval(cfg.CommitInterval))
	}
	if cfg.SessionTimeout > 0 {
		opts = append(opts, mq.WithSessionTimeout(cfg.SessionTimeout))
	}
	if cfg.HeartbeatInterval > 0 {
		opts = append(opts, mq.WithHeartbeatInterval(cfg.HeartbeatInterval))
	}
	if cfg.RebalanceTimeout > 0 {
		opts = append(opts, mq.WithRebalanceTimeout(cfg.RebalanceTimeout))
	}
	if cfg.ShutdownTimeout > 0 {
		opts = append(opts, mq.WithShutdownTimeout(cfg.ShutdownTimeout))
	}
	if cfg.FetchMaxWait > 0 {
		opts = append(opts, mq.WithFetchMaxWait(cfg.FetchMaxWait))
	}
	if cfg.RetryAttempts > 0 {
		opts = append(opts, mq.WithRetryPolicy(mq.RetryPolicy{MaxAttempts: cfg.RetryAttempts,
			InitialBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, Multiplier: 2, Jitter: 0.2}))
	}
	if cfg.DLT {
		opts = append(opts, mq.WithRecoverer(mq.DeadLetterRecoverer("")))
	}
	if cfg.Lanes > 1 {
		opts = append(opts, mq.WithLanes(cfg.Lanes))
	}
	c, err := mq.NewKafkaConsumer[Event](cfg.Brokers, cfg.Topic, cfg.Group, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", cfg.Name, err)
		return exitSetup
	}

	var panicOnce sync.Map // id -> struct{}: panicked once already in this process
	var panicOK atomic.Int64
	err = c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[Event]) error {
		ev := m.Value
		switch check.Kind(ev.Kind) {
		case check.KindPanicAlways:
			panic(fmt.Sprintf("chaos: panic-always id %d", ev.ID))
		case check.KindPanicOnce:
			if _, loaded := panicOnce.LoadOrStore(ev.ID, struct{}{}); !loaded {
				panic(fmt.Sprintf("chaos: panic-once id %d", ev.ID))
			}
			panicOK.Add(1)
		}
		if cfg.HandlerDelay > 0 {
			time.Sleep(cfg.HandlerDelay)
		}
		h := check.Handled{Partition: m.Partition, Offset: m.Offset, ID: ev.ID, Key: ev.Key, Seq: ev.Seq}
		// The handler succeeds only once the record is in the file.
		return rf.write(func(b []byte) []byte { return check.AppendHandled(b, time.Now().UnixNano(), h) })
	}, mq.WithHandlerName("record"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", cfg.Name, err)
		return exitSetup
	}

	runErr := c.Run(ctx)
	if runErr == nil && ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded) && !cfg.Deadline.IsZero() && time.Now().After(cfg.Deadline) {
		runErr = errors.New("worker deadline reached")
	}
	es := "-"
	if runErr != nil {
		es = strings.ReplaceAll(runErr.Error(), "\n", " ")
	}
	_ = rf.write(func(b []byte) []byte { return fmt.Appendf(b, "E %d %s\n", time.Now().UnixNano(), es) })
	sum := ConsumerSummary{Name: cfg.Name, Stats: c.Stats(), PanicOK: panicOK.Load(), Seconds: time.Since(start).Seconds()}
	if runErr != nil {
		sum.RunError = runErr.Error()
	}
	writeJSON(cfg.Summary, sum)
	if runErr != nil {
		fmt.Fprintf(os.Stderr, "%s: Run returned: %v\n", cfg.Name, runErr)
		return exitRunError
	}
	return exitOK
}

// ---------------------------------------------------------------- producer

// ProducerSummary is written by a producer process at exit.
type ProducerSummary struct {
	Name            string           `json:"name"`
	IDBase          int64            `json:"id_base"`
	Produced        int64            `json:"produced"` // IDs allocated
	Acked           int64            `json:"acked"`
	Failed          int64            `json:"failed"`
	Rejected        int64            `json:"rejected"`
	Callbacks       int64            `json:"callbacks"`
	DoubleCallbacks int64            `json:"double_callbacks"`
	MissingOutcomes int64            `json:"missing_outcomes"` // accepted without a callback after Close
	CloseError      string           `json:"close_error,omitempty"`
	CloseMs         float64          `json:"close_ms"`
	CloseCount      int64            `json:"close_undelivered"`   // UndeliveredError.Count from Close
	ClosedFailures  int64            `json:"closed_failures"`     // callbacks with mq.ErrClosed
	FailedInClose   int64            `json:"failed_during_close"` // failure callbacks after Close started
	MaxErrLatencyMs float64          `json:"max_err_latency_ms"`  // failed sync sends: call to error
	MaxLatencyMs    float64          `json:"max_latency_ms"`
	MaxOvershootMs  float64          `json:"max_ctx_overshoot_ms"` // send returned this long after its ctx deadline
	MaxBuffered     int64            `json:"max_buffered_seen"`
	VmHWMKiB        int64            `json:"vm_hwm_kib"`
	RSSSamples      []RSSSample      `json:"rss_samples,omitempty"`
	Stats           mq.ProducerStats `json:"stats"`
	Seconds         float64          `json:"seconds"`
}

// RSSSample is the producer's resident memory at a moment.
type RSSSample struct {
	T        float64 `json:"t"` // seconds since start
	RSSKiB   int64   `json:"rss_kib"`
	Buffered int64   `json:"buffered"`
}

func procStatusKiB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line[len(field)+1:])
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return -1
}

// outcomeTable counts the outcomes reported for each ID, allocated in chunks
// as IDs are used so that it does not inflate the memory figures.
type outcomeTable struct {
	mu     sync.Mutex
	chunks [1 << 12]atomic.Pointer[outcomeChunk]
}

type outcome struct {
	n        atomic.Int32
	accepted atomic.Bool
}

type outcomeChunk [1 << 14]outcome

func (t *outcomeTable) get(idx int64) *outcome {
	ci, i := idx>>14, idx&(1<<14-1)
	if ci < 0 || ci >= int64(len(t.chunks)) {
		return nil
	}
	c := t.chunks[ci].Load()
	if c == nil {
		t.mu.Lock()
		if c = t.chunks[ci].Load(); c == nil {
			c = new(outcomeChunk)
			t.chunks[ci].Store(c)
		}
		t.mu.Unlock()
	}
	return &c[i]
}

func float64bits(f float64) uint64     { return math.Float64bits(f) }
func float64frombits(b uint64) float64 { return math.Float64frombits(b) }

func atomicMaxFloat(p *atomic.Uint64, v float64) {
	for {
		old := p.Load()
		if v <= float64frombits(old) {
			return
		}
		if p.CompareAndSwap(old, float64bits(v)) {
			return
		}
	}
}

func runProducer(cfg WorkerConfig) int {
	ctx, stop := workerContext(cfg)
	defer stop()
	start := time.Now()
	log := newLogger(cfg)
	defer log.Sync() //nolint:errcheck

	f, err := os.OpenFile(cfg.Out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", cfg.Name, err)
		return exitSetup
	}
	defer f.Close()
	var wmu sync.Mutex
	w := bufio.NewWriterSize(f, 256<<10)
	var lineBuf []byte
	writeLine := func(l check.ProducerLine) {
		wmu.Lock()
		lineBuf = check.AppendProducerLine(lineBuf[:0], l)
		_, _ = w.Write(lineBuf)
		wmu.Unlock()
	}
	flushDone := make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				wmu.Lock()
				_ = w.Flush()
				wmu.Unlock()
			case <-flushDone:
				return
			}
		}
	}()

	senders := max(cfg.Senders, 1)
	keys := max(cfg.Keys, senders)
	var produced, acked, failed, rejected, callbacks, doubles atomic.Int64
	var closing atomic.Bool
	var closedFailures, failedInClose atomic.Int64
	var maxErrLat, maxLat, maxOver atomic.Uint64
	// Outcome counters per ID, to prove "exactly once".
	outcomes := &outcomeTable{}

	opts := []mq.ProducerOption{
		mq.WithCodec[[]byte](mq.BytesCodec{}),
		mq.WithLogger(log),
		mq.WithClientID(cfg.Name),
		mq.WithAsync(cfg.Async),
	}
	if cfg.MaxBuffered > 0 {
		opts = append(opts, mq.WithMaxBufferedRecords(cfg.MaxBuffered))
	}
	if cfg.DeliveryTimeout > 0 {
		opts = append(opts, mq.WithDeliveryTimeout(cfg.DeliveryTimeout))
	}
	if cfg.WriteTimeout > 0 {
		opts = append(opts, mq.WithWriteTimeout(cfg.WriteTimeout))
	}
	if cfg.CloseTimeout > 0 {
		opts = append(opts, mq.WithCloseTimeout(cfg.CloseTimeout))
	}
	p, err := mq.NewProducer[[]byte](cfg.Brokers, cfg.Topic, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", cfg.Name, err)
		return exitSetup
	}

	// Memory and buffer sampling.
	var samples []RSSSample
	var maxBuf atomic.Int64
	sampDone := make(chan struct{})
	var sampWG sync.WaitGroup
	sampWG.Add(1)
	go func() {
		defer sampWG.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		i := 0
		for {
			select {
			case <-t.C:
				b := p.Stats().Buffered
				if b > maxBuf.Load() {
					maxBuf.Store(b)
				}
				if i%50 == 0 { // every 250 ms
					samples = append(samples, RSSSample{T: time.Since(start).Seconds(), RSSKiB: procStatusKiB("VmRSS"), Buffered: b})
				}
				i++
			case <-sampDone:
				return
			}
		}
	}()

	var deadline time.Time
	if cfg.N == 0 && cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	var nextID atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < senders; g++ {
		var own []string
		for k := g; k < keys; k += senders {
			own = append(own, fmt.Sprintf("k%04d", k))
		}
		count := -1
		if cfg.N > 0 {
			count = cfg.N / senders
			if g < cfg.N%senders {
				count++
			}
		}
		wg.Add(1)
		go func(g int, own []string, count int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(g)+1))
			seq := make([]int64, len(own))
			interval := time.Duration(0)
			if cfg.Rate > 0 {
				interval = time.Duration(float64(senders) / cfg.Rate * float64(time.Second))
			}
			next := time.Now()
			pad := strings.Repeat("x", cfg.Payload)
			for j := 0; count < 0 || j < count; j++ {
				if ctx.Err() != nil || (!deadline.IsZero() && time.Now().After(deadline)) {
					return
				}
				if interval > 0 {
					next = next.Add(interval)
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					} else if d < -time.Second {
						next = time.Now() // no catch-up burst after a stall
					}
				}
				ki := j % len(own)
				key := own[ki]
				s := seq[ki]
				seq[ki]++
				idx := nextID.Add(1) - 1
				oc := outcomes.get(idx)
				if oc == nil {
					return
				}
				id := cfg.IDBase + idx
				produced.Add(1)
				kind := check.KindOK
				x := rng.Float64() * 100
				switch {
				case x < cfg.PoisonPct:
					kind = check.KindPoison
				case x < cfg.PoisonPct+cfg.PanicAlwaysPct:
					kind = check.KindPanicAlways
				case x < cfg.PoisonPct+cfg.PanicAlwaysPct+cfg.PanicOncePct:
					kind = check.KindPanicOnce
				}
				var value []byte
				if kind == check.KindPoison {
					value = make([]byte, 16+rng.IntN(48))
					for i := range value {
						value[i] = byte(rng.UintN(256))
					}
					value[0] = 0xff // never valid JSON
				} else {
					value, _ = json.Marshal(Event{ID: id, Key: key, Seq: s, Kind: int(kind), Pad: pad})
				}
				msg := mq.Message[[]byte]{Key: []byte(key), Value: value, Headers: []mq.Header{
					{Key: hdrID, Value: []byte(strconv.FormatInt(id, 10))},
					{Key: hdrKey, Value: []byte(key)},
					{Key: hdrSeq, Value: []byte(strconv.FormatInt(s, 10))},
					{Key: hdrKind, Value: []byte(strconv.Itoa(int(kind)))},
				}}
				line := check.ProducerLine{ID: id, Key: key, Seq: s, Kind: kind}
				sctx, cancel := ctx, context.CancelFunc(func() {})
				var sendDeadline time.Time
				if cfg.SendTimeout > 0 {
					sendDeadline = time.Now().Add(cfg.SendTimeout)
					sctx, cancel = context.WithDeadline(ctx, sendDeadline)
				}
				t0 := time.Now()
				if cfg.Async {
					err := p.SendAsync(sctx, msg, func(m mq.Message[[]byte], err error) {
						lat := time.Since(t0)
						if oc.n.Add(1) > 1 {
							doubles.Add(1)
						}
						callbacks.Add(1)
						l := line
						l.Time, l.LatencyUs = time.Now().UnixNano(), lat.Microseconds()
						if err == nil {
							acked.Add(1)
							l.Tag, l.Partition, l.Offset = 'A', m.Partition, m.Offset
						} else {
							failed.Add(1)
							if errors.Is(err, mq.ErrClosed) {
								closedFailures.Add(1)
							}
							if closing.Load() {
								failedInClose.Add(1)
							}
							l.Tag, l.Err = 'F', err.Error()
						}
						writeLine(l)
					})
					lat := time.Since(t0)
					cancel()
					if err != nil {
						rejected.Add(1)
						if !sendDeadline.IsZero() {
							atomicMaxFloat(&maxOver, float64(time.Since(sendDeadline))/1e6)
						}
						l := line
						l.Tag, l.Time, l.LatencyUs, l.Err = 'R', time.Now().UnixNano(), lat.Microseconds(), err.Error()
						writeLine(l)
						if ctx.Err() != nil {
							return
						}
						continue
					}
					oc.accepted.Store(true)
					continue
				}
				res, err := p.SendMessage(sctx, msg)
				lat := time.Since(t0)
				cancel()
				atomicMaxFloat(&maxLat, float64(lat)/1e6)
				l := line
				l.Time, l.LatencyUs = time.Now().UnixNano(), lat.Microseconds()
				if err == nil {
					acked.Add(1)
					l.Tag, l.Partition, l.Offset = 'A', res.Partition, res.Offset
				} else {
					atomicMaxFloat(&maxErrLat, float64(lat)/1e6)
					failed.Add(1)
					l.Tag, l.Err = 'F', err.Error()
				}
				writeLine(l)
			}
		}(g, own, count)
	}
	wg.Wait()
	closing.Store(true)
	closeStart := time.Now()
	cerr := p.Close()
	closeMs := float64(time.Since(closeStart)) / 1e6
	close(sampDone)
	sampWG.Wait()
	close(flushDone)
	wmu.Lock()
	_ = w.Flush()
	wmu.Unlock()

	sum := ProducerSummary{
		Name: cfg.Name, IDBase: cfg.IDBase, Produced: produced.Load(), Acked: acked.Load(),
		Failed: failed.Load(), Rejected: rejected.Load(), Callbacks: callbacks.Load(),
		DoubleCallbacks: doubles.Load(), MaxErrLatencyMs: float64frombits(maxErrLat.Load()),
		MaxLatencyMs: float64frombits(maxLat.Load()), MaxOvershootMs: float64frombits(maxOver.Load()),
		MaxBuffered: maxBuf.Load(), VmHWMKiB: procStatusKiB("VmHWM"), RSSSamples: samples,
		Stats: p.Stats(), Seconds: time.Since(start).Seconds(),
	}
	if cfg.Async {
		for i := int64(0); i < produced.Load(); i++ {
			if oc := outcomes.get(i); oc != nil && oc.accepted.Load() && oc.n.Load() == 0 {
				sum.MissingOutcomes++
			}
		}
	}
	sum.CloseMs = closeMs
	sum.ClosedFailures, sum.FailedInClose = closedFailures.Load(), failedInClose.Load()
	if cerr != nil {
		sum.CloseError = cerr.Error()
		var ue *mq.UndeliveredError
		if errors.As(cerr, &ue) {
			sum.CloseCount = int64(ue.Count)
		}
	}
	writeJSON(cfg.Summary, sum)
	if ctx.Err() != nil && !cfg.Deadline.IsZero() && time.Now().After(cfg.Deadline) {
		fmt.Fprintf(os.Stderr, "%s: deadline reached before all messages were sent\n", cfg.Name)
		return exitDeadline
	}
	return exitOK
}
