package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqkit/mq/internal/backoff"
	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchapi "github.com/segmentio/kafka-go/protocol/fetch"
	"go.uber.org/zap"
)

// sourceBackoff spaces the requests of a source whose broker failed.
var sourceBackoff = backoff.Policy{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2, Jitter: 0.2}

// source fetches the partitions one broker leads: one multi-partition Fetch
// request at a time on the broker's fetch connection. A slow or failing
// broker holds up only its own source.
type source struct {
	f      *Fetcher
	broker int32
	wake   chan struct{} // cap 1: a partition may have become fetchable

	// Guarded by f.mu.
	parts []*Partition
	rot   int // where the next request starts in parts, for fairness

	// Used by the source's goroutine only.
	lastSent time.Time
}

func newSource(f *Fetcher, broker int32) *source {
	return &source{f: f, broker: broker, wake: make(chan struct{}, 1)}
}

func (s *source) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// fetchPart is one partition as a request asked for it.
type fetchPart struct {
	p      *Partition
	offset int64
	epoch  int32
	size   int32
	gen    uint64
	first  bool // its next batch is larger than its usual fetch size
}

// run sends fetch requests until the fetcher closes.
func (s *source) run() {
	defer s.f.wg.Done()
	ctx := s.f.ctx
	failures := 0
	for {
		parts, maxWait, retry := s.collect()
		if len(parts) == 0 {
			if !s.idle(ctx, retry) {
				return
			}
			continue
		}
		s.lastSent = time.Now()
		resp, err := s.fetch(ctx, parts, maxWait)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			s.failed(parts, err, failures)
			if !sleep(ctx, sourceBackoff.Delay(failures)) {
				return
			}
			continue
		}
		failures = 0
		s.handle(resp, parts)
		if resp.ThrottleMillis > 0 { // a quota: the broker asks us to wait
			if !sleep(ctx, time.Duration(resp.ThrottleMillis)*time.Millisecond) {
				return
			}
		}
	}
}

// idle waits for a kick, or retry when it is positive; false when the
// fetcher closed.
func (s *source) idle(ctx context.Context, retry time.Duration) bool {
	var timer <-chan time.Time
	if retry > 0 {
		t := time.NewTimer(retry)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-s.wake:
	case <-timer:
	case <-ctx.Done():
		return false
	}
	return true
}

// collect picks the partitions of the next request and marks them in
// flight. It returns none when nothing should be sent now; retry is then
// when to look again (0: only when kicked).
//
// A request that only holds partitions without new data makes the broker
// wait (up to the max wait) for data, and while it waits no other request
// can be answered on the connection. So while a partition with more data
// to fetch (hot) is busy being processed (its buffer is full or not yet
// decoded), or partitions are being placed, the others are not
// long-polled: they ride along with the next request for a hot partition,
// which comes back at once with its data, or are polled without waiting at
// most once per max wait.
func (s *source) collect() (parts []fetchPart, maxWait time.Duration, retry time.Duration) {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(s.parts)
	if n == 0 {
		return nil, 0, 0
	}
	start := s.rot % n
	s.rot = start + 1
	hotReady, hotBusy := false, false
	for i := 0; i < n; i++ {
		p := s.parts[(start+i)%n]
		p.mu.Lock()
		if p.inflight || p.err != nil || p.revoked || p.paused {
			p.mu.Unlock()
			continue
		}
		size := f.budget.fetchSize(p.held, p.ratio, p.need)
		if size == 0 {
			hotBusy = hotBusy || p.hot
			p.mu.Unlock()
			continue
		}
		hotReady = hotReady || p.hot
		parts = append(parts, fetchPart{p: p, offset: p.offset, epoch: p.epoch, size: size, gen: p.gen, first: p.stuck})
		p.mu.Unlock()
	}
	maxWait = f.cfg.MaxWait
	// Partitions about to be placed (a new assignment being looked up)
	// would wait behind a long poll as well.
	if len(parts) > 0 && !hotReady && (hotBusy || f.unplaced > 0) {
		if wait := f.cfg.MaxWait - time.Since(s.lastSent); wait > 0 {
			return nil, 0, wait
		}
		maxWait = 0
	}
	for _, fp := range parts {
		fp.p.mu.Lock()
		fp.p.inflight = true
		fp.p.mu.Unlock()
	}
	// A partition whose next batch exceeds its fetch size goes first: the
	// broker returns the first partition's first batch whole.
	slices.SortStableFunc(parts, func(a, b fetchPart) int {
		switch {
		case a.first && !b.first:
			return -1
		case b.first && !a.first:
			return 1
		}
		return 0
	})
	return parts, maxWait, 0
}

// request builds the Fetch request for parts, in their order.
func (s *source) request(parts []fetchPart, maxWait time.Duration) *fetchapi.Request {
	f := s.f
	req := &fetchapi.Request{
		ReplicaID:      -1, // a consumer, not a follower
		MaxWaitTime:    int32(maxWait / time.Millisecond),
		MinBytes:       f.cfg.MinBytes,
		IsolationLevel: int8(f.cfg.Isolation),
		SessionID:      0,
		SessionEpoch:   -1, // no fetch session: every request is a full one
	}
	var total int64
	for _, fp := range parts {
		total += int64(fp.size)
		rp := fetchapi.RequestPartition{
			Partition:          fp.p.id,
			CurrentLeaderEpoch: fp.epoch,
			FetchOffset:        fp.offset,
			LogStartOffset:     -1,
			PartitionMaxBytes:  fp.size,
		}
		if k := len(req.Topics); k > 0 && req.Topics[k-1].Topic == fp.p.topic {
			req.Topics[k-1].Partitions = append(req.Topics[k-1].Partitions, rp)
			continue
		}
		// A topic seen earlier in the request gets a new entry: order
		// matters more than grouping (brokers read partitions in order).
		req.Topics = append(req.Topics, fetchapi.RequestTopic{Topic: fp.p.topic, Partitions: []fetchapi.RequestPartition{rp}})
	}
	// The partitions' sizes bound the response. The request's own bound
	// leaves room beyond their sum: the first partition's first batch comes
	// whole even when larger than its size, and must not leave the
	// partitions after it with nothing.
	req.MaxBytes = int32(min(total+f.budget.total, math.MaxInt32))
	return req
}

// fetch sends one request and decodes its response.
func (s *source) fetch(ctx context.Context, parts []fetchPart, maxWait time.Duration) (*Response, error) {
	f := s.f
	addr, ok := f.cfg.Client.BrokerAddr(s.broker)
	if !ok {
		return nil, fmt.Errorf("fetch: broker %d: not in the metadata", s.broker)
	}
	conn, err := f.cfg.Network.Conn(ctx, addr, wire.PurposeFetch)
	if err != nil {
		return nil, err
	}
	v, ok := conn.Version(protocol.Fetch)
	if !ok || v < MinVersion {
		return nil, fmt.Errorf("fetch: broker %d (%s) has no Fetch version from v%d: %w", s.broker, addr, MinVersion, kafka.UnsupportedVersion)
	}
	rctx, cancel := context.WithTimeout(ctx, maxWait+f.cfg.RequestTimeout)
	defer cancel()
	pend, err := conn.SendRaw(rctx, s.request(parts, maxWait))
	if err != nil {
		return nil, err
	}
	res, err := pend.Wait(rctx)
	if err != nil {
		return nil, err
	}
	raw, ok := res.(*wire.RawResponse)
	if !ok {
		return nil, fmt.Errorf("fetch: broker %d: unexpected response %T", s.broker, res)
	}
	resp, err := DecodeFetchResponse(raw.Version, raw.Body)
	if err != nil {
		return nil, fmt.Errorf("fetch: broker %d (%s): %w", s.broker, addr, err)
	}
	if resp.Err != nil {
		return nil, fmt.Errorf("fetch: broker %d (%s): %w", s.broker, addr, resp.Err)
	}
	return resp, nil
}

// failed handles a request that got no response: its partitions go back to
// the metadata loop (their broker may be gone, their leaders elsewhere).
func (s *source) failed(parts []fetchPart, err error, failures int) {
	f := s.f
	if failures == 1 || failures%10 == 0 {
		f.log.Warn("fetch request failed; looking up the partitions' leaders again",
			zap.Int32("broker", s.broker), zap.Int("failures", failures), zap.Error(err))
	}
	for _, fp := range parts {
		fp.p.mu.Lock()
		fp.p.inflight = false
		fp.p.mu.Unlock()
		f.unplace(fp.p, fp.gen, needLeader)
	}
}

// handle hands each partition its part of a response, decoded, or deals
// with its error. The partitions' record sets are decoded in parallel (up
// to GOMAXPROCS at a time) before the next request is built, so that every
// partition of this response can be in it.
func (s *source) handle(resp *Response, parts []fetchPart) {
	type key struct {
		topic string
		id    int32
	}
	byKey := make(map[key]*PartitionResponse, len(resp.Partitions))
	withData := 0
	for i := range resp.Partitions {
		pr := &resp.Partitions[i]
		byKey[key{pr.Topic, pr.Partition}] = pr
		if len(pr.Records) > 0 {
			withData++
		}
	}
	var jobs []fetchPart
	var prs []*PartitionResponse
	for _, fp := range parts {
		pr := byKey[key{fp.p.topic, fp.p.id}]
		if pr != nil && pr.Err == nil && len(pr.Records) > 0 {
			fp.p.hwm.Store(pr.HighWatermark)
			jobs = append(jobs, fp)
			prs = append(prs, pr)
			continue
		}
		s.deliverEmpty(fp, pr)
	}
	// Records of uncompressed batches point into the record set. With
	// several partitions in one response, such a record set gets a copy of
	// its own, so that a partition holding its records does not keep the
	// whole response (the others' bytes) alive beyond what the budget
	// counts.
	decodeAll(len(jobs), func(i int) {
		fp, pr := jobs[i], prs[i]
		retained := !compressedOnly(pr.Records)
		if retained && withData > 1 {
			cp := *pr
			cp.Records = bytes.Clone(pr.Records)
			pr = &cp
		}
		fp.p.accept(fp.p.decode(fp, pr, retained))
	})
}

// decodeAll runs decode(0..n-1) on up to GOMAXPROCS goroutines and waits.
func decodeAll(n int, decode func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := 0; i < n; i++ {
			decode(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				decode(i)
			}
		}()
	}
	wg.Wait()
}

// deliverEmpty passes a partition a response without records: its high
// watermark, or its error.
func (s *source) deliverEmpty(fp fetchPart, pr *PartitionResponse) {
	p := fp.p
	p.mu.Lock()
	p.inflight = false
	if p.gen != fp.gen || p.revoked || pr == nil {
		p.mu.Unlock()
		return
	}
	if pr.Err == nil {
		p.hwm.Store(pr.HighWatermark)
		p.hot = false
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	s.f.partitionError(p, fp, pr)
}

// recoverable partition errors: the partition moves, or is being moved.
func leaderError(err error) bool {
	for _, e := range []kafka.Error{kafka.NotLeaderForPartition, kafka.LeaderNotAvailable, kafka.FencedLeaderEpoch,
		kafka.UnknownLeaderEpoch, kafka.UnknownTopicOrPartition, kafka.ReplicaNotAvailable, kafka.KafkaStorageError,
		kafka.OffsetNotAvailable, kafka.UnknownTopicID, kafka.PreferredLeaderNotAvailable} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
