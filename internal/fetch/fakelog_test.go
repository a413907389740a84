package fetch

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/mqkit/mq/internal/wire/wiretest"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchapi "github.com/segmentio/kafka-go/protocol/fetch"
	"github.com/segmentio/kafka-go/protocol/listoffsets"
)

// fakeLogs serves Fetch and ListOffsets on a wiretest cluster from
// in-memory partition logs, as a broker would: only the leader answers (the
// cluster's layout decides), leader epochs are checked, offsets out of the
// log are refused, record sets are cut at the partition's and the
// request's max bytes except that the first partition with data gets its
// first batch whole, and a fetch without data waits (up to its max wait)
// for some to be appended.
type fakeLogs struct {
	t  *testing.T
	cl *wiretest.Cluster

	mu       sync.Mutex
	logs     map[topicPartition]*fakeLog
	appended chan struct{} // closed and replaced on every append
	fetches  []fakeFetch   // every Fetch request, in the order answered
	hold     map[int32]chan struct{}
}

type fakeLog struct {
	batches  [][]byte
	starts   []int64 // base offset of each batch
	nexts    []int64 // offset after each batch
	logStart int64
	lso      int64 // -1: same as the high watermark
	aborted  []AbortedTxn
	errCode  int16 // answered for every fetch when not 0
}

func (l *fakeLog) hwm() int64 {
	if len(l.nexts) == 0 {
		return l.logStart
	}
	return l.nexts[len(l.nexts)-1]
}

// fakeFetch records what one Fetch request asked for.
type fakeFetch struct {
	Broker  int32
	Conn    int
	MaxWait time.Duration
	Parts   []fakeFetchPart
}

type fakeFetchPart struct {
	Topic    string
	ID       int32
	Offset   int64
	Epoch    int32
	MaxBytes int32
}

func newFakeLogs(t *testing.T, brokers int) *fakeLogs {
	fl := &fakeLogs{t: t, cl: wiretest.NewCluster(t, brokers), logs: make(map[topicPartition]*fakeLog),
		appended: make(chan struct{}), hold: make(map[int32]chan struct{})}
	fl.cl.Handle(protocol.Fetch, fl.fetch)
	fl.cl.Handle(protocol.ListOffsets, fl.listOffsets)
	return fl
}

// createTopic makes a topic whose partition p is led by broker p mod n.
func (fl *fakeLogs) createTopic(topic string, partitions int) {
	fl.cl.CreateTopic(topic, partitions)
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for i := 0; i < partitions; i++ {
		fl.logs[topicPartition{topic, int32(i)}] = &fakeLog{lso: -1}
	}
}

// appendBatches appends encoded batches to a partition's log.
func (fl *fakeLogs) appendBatches(topic string, p int32, batches ...testBatch) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	l := fl.logs[topicPartition{topic, p}]
	for _, b := range batches {
		enc := b.encode(fl.t)
		next := b.baseOffset + int64(int32(binary.BigEndian.Uint32(enc[23:27]))) + 1 // last offset delta
		l.batches = append(l.batches, enc)
		l.starts = append(l.starts, b.baseOffset)
		l.nexts = append(l.nexts, next)
	}
	close(fl.appended)
	fl.appended = make(chan struct{})
}

// appendRecords appends n plain records, one batch of per records at a
// time, after the partition's last offset.
func (fl *fakeLogs) appendRecords(topic string, p int32, n, per int) {
	fl.appendSized(topic, p, n, per, 0)
}

// appendSized is appendRecords with values of size bytes (0: short ones).
func (fl *fakeLogs) appendSized(topic string, p int32, n, per, size int) {
	for n > 0 {
		k := min(n, per)
		fl.mu.Lock()
		next := fl.logs[topicPartition{topic, p}].hwm()
		fl.mu.Unlock()
		b := newTestBatch(next, k)
		if size > 0 {
			for i := range b.records {
				b.records[i].value = make([]byte, size)
			}
		}
		fl.appendBatches(topic, p, b)
		n -= k
	}
}

func (fl *fakeLogs) setLog(topic string, p int32, change func(l *fakeLog)) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	change(fl.logs[topicPartition{topic, p}])
	close(fl.appended)
	fl.appended = make(chan struct{})
}

// holdBroker makes broker's fetches wait until the returned function is
// called.
func (fl *fakeLogs) holdBroker(broker int32) (release func()) {
	ch := make(chan struct{})
	fl.mu.Lock()
	fl.hold[broker] = ch
	fl.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			fl.mu.Lock()
			delete(fl.hold, broker)
			fl.mu.Unlock()
			close(ch)
		})
	}
}

func (fl *fakeLogs) requests() []fakeFetch {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return append([]fakeFetch(nil), fl.fetches...)
}

func (fl *fakeLogs) fetch(r *wiretest.Request) wiretest.Response {
	req := r.Msg.(*fetchapi.Request)
	if r.Version != 11 {
		fl.t.Errorf("fetch v%d: the fake answers v11 only", r.Version)
		return wiretest.Drop()
	}
	if req.ReplicaID != -1 || req.SessionEpoch != -1 {
		fl.t.Errorf("fetch with replica id %d, session epoch %d: want -1, -1", req.ReplicaID, req.SessionEpoch)
	}
	fl.mu.Lock()
	hold := fl.hold[r.Broker]
	fl.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return wiretest.Drop()
		}
	}
	rec := fakeFetch{Broker: r.Broker, Conn: r.Conn, MaxWait: time.Duration(req.MaxWaitTime) * time.Millisecond}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			rec.Parts = append(rec.Parts, fakeFetchPart{t.Topic, p.Partition, p.FetchOffset, p.CurrentLeaderEpoch, p.PartitionMaxBytes})
		}
	}
	deadline := time.NewTimer(rec.MaxWait)
	defer deadline.Stop()
	for {
		body, hasData, appended := fl.answer(r, req)
		if hasData || rec.MaxWait == 0 {
			fl.mu.Lock()
			fl.fetches = append(fl.fetches, rec)
			fl.mu.Unlock()
			return wiretest.Raw(body)
		}
		select {
		case <-appended:
		case <-deadline.C:
			rec.MaxWait = 0 // answer now, empty
		case <-r.Context().Done():
			return wiretest.Drop()
		}
	}
}

// answer encodes the Fetch v11 response body to req as the logs stand.
func (fl *fakeLogs) answer(r *wiretest.Request, req *fetchapi.Request) (body []byte, hasData bool, appended <-chan struct{}) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	be := binary.BigEndian
	body = be.AppendUint32(nil, 0)  // throttle
	body = be.AppendUint16(body, 0) // error
	body = be.AppendUint32(body, 0) // session id
	body = be.AppendUint32(body, uint32(len(req.Topics)))
	budget := int64(req.MaxBytes)
	minOne := true
	for _, t := range req.Topics {
		body = be.AppendUint16(body, uint16(len(t.Topic)))
		body = append(body, t.Topic...)
		body = be.AppendUint32(body, uint32(len(t.Partitions)))
		for _, p := range t.Partitions {
			l := fl.logs[topicPartition{t.Topic, p.Partition}]
			code := int16(0)
			leader, epoch := fl.cl.Leader(t.Topic, p.Partition)
			switch {
			case l == nil:
				code = int16(kafka.UnknownTopicOrPartition)
			case leader != r.Broker:
				code = int16(kafka.NotLeaderForPartition)
			case p.CurrentLeaderEpoch >= 0 && p.CurrentLeaderEpoch < epoch:
				code = int16(kafka.FencedLeaderEpoch)
			case p.CurrentLeaderEpoch > epoch:
				code = int16(kafka.UnknownLeaderEpoch)
			case l.errCode != 0:
				code = l.errCode
			case p.FetchOffset < l.logStart || p.FetchOffset > l.hwm():
				code = int16(kafka.OffsetOutOfRange)
			}
			var records []byte
			hwm, lso, start := int64(-1), int64(-1), int64(-1)
			if code == 0 {
				hwm, lso, start = l.hwm(), l.hwm(), l.logStart
				if l.lso >= 0 {
					lso = l.lso
				}
				limit := min(int64(p.PartitionMaxBytes), budget)
				for i, b := range l.batches {
					if l.nexts[i] <= p.FetchOffset {
						continue
					}
					if req.IsolationLevel == 1 && l.starts[i] >= lso {
						break
					}
					if int64(len(records)+len(b)) > limit {
						if len(records) == 0 && minOne {
							records = append(records, b...) // the first batch, whole
						} else if len(records) == 0 {
							records = append(records, b[:max(limit, 0)]...) // part of a batch
						}
						break
					}
					records = append(records, b...)
				}
				if len(records) > 0 {
					budget -= int64(len(records))
					minOne = false
					hasData = true
				}
			}
			body = be.AppendUint32(body, uint32(p.Partition))
			body = be.AppendUint16(body, uint16(code))
			body = be.AppendUint64(body, uint64(hwm))
			body = be.AppendUint64(body, uint64(lso))
			body = be.AppendUint64(body, uint64(start))
			if req.IsolationLevel == 1 && code == 0 {
				body = be.AppendUint32(body, uint32(len(l.aborted)))
				for _, a := range l.aborted {
					body = be.AppendUint64(body, uint64(a.ProducerID))
					body = be.AppendUint64(body, uint64(a.FirstOffset))
				}
			} else {
				body = be.AppendUint32(body, 0xffffffff) // null
			}
			body = be.AppendUint32(body, 0xffffffff) // preferred read replica -1
			body = be.AppendUint32(body, uint32(len(records)))
			body = append(body, records...)
			if code != 0 {
				hasData = true // errors are answered at once
			}
		}
	}
	return body, hasData, fl.appended
}

func (fl *fakeLogs) listOffsets(r *wiretest.Request) wiretest.Response {
	req := r.Msg.(*listoffsets.Request)
	res := &listoffsets.Response{}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for _, t := range req.Topics {
		rt := listoffsets.ResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rp := listoffsets.ResponsePartition{Partition: p.Partition, Timestamp: -1, Offset: -1}
			l := fl.logs[topicPartition{t.Topic, p.Partition}]
			leader, _ := fl.cl.Leader(t.Topic, p.Partition)
			switch {
			case l == nil:
				rp.ErrorCode = int16(kafka.UnknownTopicOrPartition)
			case leader != r.Broker:
				rp.ErrorCode = int16(kafka.NotLeaderForPartition)
			case p.Timestamp == OffsetEarliest:
				rp.Offset = l.logStart
			case p.Timestamp == OffsetLatest && req.IsolationLevel == 1 && l.lso >= 0:
				rp.Offset = l.lso
			case p.Timestamp == OffsetLatest:
				rp.Offset = l.hwm()
			default:
				fl.t.Errorf("list offsets by timestamp %d: not faked", p.Timestamp)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		res.Topics = append(res.Topics, rt)
	}
	return wiretest.Reply(res)
}

// newTestFetcher returns a fetcher on fl's cluster, closed (with its pool)
// when the test ends.
func newTestFetcher(t *testing.T, fl *fakeLogs, cfg Config) *Fetcher {
	pool := wire.NewPool(&wire.Dialer{ClientID: "fetch-test"})
	cfg.Network = pool
	cfg.Client = wire.NewClient(pool, fl.cl.Addrs())
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 50 * time.Millisecond
	}
	f := New(cfg)
	t.Cleanup(func() {
		f.Close()
		_ = pool.Close()
	})
	return f
}
