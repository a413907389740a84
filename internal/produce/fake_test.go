package produce

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/mqkit/mq/internal/wire/wiretest"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/initproducerid"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

// fakeCluster is a wiretest cluster whose brokers keep a log per partition
// with Kafka's idempotence rules (producer state per partition: next
// sequence, the last five batches for deduplication), check leadership, and
// let a test inject faults per partition or per request.
type fakeCluster struct {
	*wiretest.Cluster
	t testing.TB

	mu      sync.Mutex
	logs    map[partitionKey]*fakeLog
	nextPID int64

	// before may answer a partition's batch with an error code instead of
	// appending it (ok false: append as usual).
	before func(r *wiretest.Request, tp partitionKey, b *fakeBatch) (code int16, ok bool)
	// after may answer a partition's batch with an error code after
	// appending it (0: as usual).
	after func(r *wiretest.Request, tp partitionKey, b *fakeBatch) int16
	// respond may change a produce request's response after the appends
	// (drop it, hold it back).
	respond func(r *wiretest.Request, res wiretest.Response) wiretest.Response
	// initPID may answer InitProducerId with an error code.
	initPID func(r *wiretest.Request) int16
}

type fakeLog struct {
	records   []fakeRecord
	producers map[int64]*fakeProducer
	batches   int // appended batches
}

type fakeProducer struct {
	epoch   int16
	nextSeq int32
	recent  []fakeBatchMeta // the last five appended batches
}

type fakeBatchMeta struct {
	seq    int32
	n      int
	offset int64
}

type fakeBatch struct {
	producerID int64
	epoch      int16
	seq        int32
	recs       []fakeRecord
}

type fakeRecord struct {
	key, value []byte // nil: null
	headers    []kafka.Header
	time       time.Time
	producerID int64
	seq        int32
}

func newFakeCluster(t testing.TB, brokers int) *fakeCluster {
	f := &fakeCluster{Cluster: wiretest.NewCluster(t, brokers), t: t, logs: make(map[partitionKey]*fakeLog), nextPID: 1000}
	f.Handle(protocol.Produce, f.handleProduce)
	f.Handle(protocol.InitProducerId, f.handleInitProducerID)
	return f
}

func (f *fakeCluster) setBefore(fn func(r *wiretest.Request, tp partitionKey, b *fakeBatch) (int16, bool)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.before = fn
}

func (f *fakeCluster) setAfter(fn func(r *wiretest.Request, tp partitionKey, b *fakeBatch) int16) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.after = fn
}

func (f *fakeCluster) setRespond(fn func(r *wiretest.Request, res wiretest.Response) wiretest.Response) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.respond = fn
}

func (f *fakeCluster) setInitPID(fn func(r *wiretest.Request) int16) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.initPID = fn
}

func (f *fakeCluster) handleInitProducerID(r *wiretest.Request) wiretest.Response {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.initPID != nil {
		if code := f.initPID(r); code != 0 {
			return wiretest.Reply(&initproducerid.Response{ErrorCode: code, ProducerID: -1, ProducerEpoch: -1})
		}
	}
	f.nextPID++
	return wiretest.Reply(&initproducerid.Response{ProducerID: f.nextPID, ProducerEpoch: 0})
}

func (f *fakeCluster) handleProduce(r *wiretest.Request) wiretest.Response {
	req := r.Msg.(*produceAPI.Request)
	res := &produceAPI.Response{}
	for _, t := range req.Topics {
		rt := produceAPI.ResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, f.append(r, partitionKey{t.Topic, p.Partition}, p.RecordSet))
		}
		res.Topics = append(res.Topics, rt)
	}
	out := wiretest.Reply(res)
	f.mu.Lock()
	respond := f.respond
	f.mu.Unlock()
	if respond != nil {
		out = respond(r, out)
	}
	return out
}

// append applies one partition's batch as Kafka would.
func (f *fakeCluster) append(r *wiretest.Request, tp partitionKey, rs protocol.RecordSet) produceAPI.ResponsePartition {
	rp := produceAPI.ResponsePartition{Partition: tp.partition, BaseOffset: -1, LogAppendTime: -1, LogStartOffset: 0}
	b, err := decodeFakeBatch(rs)
	if err != nil {
		f.t.Errorf("fake broker %d: decoding the batch of %v: %v", r.Broker, tp, err)
		rp.ErrorCode = int16(kafka.InvalidMessage)
		return rp
	}
	if leader, _ := f.Leader(tp.topic, tp.partition); leader != r.Broker {
		rp.ErrorCode = int16(kafka.NotLeaderForPartition)
		return rp
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.before != nil {
		if code, ok := f.before(r, tp, b); ok {
			rp.ErrorCode = code
			return rp
		}
	}
	l := f.logs[tp]
	if l == nil {
		l = &fakeLog{producers: make(map[int64]*fakeProducer)}
		f.logs[tp] = l
	}
	if b.producerID >= 0 {
		pr := l.producers[b.producerID]
		switch {
		case pr == nil: // unknown producer: any first sequence (Kafka 2.5+)
			pr = &fakeProducer{epoch: b.epoch}
			l.producers[b.producerID] = pr
		case b.epoch < pr.epoch:
			rp.ErrorCode = int16(kafka.InvalidProducerEpoch)
			return rp
		case b.epoch > pr.epoch:
			if b.seq != 0 {
				rp.ErrorCode = int16(kafka.OutOfOrderSequenceNumber)
				return rp
			}
			pr.epoch, pr.recent = b.epoch, nil
		case b.seq != pr.nextSeq:
			for _, m := range pr.recent {
				if m.seq == b.seq && m.n == len(b.recs) {
					rp.BaseOffset = m.offset // a duplicate: not appended again
					return rp
				}
			}
			rp.ErrorCode = int16(kafka.OutOfOrderSequenceNumber)
			return rp
		}
		pr.nextSeq = incSeq(b.seq, len(b.recs))
		pr.recent = append(pr.recent, fakeBatchMeta{seq: b.seq, n: len(b.recs), offset: int64(len(l.records))})
		if len(pr.recent) > 5 {
			pr.recent = pr.recent[1:]
		}
	}
	rp.BaseOffset = int64(len(l.records))
	l.records = append(l.records, b.recs...)
	l.batches++
	if f.after != nil {
		if code := f.after(r, tp, b); code != 0 {
			rp.ErrorCode, rp.BaseOffset = code, -1
		}
	}
	return rp
}

func decodeFakeBatch(rs protocol.RecordSet) (*fakeBatch, error) {
	var rb *protocol.RecordBatch
	switch r := rs.Records.(type) {
	case *protocol.RecordStream:
		if len(r.Records) != 1 {
			return nil, fmt.Errorf("%d batches, want 1", len(r.Records))
		}
		rb, _ = r.Records[0].(*protocol.RecordBatch)
	case *protocol.RecordBatch:
		rb = r
	}
	if rb == nil {
		return nil, fmt.Errorf("record set of type %T", rs.Records)
	}
	b := &fakeBatch{producerID: rb.ProducerID, epoch: rb.ProducerEpoch, seq: rb.BaseSequence}
	for {
		rec, err := rs.Records.ReadRecord()
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		fr := fakeRecord{headers: rec.Headers, time: rec.Time, producerID: rb.ProducerID, seq: incSeq(rb.BaseSequence, len(b.recs))}
		if fr.key, err = readBytes(rec.Key); err != nil {
			return nil, err
		}
		if fr.value, err = readBytes(rec.Value); err != nil {
			return nil, err
		}
		b.recs = append(b.recs, fr)
	}
}

func readBytes(b protocol.Bytes) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	data, err := io.ReadAll(b)
	if data == nil {
		data = []byte{}
	}
	return data, err
}

// log returns a copy of a partition's records.
func (f *fakeCluster) log(topic string, partition int32) []fakeRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.logs[partitionKey{topic, partition}]
	if l == nil {
		return nil
	}
	return append([]fakeRecord(nil), l.records...)
}

// ----- engine helpers -----

// outcomes collects what Done reports.
type outcomes struct {
	mu   sync.Mutex
	errs map[*Record]error
	seen map[*Record]int
	ch   chan struct{} // signalled on every report
}

func newOutcomes() *outcomes {
	return &outcomes{errs: make(map[*Record]error), seen: make(map[*Record]int), ch: make(chan struct{}, 1)}
}

func (o *outcomes) done(r *Record, err error) {
	o.mu.Lock()
	o.errs[r] = err
	o.seen[r]++
	o.mu.Unlock()
	select {
	case o.ch <- struct{}{}:
	default:
	}
}

// reported returns whether r was reported, and its error.
func (o *outcomes) reported(r *Record) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, ok := o.seen[r]
	if n > 1 {
		panic(fmt.Sprintf("record reported %d times", n))
	}
	return ok, o.errs[r]
}

func (o *outcomes) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.seen)
}

// wait waits until every record in recs is reported.
func (o *outcomes) wait(t testing.TB, recs []*Record) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, r := range recs {
			if ok, _ := o.reported(r); !ok {
				return false
			}
		}
		return true
	}, 30*time.Second, time.Millisecond, "records not all reported")
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range recs {
		require.Equal(t, 1, o.seen[r], "record %s reported %d times", r.Key, o.seen[r])
	}
}

// newEngine builds an engine on a pool to the fake cluster, closed with the
// test.
func newEngine(t testing.TB, f *fakeCluster, o *outcomes, mod func(*Config)) *Engine {
	t.Helper()
	pool := wire.NewPool(&wire.Dialer{ClientID: "produce-test", DialTimeout: 5 * time.Second})
	cfg := Config{
		Network:      pool,
		Bootstrap:    f.Addrs(),
		Acks:         -1,
		Idempotent:   true,
		RetryBackoff: 10 * time.Millisecond,
		Done:         o.done,
	}
	if os.Getenv("PRODUCE_DEBUG") != "" {
		cfg.Logger = zaptest.NewLogger(t)
	}
	if mod != nil {
		mod(&cfg)
	}
	e, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Close(ctx)
		_ = pool.Close()
	})
	return e
}

// produceN produces n records with keys "<prefix>-<i>" to topic.
func produceN(t testing.TB, e *Engine, topic, prefix string, n int, urgent bool) []*Record {
	t.Helper()
	recs := make([]*Record, n)
	for i := range recs {
		recs[i] = &Record{Topic: topic, Key: []byte(fmt.Sprintf("%s-%d", prefix, i)), Value: []byte(fmt.Sprintf("v%d", i))}
		require.NoError(t, e.Produce(context.Background(), recs[i], urgent))
	}
	return recs
}
