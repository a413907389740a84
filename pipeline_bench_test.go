package mq

import (
	"context"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/fetch"
	"github.com/mqkit/mq/internal/offsets"
)

type benchEvent struct{ ID int }

// nopCodec decodes without allocating, so the benchmarks measure the
// consumer's own per-message path.
var nopCodec = CodecFuncs[benchEvent]{
	EncodeFunc: func(benchEvent) ([]byte, error) { return nil, nil },
	DecodeFunc: func([]byte) (benchEvent, error) { return benchEvent{ID: 1}, nil },
}

func benchProcessor(b *testing.B, handlers int, opts ...ConsumerOption) (*processor[benchEvent], *partitionState) {
	b.Helper()
	c, err := NewKafkaConsumer[benchEvent]([]string{"127.0.0.1:9092"}, "t", "g", append([]ConsumerOption{WithCodec[benchEvent](nopCodec)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < handlers; i++ {
		if err := c.RegisterHandlerFunc(func(context.Context, Message[benchEvent]) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	s := &session[benchEvent]{c: c, handlers: c.handlers, runCtx: ctx, stop: func() {}, userCtx: ctx,
		subs: []subscription{{topic: "t", main: "t"}}}
	ps := &partitionState{topic: "t", main: "t", tracker: offsets.New(-1)}
	return &processor[benchEvent]{s: s, soft: ctx, hard: ctx, log: c.log}, ps
}

// BenchmarkDispatch measures the per-message consumer path without the codec
// and without fetching: tracker bookkeeping, the handler pipeline (with the
// panic-recovery middleware) and counters.
func BenchmarkDispatch(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(map[int]string{1: "handlers=1", 2: "handlers=2"}[n], func(b *testing.B) {
			p, ps := benchProcessor(b, n)
			rec := fetch.Record{Value: []byte(`{}`), Timestamp: time.Now()}
			m := inbound{ps: ps, rec: &rec}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rec.Offset = int64(i)
				ps.tracker.Begin(rec.Offset)
				if !p.process(m) {
					b.Fatal("not processed")
				}
				ps.tracker.Done(rec.Offset)
			}
		})
	}
}

// BenchmarkBatchDispatch is BenchmarkDispatch for a batch handler: batches
// of 100 messages, reported per message.
func BenchmarkBatchDispatch(b *testing.B) { benchBatchDispatch(b) }

// BenchmarkBatchDispatchObserved is BenchmarkBatchDispatch with an observer
// that does nothing: the cost of starting and finishing each message's
// processing around its batch.
func BenchmarkBatchDispatchObserved(b *testing.B) { benchBatchDispatch(b, WithObserver(NopObserver{})) }

func benchBatchDispatch(b *testing.B, opts ...ConsumerOption) {
	const size = 100
	p, ps := benchProcessor(b, 0, opts...)
	if err := p.s.c.RegisterBatchHandlerFunc(func(context.Context, []Message[benchEvent]) error { return nil }); err != nil {
		b.Fatal(err)
	}
	p.s.handlers = p.s.c.handlers
	recs := make([]fetch.Record, size)
	batch := make([]inbound, size)
	for i := range recs {
		recs[i] = fetch.Record{Value: []byte(`{}`), Timestamp: time.Now()}
		batch[i] = inbound{ps: ps, rec: &recs[i]}
	}
	b.ReportAllocs()
	b.ResetTimer()
	off := int64(0)
	var buf batchBuf[benchEvent]
	for i := 0; i < b.N; i += size {
		for k := range recs {
			recs[k].Offset = off
			ps.tracker.Begin(off)
			off++
		}
		if !p.processBatch(batch, &buf) {
			b.Fatal("not processed")
		}
	}
}
