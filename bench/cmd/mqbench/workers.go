package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqkit/mq"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// spec tells a worker process what to run.
type spec struct {
	System   string        `json:"system"`
	Workload string        `json:"workload"`
	Brokers  []string      `json:"brokers"`
	Topic    string        `json:"topic"`
	Group    string        `json:"group"`
	N        int64         `json:"n"`        // messages to send or consume
	Warmup   int64         `json:"warmup"`   // producer warm-up messages (not timed)
	Conc     int           `json:"conc"`     // concurrent senders (c)
	Duration time.Duration `json:"duration"` // measured window (f, g)
	Rate     int           `json:"rate"`     // msgs/s (f)
	Lanes    int           `json:"lanes"`    // mq lanes (e)
	Wait     time.Duration `json:"wait"`     // handler wait (e, g)
	Parts    int           `json:"parts"`    // partitions of the topic (i)
	Slow     []int32       `json:"slow"`     // partitions led by the slow broker (i)
}

const workerTimeout = 5 * time.Minute

// vlog writes progress details to stderr when MQBENCH_VERBOSE is set.
func vlog(format string, args ...any) {
	if os.Getenv("MQBENCH_VERBOSE") != "" {
		fmt.Fprintf(os.Stderr, "[worker] "+format+"\n", args...)
	}
}

// runWorker runs one system on one workload in this process.
func runWorker(s spec) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), workerTimeout)
	defer cancel()
	if stop := startProfiles(s); stop != nil {
		defer stop()
	}
	g := newGenerator()
	w := &worker{s: s, g: g, ctx: ctx}
	var err error
	res := newResult()
	switch s.Workload {
	case "a":
		res, err = w.produceThroughput()
	case "b":
		res, err = w.produceSyncOne()
	case "c":
		res, err = w.produceSyncConcurrent()
	case "d", "e1", "e8", "g":
		res, err = w.consume()
	case "f":
		res, err = w.endToEnd()
	case "h12", "h120", "h1000":
		res, err = w.drain()
	case "i":
		res, err = w.produceSlowBroker()
	default:
		err = fmt.Errorf("unknown workload %q", s.Workload)
	}
	if err != nil {
		return res, err
	}
	if !isNaN(res.MsgsSec) {
		res.MBSec = res.MsgsSec * g.avgSize() / (1 << 20)
	}
	if hwm, ok := vmHWM("self"); ok {
		res.RSS = float64(hwm) / (1 << 20)
	}
	return res, nil
}

type worker struct {
	s   spec
	g   *generator
	ctx context.Context
}

func (w *worker) ev(i int64) Event { return w.g.event(i, time.Now().UnixNano()) }

// ----- clients -----

func (w *worker) mqProducer(opts ...mq.ProducerOption) (*mq.Producer[Event], error) {
	opts = append([]mq.ProducerOption{mq.WithCompression(mq.CompressionSnappy)}, opts...)
	return mq.NewProducer[Event](w.s.Brokers, w.s.Topic, opts...)
}

func kgoTransport() *kafka.Transport {
	return &kafka.Transport{Dial: (&net.Dialer{Timeout: 10 * time.Second}).DialContext, MetadataTTL: 2 * time.Second}
}

func (w *worker) kafkaWriter(tr *kafka.Transport) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(w.s.Brokers...),
		Topic:        w.s.Topic,
		Balancer:     kafka.Murmur2Balancer{}, // same partitions as mq and franz-go
		Compression:  kafka.Snappy,
		RequiredAcks: kafka.RequireAll,
		Transport:    tr,
	}
}

func (w *worker) franzClient(opts ...kgo.Opt) (*kgo.Client, error) {
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(w.s.Brokers...),
		kgo.DefaultProduceTopic(w.s.Topic),
		kgo.ProducerBatchCompression(kgo.SnappyCompression()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}, opts...)
	return kgo.NewClient(opts...)
}

// ----- (a) producer throughput -----

func (w *worker) produceThroughput() (result, error) {
	res := newResult()
	n, ctx := w.s.N, w.ctx
	var start time.Time
	var am allocMeter
	var elapsed time.Duration
	switch w.s.System {
	case "mq":
		var failed atomic.Int64
		p, err := w.mqProducer(mq.WithAsync(true), mq.WithDeliveryHandler(func(_ mq.Message[Event], err error) {
			if err != nil {
				failed.Add(1)
			}
		}))
		if err != nil {
			return res, err
		}
		defer p.Close()
		for i := int64(0); i < w.s.Warmup; i++ {
			if _, err := p.Send(ctx, w.g.key(i), w.ev(i)); err != nil {
				return res, err
			}
		}
		if err := p.Flush(ctx); err != nil {
			return res, err
		}
		am, start = startAllocs(), time.Now()
		for i := w.s.Warmup; i < w.s.Warmup+n; i++ {
			if _, err := p.Send(ctx, w.g.key(i), w.ev(i)); err != nil {
				return res, err
			}
		}
		if err := p.Flush(ctx); err != nil {
			return res, err
		}
		elapsed = time.Since(start)
		res.Allocs = am.perMsg(n)
		if f := failed.Load(); f > 0 {
			return res, fmt.Errorf("%d messages failed", f)
		}
		if err := p.Close(); err != nil {
			return res, err
		}
	case "kafka-go":
		// Async Writer with large batches; outcomes through Completion.
		tr := kgoTransport()
		defer tr.CloseIdleConnections()
		var done, failed atomic.Int64
		doneCh := make(chan struct{}, 1)
		var target atomic.Int64
		kw := w.kafkaWriter(tr)
		kw.Async = true
		kw.BatchSize = 1000
		kw.BatchBytes = 1 << 20
		kw.BatchTimeout = 10 * time.Millisecond
		kw.Completion = func(msgs []kafka.Message, err error) {
			if err != nil {
				failed.Add(int64(len(msgs)))
			}
			if done.Add(int64(len(msgs))) >= target.Load() {
				select {
				case doneCh <- struct{}{}:
				default:
				}
			}
		}
		defer kw.Close()
		wait := func(upto int64) error {
			target.Store(upto)
			for done.Load() < upto {
				select {
				case <-doneCh:
				case <-time.After(10 * time.Millisecond):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		}
		send := func(i int64) error {
			v, err := json.Marshal(w.ev(i))
			if err != nil {
				return err
			}
			return kw.WriteMessages(ctx, kafka.Message{Key: w.g.key(i), Value: v})
		}
		for i := int64(0); i < w.s.Warmup; i++ {
			if err := send(i); err != nil {
				return res, err
			}
		}
		if err := wait(w.s.Warmup); err != nil {
			return res, err
		}
		am, start = startAllocs(), time.Now()
		for i := w.s.Warmup; i < w.s.Warmup+n; i++ {
			if err := send(i); err != nil {
				return res, err
			}
		}
		if err := wait(w.s.Warmup + n); err != nil {
			return res, err
		}
		elapsed = time.Since(start)
		res.Allocs = am.perMsg(n)
		if f := failed.Load(); f > 0 {
			return res, fmt.Errorf("%d messages failed", f)
		}
	case "kafka-go/batch":
		// Sync Writer fed 10,000 messages per WriteMessages call by 4
		// goroutines, so batches are large and requests overlap.
		tr := kgoTransport()
		defer tr.CloseIdleConnections()
		kw := w.kafkaWriter(tr)
		kw.BatchSize = 1000
		kw.BatchBytes = 1 << 20
		kw.BatchTimeout = time.Millisecond
		defer kw.Close()
		const chunk, senders = 10000, 4
		write := func(from, to int64) error {
			msgs := make([]kafka.Message, 0, min(chunk, to-from))
			for i := from; i < to; i++ {
				v, err := json.Marshal(w.ev(i))
				if err != nil {
					return err
				}
				msgs = append(msgs, kafka.Message{Key: w.g.key(i), Value: v})
				if len(msgs) == chunk || i == to-1 {
					if err := kw.WriteMessages(ctx, msgs...); err != nil {
						return err
					}
					msgs = msgs[:0]
				}
			}
			return nil
		}
		if err := write(0, w.s.Warmup); err != nil {
			return res, err
		}
		am, start = startAllocs(), time.Now()
		var next atomic.Int64
		next.Store(w.s.Warmup)
		end := w.s.Warmup + n
		errc := make(chan error, senders)
		for k := 0; k < senders; k++ {
			go func() {
				for {
					from := next.Add(chunk) - chunk
					if from >= end {
						errc <- nil
						return
					}
					if err := write(from, min(from+chunk, end)); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		for k := 0; k < senders; k++ {
			if err := <-errc; err != nil {
				return res, err
			}
		}
		elapsed = time.Since(start)
		res.Allocs = am.perMsg(n)
	case "franz-go":
		cl, err := w.franzClient()
		if err != nil {
			return res, err
		}
		defer cl.Close()
		var failed atomic.Int64
		promise := func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		}
		send := func(i int64) error {
			v, err := json.Marshal(w.ev(i))
			if err != nil {
				return err
			}
			cl.Produce(ctx, &kgo.Record{Key: w.g.key(i), Value: v}, promise)
			return nil
		}
		for i := int64(0); i < w.s.Warmup; i++ {
			if err := send(i); err != nil {
				return res, err
			}
		}
		if err := cl.Flush(ctx); err != nil {
			return res, err
		}
		am, start = startAllocs(), time.Now()
		for i := w.s.Warmup; i < w.s.Warmup+n; i++ {
			if err := send(i); err != nil {
				return res, err
			}
		}
		if err := cl.Flush(ctx); err != nil {
			return res, err
		}
		elapsed = time.Since(start)
		res.Allocs = am.perMsg(n)
		if f := failed.Load(); f > 0 {
			return res, fmt.Errorf("%d messages failed", f)
		}
	default:
		return res, fmt.Errorf("system %q does not run workload a", w.s.System)
	}
	res.Msgs, res.Secs = n, elapsed.Seconds()
	res.MsgsSec = float64(n) / elapsed.Seconds()
	return res, nil
}

// ----- (b) and (c) synchronous sends -----

// syncSender returns a function sending message i synchronously, and a
// closer.
func (w *worker) syncSender() (func(ctx context.Context, i int64) error, func(), error) {
	switch w.s.System {
	case "mq":
		p, err := w.mqProducer()
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context, i int64) error {
			_, err := p.Send(ctx, w.g.key(i), w.ev(i))
			return err
		}, func() { _ = p.Close() }, nil
	case "kafka-go":
		// BatchSize 1: a synchronous write leaves at once instead of
		// waiting for BatchTimeout.
		tr := kgoTransport()
		kw := w.kafkaWriter(tr)
		kw.BatchSize = 1
		return func(ctx context.Context, i int64) error {
				v, err := json.Marshal(w.ev(i))
				if err != nil {
					return err
				}
				return kw.WriteMessages(ctx, kafka.Message{Key: w.g.key(i), Value: v})
			}, func() {
				_ = kw.Close()
				tr.CloseIdleConnections()
			}, nil
	case "kafka-go/batch":
		// Concurrent synchronous writers share batches: BatchSize 64
		// with a 1 ms BatchTimeout.
		tr := kgoTransport()
		kw := w.kafkaWriter(tr)
		kw.BatchSize = 64
		kw.BatchTimeout = time.Millisecond
		return func(ctx context.Context, i int64) error {
				v, err := json.Marshal(w.ev(i))
				if err != nil {
					return err
				}
				return kw.WriteMessages(ctx, kafka.Message{Key: w.g.key(i), Value: v})
			}, func() {
				_ = kw.Close()
				tr.CloseIdleConnections()
			}, nil
	case "franz-go":
		cl, err := w.franzClient()
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context, i int64) error {
			v, err := json.Marshal(w.ev(i))
			if err != nil {
				return err
			}
			return cl.ProduceSync(ctx, &kgo.Record{Key: w.g.key(i), Value: v}).FirstErr()
		}, cl.Close, nil
	}
	return nil, nil, fmt.Errorf("system %q does not run workload %s", w.s.System, w.s.Workload)
}

func (w *worker) produceSyncOne() (result, error) {
	res := newResult()
	send, closeFn, err := w.syncSender()
	if err != nil {
		return res, err
	}
	defer closeFn()
	ctx := w.ctx
	for i := int64(0); i < w.s.Warmup; i++ {
		if err := send(ctx, i); err != nil {
			return res, err
		}
	}
	lat := make([]time.Duration, 0, w.s.N)
	am, start := startAllocs(), time.Now()
	for i := w.s.Warmup; i < w.s.Warmup+w.s.N; i++ {
		t := time.Now()
		if err := send(ctx, i); err != nil {
			return res, err
		}
		lat = append(lat, time.Since(t))
	}
	elapsed := time.Since(start)
	res.Allocs = am.perMsg(w.s.N)
	res.Msgs, res.Secs = w.s.N, elapsed.Seconds()
	res.MsgsSec = float64(w.s.N) / elapsed.Seconds()
	res.P50, res.P99 = percentiles(lat)
	return res, nil
}

func (w *worker) produceSyncConcurrent() (result, error) {
	res := newResult()
	send, closeFn, err := w.syncSender()
	if err != nil {
		return res, err
	}
	defer closeFn()
	ctx := w.ctx
	conc := max(w.s.Conc, 1)
	run := func(from, n int64) ([]time.Duration, error) {
		var next atomic.Int64
		next.Store(from)
		end := from + n
		lats := make([][]time.Duration, conc)
		errs := make([]error, conc)
		var wg sync.WaitGroup
		for k := 0; k < conc; k++ {
			wg.Add(1)
			go func(k int) {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= end {
						return
					}
					t := time.Now()
					if err := send(ctx, i); err != nil {
						errs[k] = err
						return
					}
					lats[k] = append(lats[k], time.Since(t))
				}
			}(k)
		}
		wg.Wait()
		var all []time.Duration
		for k := range lats {
			all = append(all, lats[k]...)
		}
		return all, errors.Join(errs...)
	}
	if _, err := run(0, w.s.Warmup); err != nil {
		return res, err
	}
	am, start := startAllocs(), time.Now()
	lat, err := run(w.s.Warmup, w.s.N)
	if err != nil {
		return res, err
	}
	elapsed := time.Since(start)
	res.Allocs = am.perMsg(w.s.N)
	res.Msgs, res.Secs = w.s.N, elapsed.Seconds()
	res.MsgsSec = float64(w.s.N) / elapsed.Seconds()
	res.P50, res.P99 = percentiles(lat)
	return res, nil
}

// ----- (d), (e), (g) consuming -----

// The handler's I/O-like wait is time.Sleep; on a busy VM it oversleeps, so
// the worker measures it: the bound of a workload is then concurrency / mean
// wait rather than concurrency / nominal wait.
var waitNs, waits, inWait, maxInWait atomic.Int64

func waitFor(d time.Duration) {
	if n := inWait.Add(1); n > maxInWait.Load() {
		maxInWait.Store(n) // approximate: enough to see how many handlers overlap
	}
	t := time.Now()
	time.Sleep(d)
	waitNs.Add(int64(time.Since(t)))
	waits.Add(1)
	inWait.Add(-1)
}

func meanWait() time.Duration {
	if n := waits.Load(); n > 0 {
		return time.Duration(waitNs.Load() / n)
	}
	return 0
}

// consumer runs a group consumer calling handle for every message until ctx
// ends. ready is closed once it is set up; every system decodes the JSON.
type consumeFn func(ctx context.Context, handle func(Event)) error

func (w *worker) consumer(handlerWait time.Duration) (consumeFn, error) {
	s := w.s
	switch s.System {
	case "mq/batch100":
		c, err := mq.NewKafkaConsumer[Event](s.Brokers, s.Topic, s.Group, mq.WithBatchMaxMessages(100))
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, handle func(Event)) error {
			if err := c.RegisterBatchHandlerFunc(func(_ context.Context, msgs []mq.Message[Event]) error {
				// The wait is per call, as a database transaction's
				// commit would be: once per batch.
				if handlerWait > 0 {
					waitFor(handlerWait)
				}
				for i := range msgs {
					handle(msgs[i].Value)
				}
				return nil
			}); err != nil {
				return err
			}
			return c.Run(ctx)
		}, nil
	case "mq":
		opts := []mq.ConsumerOption{}
		if s.Lanes > 1 {
			opts = append(opts, mq.WithLanes(s.Lanes))
		}
		c, err := mq.NewKafkaConsumer[Event](s.Brokers, s.Topic, s.Group, opts...)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, handle func(Event)) error {
			if err := c.RegisterHandlerFunc(func(_ context.Context, m mq.Message[Event]) error {
				if handlerWait > 0 {
					waitFor(handlerWait)
				}
				handle(m.Value)
				return nil
			}); err != nil {
				return err
			}
			return c.Run(ctx)
		}, nil
	case "kafka-go":
		// Group Reader, offsets committed in batches every second.
		return func(ctx context.Context, handle func(Event)) error {
			r := kafka.NewReader(kafka.ReaderConfig{
				Brokers:        s.Brokers,
				GroupID:        s.Group,
				Topic:          s.Topic,
				StartOffset:    kafka.FirstOffset,
				CommitInterval: time.Second,
				MaxWait:        250 * time.Millisecond, // as mq's default; also bounds Close
				MaxBytes:       1 << 20,
				QueueCapacity:  1000,
			})
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				var ev Event
				if err := json.Unmarshal(m.Value, &ev); err != nil {
					return err
				}
				if handlerWait > 0 {
					waitFor(handlerWait)
				}
				handle(ev)
			}
		}, nil
	case "franz-go":
		// Group consumer; records are marked after processing and the
		// marks autocommitted.
		return func(ctx context.Context, handle func(Event)) error {
			cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...), kgo.ConsumerGroup(s.Group),
				kgo.ConsumeTopics(s.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.AutoCommitMarks())
			if err != nil {
				return err
			}
			defer cl.Close()
			for {
				fs := cl.PollFetches(ctx)
				if ctx.Err() != nil {
					cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_ = cl.CommitMarkedOffsets(cctx)
					cancel()
					return nil
				}
				if errs := fs.Errors(); len(errs) > 0 {
					return fmt.Errorf("fetch: %v", errs[0].Err)
				}
				var decErr error
				fs.EachRecord(func(r *kgo.Record) {
					if decErr != nil {
						return
					}
					var ev Event
					if err := json.Unmarshal(r.Value, &ev); err != nil {
						decErr = err
						return
					}
					if handlerWait > 0 {
						if ctx.Err() != nil {
							return // stopping: leave the rest of the fetch unmarked
						}
						waitFor(handlerWait)
					}
					handle(ev)
					cl.MarkCommitRecords(r)
				})
				if decErr != nil {
					return decErr
				}
			}
		}, nil
	}
	return nil, fmt.Errorf("system %q does not run workload %s", s.System, s.Workload)
}

func (w *worker) consume() (result, error) {
	res := newResult()
	s := w.s
	run, err := w.consumer(s.Wait)
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	var count atomic.Int64
	var first sync.Once
	var start time.Time
	firstCh := make(chan struct{})
	done := make(chan struct{})
	var doneOnce sync.Once
	handle := func(Event) {
		first.Do(func() { start = time.Now(); close(firstCh) }) // the clock starts once the group is joined
		if count.Add(1) == s.N {
			doneOnce.Do(func() { close(done) })
		}
	}
	errc := make(chan error, 1)
	am := startAllocs()
	began := time.Now()
	go func() { errc <- run(ctx, handle) }()
	defer func() { vlog("%s/%s: first message after %v", s.System, s.Workload, start.Sub(began)) }()
	var elapsed time.Duration
	if s.Duration > 0 { // (g): consume for a while, then stop
		select {
		case <-firstCh:
		case err := <-errc:
			return res, fmt.Errorf("consumer stopped before the first message: %v", err)
		case <-ctx.Done():
			return res, ctx.Err()
		}
		select {
		case <-time.After(s.Duration):
		case <-done:
		case err := <-errc:
			return res, fmt.Errorf("consumer stopped early: %v", err)
		}
		elapsed = time.Since(start)
	} else {
		select {
		case <-done:
		case err := <-errc:
			return res, fmt.Errorf("consumer stopped after %d of %d messages: %v", count.Load(), s.N, err)
		case <-ctx.Done():
			return res, fmt.Errorf("timeout after %d of %d messages", count.Load(), s.N)
		}
		elapsed = time.Since(start)
	}
	n := count.Load()
	res.Allocs = am.perMsg(n)
	cancel()
	stopAt := time.Now()
	if err := <-errc; err != nil {
		return res, err
	}
	vlog("%s/%s: stopped in %v", s.System, s.Workload, time.Since(stopAt))
	res.Msgs, res.Secs = n, elapsed.Seconds()
	res.MsgsSec = float64(n) / elapsed.Seconds()
	if mw := meanWait(); mw > 0 {
		res.Note = fmt.Sprintf("mean 1ms wait took %.3f ms, up to %d handlers at once", float64(mw)/1e6, maxInWait.Load())
		res.Wait = float64(mw) / 1e6
	}
	return res, nil
}

// ----- (f) end-to-end latency at a fixed rate -----

func (w *worker) endToEnd() (result, error) {
	res := newResult()
	s := w.s
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	run, err := w.consumer(0)
	if err != nil {
		return res, err
	}

	// Producer: asynchronous, tuned for latency. ackLat records send→ack
	// (diagnostics: e2e minus ack is the consumer's share).
	var send func(i int64) error
	var closeProducer func()
	var failed atomic.Int64
	var ackMu sync.Mutex
	acks := make([]time.Duration, 0, int(s.Duration.Seconds()+5)*s.Rate)
	ack := func(sentNs int64) {
		d := time.Duration(time.Now().UnixNano() - sentNs)
		ackMu.Lock()
		acks = append(acks, d)
		ackMu.Unlock()
	}
	switch s.System {
	case "mq":
		p, err := w.mqProducer(mq.WithAsync(true), mq.WithDeliveryHandler(func(m mq.Message[Event], err error) {
			if err != nil {
				failed.Add(1)
			}
			ack(m.Value.SentNs)
		}))
		if err != nil {
			return res, err
		}
		send = func(i int64) error { _, err := p.Send(ctx, w.g.key(i), w.ev(i)); return err }
		closeProducer = func() { _ = p.Close() }
	case "kafka-go":
		tr := kgoTransport()
		kw := w.kafkaWriter(tr)
		kw.Async = true
		kw.BatchSize = 1 // leave at once (BatchTimeout cannot be 0)
		kw.Completion = func(msgs []kafka.Message, err error) {
			if err != nil {
				failed.Add(int64(len(msgs)))
			}
			for _, m := range msgs {
				ack(m.Time.UnixNano()) // set to the send time below
			}
		}
		send = func(i int64) error {
			v, err := json.Marshal(w.ev(i))
			if err != nil {
				return err
			}
			return kw.WriteMessages(ctx, kafka.Message{Key: w.g.key(i), Value: v, Time: time.Now()})
		}
		closeProducer = func() { _ = kw.Close(); tr.CloseIdleConnections() }
	case "franz-go":
		cl, err := w.franzClient(kgo.ProducerLinger(0))
		if err != nil {
			return res, err
		}
		promise := func(r *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
			ack(r.Context.Value(sentKey{}).(int64))
		}
		send = func(i int64) error {
			ev := w.ev(i)
			v, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			rctx := context.WithValue(ctx, sentKey{}, ev.SentNs)
			cl.Produce(rctx, &kgo.Record{Key: w.g.key(i), Value: v}, promise)
			return nil
		}
		closeProducer = cl.Close
	default:
		return res, fmt.Errorf("system %q does not run workload f", s.System)
	}

	type sample struct{ sent, recv int64 }
	var mu sync.Mutex
	samples := make([]sample, 0, int(s.Duration.Seconds()+5)*s.Rate)
	var firstRecv atomic.Int64
	var received atomic.Int64
	handle := func(ev Event) {
		now := time.Now().UnixNano()
		firstRecv.CompareAndSwap(0, now)
		received.Add(1)
		mu.Lock()
		samples = append(samples, sample{ev.SentNs, now})
		mu.Unlock()
	}
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, handle) }()

	// Send at the fixed rate until the consumer has been receiving for a
	// 1 s warm-up plus the measured window.
	const warm = time.Second
	interval := time.Second / time.Duration(s.Rate)
	begin := time.Now()
	var am allocMeter
	var amStarted bool
	var windowStart, windowEnd int64
	var sent int64
	for i := int64(0); ; i++ {
		due := begin.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		if fr := firstRecv.Load(); fr != 0 {
			if windowStart == 0 {
				windowStart = fr + int64(warm)
				windowEnd = windowStart + int64(s.Duration)
			}
			now := time.Now().UnixNano()
			if now >= windowStart && !amStarted {
				am, amStarted = startAllocs(), true
			}
			if now >= windowEnd {
				break
			}
		} else if time.Since(begin) > time.Minute {
			return res, errors.New("consumer received nothing within a minute")
		}
		if err := send(i); err != nil {
			return res, err
		}
		sent++
	}
	// Wait for the consumer to catch up with everything sent.
	deadline := time.Now().Add(30 * time.Second)
	for received.Load() < sent && time.Now().Before(deadline) {
		select {
		case err := <-errc:
			return res, fmt.Errorf("consumer stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	stopAt := time.Now()
	closeProducer()
	if err := <-errc; err != nil {
		return res, err
	}
	vlog("%s/f: first message after %v, stopped in %v", s.System, time.Duration(firstRecv.Load()-begin.UnixNano()), time.Since(stopAt))
	if f := failed.Load(); f > 0 {
		return res, fmt.Errorf("%d messages failed", f)
	}
	if received.Load() < sent {
		res.Note = fmt.Sprintf("only %d of %d received", received.Load(), sent)
	}
	mu.Lock()
	var lat []time.Duration
	for _, sm := range samples {
		if sm.sent >= windowStart && sm.sent < windowEnd {
			lat = append(lat, time.Duration(sm.recv-sm.sent))
		}
	}
	mu.Unlock()
	n := int64(len(lat))
	if amStarted {
		res.Allocs = am.perMsg(n)
	}
	res.Msgs, res.Secs = n, s.Duration.Seconds()
	res.MsgsSec = float64(n) / s.Duration.Seconds()
	res.P50, res.P99 = percentiles(lat)
	ackMu.Lock()
	a50, a99 := percentiles(acks)
	ackMu.Unlock()
	res.Note = strings.TrimPrefix(res.Note+fmt.Sprintf("; send→ack p50 %.2f ms p99 %.2f ms", a50, a99), "; ")
	return res, nil
}

type sentKey struct{}
