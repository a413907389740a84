package produce

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go/protocol"
	"go.uber.org/zap"
)

// sink sends the batches of the partitions one broker leads. Its goroutine
// builds a request whenever it has work and fewer than MaxInFlight requests
// in flight, and writes it on the broker's produce connection; a second
// goroutine (reap) takes the responses in order. A slow or dead broker holds
// up only its own sink.
type sink struct {
	e    *Engine
	id   int32
	wake chan struct{}
	reqs chan *request // written requests, in order, for reap

	// Guarded by Engine.mu.
	addr     string
	parts    []*partition
	start    int // round-robin start of the next request
	inflight int // requests in flight
	pausedTo time.Time
	connErrs int // connection failures in a row
	// queued approximates the bytes queued on the sink's partitions: set
	// by the sink when it looks at them, raised by each record routed to
	// it since. It decides whether a new record must wake the sink.
	queued int
}

// request is one produce request in flight.
type request struct {
	batches []*batch
	pending *wire.Pending
	cancel  context.CancelFunc
	err     error // the request failed before a response could come
	sent    bool  // it may have reached the broker
}

// sinkLocked returns the sink of broker id, starting it. e.mu must be held.
func (e *Engine) sinkLocked(id int32) *sink {
	if s := e.sinks[id]; s != nil {
		return s
	}
	s := &sink{
		e:    e,
		id:   id,
		addr: e.brokers[id],
		wake: make(chan struct{}, 1),
		reqs: make(chan *request, e.cfg.MaxInFlight),
	}
	e.sinks[id] = s
	e.wg.Add(2)
	go s.run()
	go s.reap()
	return s
}

func (s *sink) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run builds and writes requests until the engine aborts.
func (s *sink) run() {
	defer s.e.wg.Done()
	defer close(s.reqs)
	e := s.e
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		now := time.Now()
		e.mu.Lock()
		req, next := s.build(now)
		addr := s.addr
		e.mu.Unlock()
		if req != nil {
			s.send(addr, req)
			continue
		}
		var tc <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			tc = timer.C
		}
		select {
		case <-s.wake:
		case <-tc:
		case <-e.ctx.Done():
			return
		}
		if tc != nil && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// requestOverhead approximates a produce request's size without batches;
// partitionOverhead a partition's entry (besides its batch).
const (
	requestOverhead   = 64
	partitionOverhead = 8
)

// build takes the batches of the next request: at most one per partition,
// at most MaxRequestBytes in all (a lone batch may be larger). It returns
// nil and the time something becomes ready when there is nothing to send.
// e.mu must be held.
func (s *sink) build(now time.Time) (*request, time.Time) {
	e := s.e
	if s.inflight >= e.cfg.MaxInFlight || s.addr == "" || len(s.parts) == 0 {
		return nil, time.Time{}
	}
	if now.Before(s.pausedTo) {
		return nil, s.pausedTo
	}
	if s.inflight > 0 && !s.worthPipelining() {
		return nil, time.Time{} // the response in flight wakes the sink
	}
	var (
		req   *request
		next  time.Time
		room  = e.cfg.MaxRequestBytes - requestOverhead
		n     = len(s.parts)
		ratio = e.ratio()
	)
	for i := 0; i < n && room > 0; i++ {
		p := s.parts[(s.start+i)%n]
		b, wait := s.take(p, now, int(float64(room)/ratio), req == nil)
		if b == nil {
			next = earliest(next, wait)
			continue
		}
		if req == nil {
			req = &request{}
		}
		b.attempts++
		b.inflight = true
		p.inflight++
		p.inflightSink = s
		req.batches = append(req.batches, b)
		room -= int(float64(b.bytes)*ratio) + len(b.p.t.name) + partitionOverhead
	}
	s.start++
	if req == nil {
		return nil, next
	}
	s.queued = 0
	for _, p := range s.parts {
		s.queued += p.queueBytes
	}
	s.inflight++
	return req, time.Time{}
}

// worthPipelining reports whether a request should be sent while another
// is in flight: only when enough is waiting (a full request's worth,
// estimated encoded, or a full batch). Otherwise records gather into the
// next request, as they would behind a single request in flight: a broker
// handles the requests of a connection one at a time, so many small
// pipelined requests cost it more than they save, while large ones keep it
// busy. (A quarter of a request, the rule before, made batches half as
// large in the throughput benchmark, ~120 records against franz-go's ~230,
// and cost the broker more CPU per record.) Batches to send again are
// always worth it. e.mu must be held.
func (s *sink) worthPipelining() bool {
	e := s.e
	waiting := 0
	for _, p := range s.parts {
		if p.next < len(p.batches) || len(p.queue) >= e.cfg.BatchRecords || p.queueBytes >= e.cfg.BatchBytes {
			return true
		}
		waiting += p.queueBytes
	}
	s.queued = waiting
	return s.enoughQueued()
}

// enoughQueued reports whether the bytes queued make a request worth
// sending while others are in flight. e.mu must be held.
func (s *sink) enoughQueued() bool {
	e := s.e
	return float64(s.queued)*e.ratio() >= float64(e.cfg.MaxRequestBytes)
}

// queuedRecord counts r, just queued on p, and reports whether the sink
// must be woken for it: only when it may now send sooner than the next
// response would wake it anyway. Waking the sink for every record made it
// take the engine's lock for every record, only to find that the records
// must gather behind the request in flight, and the contention descheduled
// the producing goroutines. e.mu must be held.
func (s *sink) queuedRecord(p *partition, r *Record) bool {
	e := s.e
	s.queued += r.size
	switch {
	case s.inflight == 0:
		return true
	case s.inflight >= e.cfg.MaxInFlight:
		return false
	}
	return len(p.queue) >= e.cfg.BatchRecords || p.queueBytes >= e.cfg.BatchBytes || s.enoughQueued()
}

// take returns p's next batch for this sink's request: the oldest one to
// send again, or a new one from the queue. It returns nil, and when p will
// be ready (zero: when something else happens), if p has nothing to send
// now or nothing that fits in room (first: the request is still empty, so
// anything fits). e.mu must be held.
func (s *sink) take(p *partition, now time.Time, room int, first bool) (*batch, time.Time) {
	e := s.e
	switch {
	case p.sink != s, p.inflight > 0 && p.inflightSink != s, p.failing:
		return nil, time.Time{}
	case now.Before(p.retryAt):
		return nil, p.retryAt
	}
	limit := 1
	if e.cfg.Idempotent && p.pipelined {
		limit = e.cfg.MaxInFlight
	}
	if p.inflight >= limit {
		return nil, time.Time{}
	}
	if p.next < len(p.batches) {
		b := p.batches[p.next]
		if b.stale || b.expired || (!first && b.bytes > room) {
			return nil, time.Time{}
		}
		p.next++
		return b, time.Time{}
	}
	if len(p.queue) == 0 || p.rechain {
		return nil, time.Time{}
	}
	if !first && p.queue[0].size > room {
		return nil, time.Time{}
	}
	flushed := e.flushing || (len(e.flushes) > 0 && p.queue[0].gen <= e.flushUpTo)
	if !p.urgent && !flushed && e.cfg.Linger > 0 && len(p.queue) < e.cfg.BatchRecords && p.queueBytes < e.cfg.BatchBytes {
		if due := p.oldest.Add(e.cfg.Linger); now.Before(due) {
			return nil, due
		}
	}
	id := noIdentity
	if e.cfg.Idempotent {
		if !e.identify(p) {
			return nil, time.Time{}
		}
		id = identity{producerID: p.producerID, epoch: p.epoch, seq: p.nextSeq}
	}

	limit = e.cfg.BatchRecords
	if p.single > 0 {
		limit = 1
	}
	k, size := 0, 0
	for k < len(p.queue) && k < limit {
		sz := p.queue[k].size
		if k > 0 && (size+sz > e.cfg.BatchBytes || size+sz > room) {
			break
		}
		size += sz
		k++
	}
	if p.single > 0 {
		p.single--
	}
	b := &batch{p: p, recs: p.unqueue(k, now), bytes: size, id: id}
	if e.cfg.Idempotent {
		p.nextSeq = incSeq(p.nextSeq, k)
	}
	p.batches = append(p.batches, b)
	p.next = len(p.batches)
	if t := p.t; t.sticky == int(p.id) {
		t.moveSticky()
	}
	return b, time.Time{}
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// send encodes and writes req. A request that cannot be written is handed
// to reap like any other, with its error.
func (s *sink) send(addr string, req *request) {
	e := s.e
	conn, err := e.cfg.Network.Conn(e.ctx, addr, wire.PurposeProduce)
	if err != nil {
		req.err = err
		s.reqs <- req
		return
	}
	if err := s.encode(req.batches); err != nil {
		req.err = err
		s.reqs <- req
		return
	}
	groupByTopic(req.batches)
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.RequestTimeout)
	pending, err := conn.Send(ctx, &produceRequest{
		acks:      e.cfg.Acks,
		timeoutMs: int32(e.cfg.RequestTimeout / time.Millisecond),
		batches:   req.batches,
	})
	req.cancel = cancel
	req.pending = pending
	req.err = err
	req.sent = true
	s.reqs <- req
}

// groupByTopic orders batches so that those of a topic are adjacent, each
// topic where its first batch was: one request entry per topic.
func groupByTopic(batches []*batch) {
	for i := 1; i < len(batches); i++ {
		if batches[i].p.t == batches[i-1].p.t {
			continue
		}
		// Bring the rest of batches[i-1]'s topic forward, keeping order.
		t := batches[i-1].p.t
		k := i
		for j := i + 1; j < len(batches); j++ {
			if batches[j].p.t == t {
				b := batches[j]
				copy(batches[k+1:j+1], batches[k:j])
				batches[k] = b
				k++
			}
		}
	}
}

// parallelEncodeBytes is the request size from which each additional
// goroutine encodes a share of the batches.
const parallelEncodeBytes = 64 << 10

// encode encodes the batches that have no bytes yet, in parallel when they
// are large enough for compression to be worth spreading over the CPUs.
func (s *sink) encode(batches []*batch) error {
	e := s.e
	var todo []*batch
	total := 0
	for _, b := range batches {
		if b.enc == nil {
			todo = append(todo, b)
			total += b.bytes
		}
	}
	now := time.Now()
	one := func(b *batch) error {
		buf := encBufs.Get().(*encBuf)
		if err := encodeBatch(buf, b.recs, e.cfg.Compression, b.id, now); err != nil {
			putEncBuf(buf)
			return err
		}
		b.enc = buf
		e.observeRatio(len(buf.out), b.bytes)
		return nil
	}
	workers := min(runtime.GOMAXPROCS(0), len(todo), max(1, total/parallelEncodeBytes))
	if workers <= 1 {
		for _, b := range todo {
			if err := one(b); err != nil {
				return err
			}
		}
		return nil
	}
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(todo) {
					return
				}
				if err := one(todo[i]); err != nil {
					errs[w] = err
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// reap takes the requests' responses in the order they were written and
// settles their batches.
func (s *sink) reap() {
	defer s.e.wg.Done()
	e := s.e
	for req := range s.reqs {
		var res protocol.Message
		err := req.err
		if err == nil {
			res, err = req.pending.Wait(e.ctx)
		}
		if req.cancel != nil {
			req.cancel()
		}
		now := time.Now()
		e.mu.Lock()
		s.inflight--
		done, wake, refresh := e.settleRequest(s, req, res, err, now)
		e.mu.Unlock()
		e.report(done)
		for _, w := range wake {
			w.signal()
		}
		s.signal()
		if refresh {
			e.signal()
		}
	}
}

func (s *sink) logger() *zap.Logger { return s.e.log.With(zap.Int32("broker", s.id)) }
