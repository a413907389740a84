package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqtest"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// (h) one slow broker: three embedded kfake brokers (whatever -brokers
// says), one of which answers every produce request late. 64 goroutines
// send synchronously, each to one partition; the latency of the sends to
// the two healthy brokers' partitions is what the row reports.

// slowCluster is the three-broker cluster of workload h, kept for all its
// runs. slowNode is the broker that answers produce requests late (-1:
// none).
type slowCluster struct {
	cl       *mqtest.Cluster
	kf       *kfake.Cluster
	delay    time.Duration
	slowNode atomic.Int32
}

func newSlowCluster(ctx context.Context, delay time.Duration) (*slowCluster, error) {
	cl, err := mqtest.NewCluster(ctx, mqtest.WithMode(mqtest.ModeEmbedded), mqtest.WithKfakeOptions(kfake.NumBrokers(3)))
	if err != nil {
		return nil, err
	}
	sc := &slowCluster{cl: cl, kf: cl.Kfake(), delay: delay}
	sc.slowNode.Store(-1)
	sc.kf.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		sc.kf.KeepControl()
		if n := sc.slowNode.Load(); n >= 0 && sc.kf.CurrentNode() == n {
			sc.kf.SleepControl(func() { time.Sleep(sc.delay) })
		}
		return nil, nil, false
	})
	return sc, nil
}

func (sc *slowCluster) close() { _ = sc.cl.Close() }

// runSlowBroker runs one system on workload h.
func (b *bencher) runSlowBroker(ctx context.Context, s spec) (result, error) {
	if b.slow == nil {
		sc, err := newSlowCluster(ctx, b.sz.hDelay)
		if err != nil {
			return newResult(), err
		}
		b.slow = sc
	}
	sc := b.slow
	topic := mqtest.UniqueName("mqbench-h")
	if err := sc.cl.CreateTopic(ctx, topic, b.sz.partitions); err != nil {
		return newResult(), err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = sc.cl.DeleteTopic(dctx, topic)
		cancel()
	}()
	// kfake places leaders at random: the slow broker is the one leading
	// closest to a third of the partitions, so that runs compare alike.
	led := map[int32][]int32{}
	for p := int32(0); p < int32(b.sz.partitions); p++ {
		l := sc.kf.LeaderFor(topic, p)
		led[l] = append(led[l], p)
	}
	slow, third := int32(-1), b.sz.partitions/3
	for _, id := range []int32{0, 1, 2} {
		if slow < 0 || abs(len(led[id])-third) < abs(len(led[slow])-third) {
			slow = id
		}
	}
	s.Slow = led[slow]
	s.Brokers, s.Topic, s.Conc, s.Duration, s.Parts = sc.cl.Addrs(), topic, b.sz.conc, b.sz.hDur, b.sz.partitions
	sc.slowNode.Store(slow)
	defer sc.slowNode.Store(-1)
	return runGoWorker(ctx, s, b.log)
}

// produceSlowBroker is the worker's side of workload h.
func (w *worker) produceSlowBroker() (result, error) {
	res := newResult()
	var send func(ctx context.Context, part int32, i int64) error
	switch w.s.System {
	case "mq":
		p, err := w.mqProducer(mq.WithManualPartitioning(true), mq.WithCloseTimeout(time.Second))
		if err != nil {
			return res, err
		}
		defer p.Close()
		send = func(ctx context.Context, part int32, i int64) error {
			_, err := p.SendMessage(ctx, mq.Message[Event]{Partition: int(part), Key: w.g.key(i), Value: w.ev(i)})
			return err
		}
	case "franz-go":
		cl, err := w.franzClient(kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			return res, err
		}
		defer cl.Close()
		send = func(ctx context.Context, part int32, i int64) error {
			v, err := json.Marshal(w.ev(i))
			if err != nil {
				return err
			}
			return cl.ProduceSync(ctx, &kgo.Record{Partition: part, Key: w.g.key(i), Value: v}).FirstErr()
		}
	default:
		return res, fmt.Errorf("system %q does not run workload h", w.s.System)
	}
	parts := max(w.s.Parts, 1)
	var i atomic.Int64
	for p := int32(0); p < int32(parts); p++ { // connections and metadata, not timed
		if !slices.Contains(w.s.Slow, p) {
			if err := send(w.ctx, p, i.Add(1)); err != nil {
				return res, err
			}
		}
	}
	ctx, cancel := context.WithTimeout(w.ctx, w.s.Duration)
	defer cancel()
	conc := max(w.s.Conc, 1)
	lats := make([][]time.Duration, conc)
	slowDone := make([]int, conc)
	errs := make([]error, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for k := 0; k < conc; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			part := int32(k % parts)
			slow := slices.Contains(w.s.Slow, part)
			for ctx.Err() == nil {
				t := time.Now()
				if err := send(ctx, part, i.Add(1)); err != nil {
					if ctx.Err() == nil {
						errs[k] = err
					}
					return
				}
				if slow {
					slowDone[k]++
				} else {
					lats[k] = append(lats[k], time.Since(t))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	var all []time.Duration
	nslow := 0
	for k := range lats {
		all = append(all, lats[k]...)
		nslow += slowDone[k]
	}
	res.Msgs, res.Secs = int64(len(all)), elapsed.Seconds()
	res.MsgsSec = float64(len(all)) / elapsed.Seconds()
	res.P50, res.P99 = percentiles(all)
	res.Note = fmt.Sprintf("%d sends to the slow broker's %d partitions completed", nslow, len(w.s.Slow))
	return res, nil
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
