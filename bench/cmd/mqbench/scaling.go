package main

// Workload h: partition scaling. The same number of bytes in 12, 120 and
// 1,000 partitions, drained by one consumer in a new group: time from the
// consumer's start (before it joins) to the last record, peak RSS, and the
// sockets and goroutines it needed. Handlers do nothing and decode nothing
// (raw bytes), so the figures are the clients' own fetching costs.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/mqkit/mq"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// scale is one cell of workload h.
type scale struct {
	partitions int
	perPart    int64
}

func (s scale) workload() string { return "h" + strconv.Itoa(s.partitions) }

func (s scale) total() int64 { return int64(s.partitions) * s.perPart }

var fullScales = []scale{{12, 10_000}, {120, 1_000}, {1_000, 100}}

var quickScales = []scale{{12, 50}, {120, 5}, {1_000, 1}}

// scaleOf returns the cell of a workload h name.
func (b *bencher) scaleOf(w string) (scale, bool) {
	for _, s := range b.sz.h {
		if s.workload() == w {
			return s, true
		}
	}
	return scale{}, false
}

func isScaling(w string) bool { return strings.HasPrefix(w, "h") }

// sampler polls this process's goroutines and open sockets every 10 ms and
// keeps their peaks.
type sampler struct {
	stop       chan struct{}
	wg         sync.WaitGroup
	goroutines atomic.Int64
	sockets    atomic.Int64
}

func startSampler() *sampler {
	s := &sampler{stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-t.C:
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

func (s *sampler) sample() {
	if n := int64(runtime.NumGoroutine()); n > s.goroutines.Load() {
		s.goroutines.Store(n)
	}
	if n := openSockets(); n > s.sockets.Load() {
		s.sockets.Store(n)
	}
}

// finish stops sampling and returns the peaks; the sampler's own goroutine
// is not counted.
func (s *sampler) finish() (goroutines, sockets int64) {
	s.sample()
	close(s.stop)
	s.wg.Wait()
	return s.goroutines.Load() - 1, s.sockets.Load()
}

// openSockets counts this process's open socket descriptors.
func openSockets() int64 {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// drain is workload h in a worker process: consume s.N records as raw
// bytes, from the consumer's creation to the last record.
func (w *worker) drain() (result, error) {
	res := newResult()
	s := w.s
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	var count atomic.Int64
	done := make(chan struct{})
	var first, last time.Time
	var firstOnce, doneOnce sync.Once
	handle := func() {
		firstOnce.Do(func() { first = time.Now() })
		if count.Add(1) == s.N {
			doneOnce.Do(func() { last = time.Now(); close(done) })
		}
	}
	samp := startSampler()
	am := startAllocs()
	began := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- w.drainWith(ctx, handle) }()
	select {
	case <-done:
	case err := <-errc:
		samp.finish()
		return res, fmt.Errorf("consumer stopped after %d of %d records: %v", count.Load(), s.N, err)
	case <-ctx.Done():
		samp.finish()
		return res, fmt.Errorf("timeout after %d of %d records", count.Load(), s.N)
	}
	res.Allocs = am.perMsg(s.N)
	goroutines, sockets := samp.finish()
	cancel()
	if err := <-errc; err != nil {
		return res, err
	}
	res.Msgs = s.N
	res.Secs = last.Sub(began).Seconds()
	res.MsgsSec = float64(s.N) / res.Secs
	res.FirstToLast = last.Sub(first).Seconds()
	res.Goroutines = float64(goroutines)
	res.Sockets = float64(sockets)
	return res, nil
}

// drainWith runs one system's consumer until ctx ends, calling handle for
// every record.
func (w *worker) drainWith(ctx context.Context, handle func()) error {
	s := w.s
	switch s.System {
	case "mq":
		c, err := mq.NewKafkaConsumer[[]byte](s.Brokers, s.Topic, s.Group, mq.WithCodec[[]byte](mq.BytesCodec{}))
		if err != nil {
			return err
		}
		if err := c.RegisterHandlerFunc(func(context.Context, mq.Message[[]byte]) error { handle(); return nil }); err != nil {
			return err
		}
		return c.Run(ctx)
	case "kafka-go":
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:        s.Brokers,
			GroupID:        s.Group,
			Topic:          s.Topic,
			StartOffset:    kafka.FirstOffset,
			CommitInterval: time.Second,
			MaxWait:        250 * time.Millisecond,
			MaxBytes:       1 << 20,
			QueueCapacity:  1000,
		})
		defer r.Close()
		for {
			if _, err := r.ReadMessage(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			handle()
		}
	case "franz-go":
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...), kgo.ConsumerGroup(s.Group),
			kgo.ConsumeTopics(s.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AutoCommitMarks())
		if err != nil {
			return err
		}
		defer cl.Close()
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if errs := fs.Errors(); len(errs) > 0 {
				return fmt.Errorf("fetch: %v", errs[0].Err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				handle()
				cl.MarkCommitRecords(r)
			})
		}
	}
	return fmt.Errorf("system %q does not run workload %s", s.System, s.Workload)
}

// prefillScaling writes sc.perPart records to every partition of a new
// topic, evenly (partition chosen, not hashed), with franz-go.
func (b *bencher) prefillScaling(ctx context.Context, w string, sc scale) (string, error) {
	if t, ok := b.topics[w]; ok {
		return t, nil
	}
	t, err := b.newTopicN(ctx, w, sc.partitions)
	if err != nil {
		return "", err
	}
	b.topics[w] = t
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.DefaultProduceTopic(t),
		kgo.ProducerBatchCompression(kgo.SnappyCompression()), kgo.MaxBufferedRecords(100_000),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return "", err
	}
	defer cl.Close()
	var failed atomic.Pointer[error]
	for i := int64(0); i < sc.total(); i++ {
		v, _ := json.Marshal(b.gen.event(i, sampleSent))
		cl.Produce(ctx, &kgo.Record{Key: b.gen.key(i), Value: v, Partition: int32(i % int64(sc.partitions))},
			func(_ *kgo.Record, err error) {
				if err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			})
	}
	if err := cl.Flush(ctx); err != nil {
		return "", err
	}
	if err := failed.Load(); err != nil {
		return "", *err
	}
	if err := b.checkCount(ctx, t, sc.total()); err != nil {
		return "", err
	}
	b.logf("prefilled %s: %d partitions × %d records in %v", t, sc.partitions, sc.perPart, time.Since(start).Round(time.Millisecond))
	return t, nil
}

// printScaling prints workload h's own table: the figures the main table
// has no columns for.
func (b *bencher) printScaling(out io.Writer) {
	header := []string{"workload", "records per partition", "system", "drain s", "first→last s", "peak RSS MiB", "sockets", "goroutines", "vs mq (drain, RSS)"}
	var rows [][]string
	for _, w := range b.o.workloads {
		sc, ok := b.scaleOf(w)
		if !ok {
			continue
		}
		mqr, haveMQ := b.agg(w, "mq")
		for _, sys := range systemsFor(w, b.real) {
			r, ok := b.agg(w, sys)
			if !ok {
				continue
			}
			ratio := "—"
			if haveMQ {
				ratio = fmt.Sprintf("%.2f×, %.2f×", r.Secs/mqr.Secs, r.RSS/mqr.RSS)
			}
			rows = append(rows, []string{workloadTitle[w], thousands(sc.perPart), sys,
				fmtF(r.Secs, 2), fmtF(r.FirstToLast, 2), fmtF(r.RSS, 0), fmtF(r.Sockets, 0), fmtF(r.Goroutines, 0), ratio})
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(out, "Workload h (partition scaling, raw bytes, no-op handler; drain = consumer start to last record):")
	fmt.Fprintln(out)
	if b.o.markdown {
		fmt.Fprintln(out, "| "+strings.Join(header, " | ")+" |")
		fmt.Fprintln(out, "|---|---:|---|---:|---:|---:|---:|---:|---:|")
		for _, r := range rows {
			fmt.Fprintln(out, "| "+strings.Join(r, " | ")+" |")
		}
		fmt.Fprintln(out)
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintln(out)
}

// scalingTargets are issue 12's checks on the largest cell.
func (b *bencher) scalingTargets(add func(name string, known, met bool, detail string)) {
	if len(b.sz.h) == 0 {
		return
	}
	w := b.sz.h[len(b.sz.h)-1].workload()
	mq, ok1 := b.agg(w, "mq")
	fr, ok2 := b.agg(w, "franz-go")
	if !ok1 || !ok2 {
		return
	}
	limit := float64(len(b.brokers) + 3)
	add(fmt.Sprintf("(h) %s: drain ≤ 1.5× franz-go, peak RSS ≤ 1.5× franz-go, sockets ≤ brokers + 3", w), true,
		mq.Secs <= 1.5*fr.Secs && mq.RSS <= 1.5*fr.RSS && mq.Sockets <= limit,
		fmt.Sprintf("mq %.2f s = %.2f× franz-go (%.2f s), %.0f MiB = %.2f× (%.0f MiB), %.0f sockets (limit %.0f)",
			mq.Secs, mq.Secs/fr.Secs, fr.Secs, mq.RSS, mq.RSS/fr.RSS, fr.RSS, mq.Sockets, limit))
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
