package main

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mqkit/mq/chaos/check"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// injector answers or delays requests of the embedded kfake broker
// according to the current phase, with kfake's control hooks (ControlKey +
// KeepControl to stay installed, SleepControl to delay a response without
// blocking the broker).
type injector struct {
	kf    *kfake.Cluster
	topic string

	mu      sync.Mutex
	phase   string
	release chan struct{} // closed when the phase changes: wakes black-holed requests
	seen    map[string]int
	counts  map[string]int
}

func newInjector(kf *kfake.Cluster, topic string) *injector {
	return &injector{kf: kf, topic: topic, release: make(chan struct{}), seen: map[string]int{}, counts: map[string]int{}}
}

func (in *injector) setPhase(p string) {
	in.mu.Lock()
	old := in.release
	in.phase = p
	in.release = make(chan struct{})
	in.mu.Unlock()
	close(old)
}

func (in *injector) count(what string) {
	in.mu.Lock()
	in.counts[what]++
	in.mu.Unlock()
}

func (in *injector) snapshot() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[string]int, len(in.counts))
	for k, v := range in.counts {
		out[k] = v
	}
	return out
}

// install adds one kept control function per key (-1: every request).
func (in *injector) install(keys ...int16) {
	for _, k := range keys {
		in.kf.ControlKey(k, func(req kmsg.Request) (kmsg.Response, error, bool) {
			in.kf.KeepControl()
			return in.handle(k, req)
		})
	}
}

var errDropped = errors.New("chaos: connection dropped")

// handle decides what to do with one request. Returning handled=false lets
// the broker process it normally (possibly after a SleepControl delay).
func (in *injector) handle(key int16, req kmsg.Request) (kmsg.Response, error, bool) {
	in.mu.Lock()
	phase, release := in.phase, in.release
	name := kmsg.NameForKey(req.Key())
	in.seen[phase+"/"+name]++
	n := in.seen[phase+"/"+name]
	in.mu.Unlock()
	if phase == "" {
		return nil, nil, false
	}
	k := kmsg.Key(req.Key())
	isProduce := k == kmsg.Produce && in.producesTo(req)
	// Group requests of the consumer. kafka-go's consumer group sends
	// OffsetFetch v1; the orchestrator's offset poller (a newer version) is
	// spared so that it keeps sampling.
	groupReq := k == kmsg.JoinGroup || k == kmsg.SyncGroup || k == kmsg.Heartbeat ||
		k == kmsg.OffsetCommit || (k == kmsg.OffsetFetch && req.GetVersion() <= 1) || k == kmsg.FindCoordinator
	if key == -1 {
		// The catch-all control only acts in the "down" phase.
		if phase == "down" {
			in.count("down: " + name + " dropped")
			return nil, errDropped, true
		}
		return nil, nil, false
	}
	switch phase {
	case "nlfp": // every 2nd produce request: NOT_LEADER_FOR_PARTITION
		if isProduce && n%2 == 0 {
			in.count("produce NOT_LEADER_FOR_PARTITION")
			return produceError(req.(*kmsg.ProduceRequest), kerr.NotLeaderForPartition.Code), nil, true
		}
	case "not-coordinator": // every 3rd group request: NOT_COORDINATOR
		if groupReq && n%3 == 0 {
			in.count(name + " NOT_COORDINATOR")
			return errorResponse(req, kerr.NotCoordinator.Code), nil, true
		}
	case "load-in-progress": // every 2nd: COORDINATOR_LOAD_IN_PROGRESS
		if groupReq && k != kmsg.OffsetCommit && n%2 == 0 {
			in.count(name + " COORDINATOR_LOAD_IN_PROGRESS")
			return errorResponse(req, kerr.CoordinatorLoadInProgress.Code), nil, true
		}
	case "timeouts": // delayed responses: beyond the clients' request timeouts
		var d time.Duration
		switch {
		case isProduce && n%4 == 0:
			d = 1500 * time.Millisecond // producer write timeout is 1s
		case k == kmsg.Fetch && n%5 == 0:
			d = 1500 * time.Millisecond
		case k == kmsg.OffsetCommit && n == 2:
			d = 6 * time.Second // once: the consumer's commit timeout is 5s
		}
		if d > 0 {
			in.count(name + " delayed " + fmtDur(d))
			in.kf.SleepControl(func() { time.Sleep(d) })
		}
		return nil, nil, false
	case "commit-fail": // two OffsetCommits out of three fail
		if k == kmsg.OffsetCommit && n%3 != 0 {
			codes := []*kerr.Error{kerr.RequestTimedOut, kerr.CoordinatorNotAvailable, kerr.UnknownServerError, kerr.RebalanceInProgress}
			e := codes[n%len(codes)]
			in.count("OffsetCommit " + e.Message)
			return errorResponse(req, e.Code), nil, true
		}
	case "sync-rebalancing": // every SyncGroup: REBALANCE_IN_PROGRESS (a group that keeps rebalancing)
		if k == kmsg.SyncGroup {
			in.count("SyncGroup REBALANCE_IN_PROGRESS")
			return errorResponse(req, kerr.RebalanceInProgress.Code), nil, true
		}
	case "slow": // every produce request takes 200ms
		if isProduce {
			in.count("produce delayed 200ms")
			in.kf.SleepControl(func() { time.Sleep(200 * time.Millisecond) })
		}
	case "blackhole": // produce requests hang until the phase ends, then the connection drops
		if isProduce {
			in.count("produce black-holed")
			in.kf.SleepControl(func() {
				select {
				case <-release:
				case <-time.After(time.Minute):
				}
			})
			return nil, errDropped, true
		}
	}
	return nil, nil, false
}

func (in *injector) producesTo(req kmsg.Request) bool {
	pr, ok := req.(*kmsg.ProduceRequest)
	if !ok {
		return false
	}
	for _, t := range pr.Topics {
		if t.Topic == in.topic {
			return true
		}
	}
	return false
}

func produceError(pr *kmsg.ProduceRequest, code int16) kmsg.Response {
	resp := pr.ResponseKind().(*kmsg.ProduceResponse)
	for _, tp := range pr.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = tp.Topic
		for _, p := range tp.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = code
			rp.BaseOffset = -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// errorResponse builds the response to req that fails it with code: the
// per-partition codes of offset commits and fetches, the top-level code of
// the other group requests.
func errorResponse(req kmsg.Request, code int16) kmsg.Response {
	switch r := req.(type) {
	case *kmsg.OffsetCommitRequest:
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	case *kmsg.OffsetFetchRequest:
		resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.ErrorCode = code
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition = p
				rp.Offset = -1
				rp.ErrorCode = code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		for _, g := range r.Groups {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group = g.Group
			rg.ErrorCode = code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	case *kmsg.FindCoordinatorRequest:
		resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
		resp.ErrorCode = code
		resp.NodeID = -1
		for _, key := range r.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key = key
			c.NodeID = -1
			c.ErrorCode = code
			resp.Coordinators = append(resp.Coordinators, c)
		}
		return resp
	}
	resp := req.ResponseKind()
	v := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode")
	if v.IsValid() && v.CanSet() {
		v.SetInt(int64(code))
	}
	return resp
}

func describeCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func sumCounts(m map[string]int, match func(string) bool) int {
	n := 0
	for k, v := range m {
		if match(k) {
			n += v
		}
	}
	return n
}

// ---------------------------------------------------------------- 5

func runProtocolFaults(s *sc) {
	b, err := newKfakeBroker(s.ctx)
	if err != nil {
		s.fatalf("broker: %v", err)
	}
	defer b.close()
	s.res.broker, s.res.brokerVersion = b.kind, b.version
	const parts = 3
	topic, group := s.uniqueName("t"), s.uniqueName("g")
	if err := createTopic(s.ctx, b, topic, parts); err != nil {
		s.fatalf("create topic: %v", err)
	}
	// commit-fail comes while the group is healthy; timeouts last, since a
	// commit delayed past the commit timeout also stalls the heartbeats
	// that share its connection and costs the member its session.
	phases := []string{"nlfp", "commit-fail", "not-coordinator", "load-in-progress", "timeouts"}
	cycles := s.size(1, 3)
	phaseDur := s.dur(3*time.Second, 6*time.Second)
	gap := time.Second // fault-free between phases
	stream := time.Duration(len(phases)*cycles)*(phaseDur+gap) + 3*time.Second
	rate := 500.0
	n := int(rate * stream.Seconds())

	inj := newInjector(b.kf, topic)
	inj.install(int16(kmsg.Produce), int16(kmsg.Fetch), int16(kmsg.JoinGroup), int16(kmsg.SyncGroup),
		int16(kmsg.Heartbeat), int16(kmsg.OffsetCommit), int16(kmsg.OffsetFetch), int16(kmsg.FindCoordinator))
	pcfg := s.producerCfg(topic, b, n, rate)
	pcfg.WriteTimeout = time.Second
	pcfg.DeliveryTimeout = 60 * time.Second // retries must hold through every phase
	ccfg := s.consumerCfg(topic, group, b)
	ccfg.CommitInterval = 250 * time.Millisecond // more commits to fail
	poller := startOffsetPoller(s.ctx, b.addrs, group, topic, parts, 200*time.Millisecond)
	prod := s.worker(pcfg)
	cons := s.worker(ccfg)
	s.sleep(2 * time.Second)
	perPhase := map[string]map[string]int{}
	for c := 0; c < cycles; c++ {
		for _, p := range phases {
			before := inj.snapshot()
			inj.setPhase(p)
			s.logf("phase %s", p)
			s.sleep(phaseDur)
			after := inj.snapshot()
			if perPhase[p] == nil {
				perPhase[p] = map[string]int{}
			}
			for k, v := range after {
				if d := v - before[k]; d > 0 {
					perPhase[p][k] += d
				}
			}
			s.logf("phase %s injected: %s", p, describeCounts(perPhase[p]))
			inj.setPhase("")
			s.sleep(gap)
		}
	}
	inj.setPhase("")
	s.waitProducer(prod, 3*stream+60*time.Second)
	took, err := waitDrained(s.ctx, b, group, topic, s.dur(60*time.Second, 180*time.Second))
	s.require(err == nil, "drain: %v", err)
	s.require(cons.alive(), "the consumer process exited during the faults: %s (see %s)", cons.describeExit(), cons.LogPath)
	s.stopConsumer(cons)
	samples, _ := poller.finish()

	// Probe: a consumer stopped (SIGTERM) while its group keeps rebalancing
	// (every SyncGroup answered REBALANCE_IN_PROGRESS, as in a long rolling
	// deploy). The README promises that cancelling Run's context makes Run
	// return nil.
	pcfgc := ccfg
	pcfgc.Name, pcfgc.Group = "consumer-probe", s.uniqueName("gprobe")
	inj.setPhase("sync-rebalancing")
	probe := s.worker(pcfgc)
	s.sleep(2500 * time.Millisecond)
	probeOK := probe.stop(25 * time.Second)
	inj.setPhase("")
	pcode, psig := probe.exit()
	probeErr := ""
	if cs, err := readJSON[ConsumerSummary](probe.Cfg.Summary); err == nil {
		probeErr = cs.RunError
	}
	s.logf("probe: consumer stopped while its group was rebalancing: %s %s", probe.describeExit(), probeErr)
	s.require(probeOK && pcode == 0 && psig == "",
		"graceful stop while the group was rebalancing: Run returned %q (%s) instead of nil (README: cancelling the context makes Run return nil; consumer.go Run returns the last join error when it never joined, and counts the retriable membership errors of a normal join — REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID — as a failure to join)",
		probeErr, probe.describeExit())
	if probeErr == "" {
		s.fig("stop while rebalancing", "Run nil")
	} else {
		s.fig("stop while rebalancing", "Run error")
	}

	c := s.collect(b, topic, group, prod, []*proc{cons}, false, samples)
	s.standard(c)
	s.require(c.rep.SendFailed == 0, "%d sends failed although retries should have held (delivery timeout %v)", c.rep.SendFailed, pcfg.DeliveryTimeout)
	for _, p := range phases {
		total := sumCounts(perPhase[p], func(string) bool { return true })
		s.require(total > 0, "phase %s injected no fault (nothing exercised)", p)
	}
	all := inj.snapshot()
	s.fig("NLFP", "%d", sumCounts(all, func(k string) bool { return strings.Contains(k, "NOT_LEADER") }))
	s.fig("NOT_COORDINATOR", "%d", sumCounts(all, func(k string) bool { return strings.Contains(k, "NOT_COORDINATOR") }))
	s.fig("LOAD_IN_PROGRESS", "%d", sumCounts(all, func(k string) bool { return strings.Contains(k, "LOAD_IN_PROGRESS") }))
	s.fig("delayed", "%d", sumCounts(all, func(k string) bool { return strings.Contains(k, "delayed") }))
	s.fig("commit errors", "%d", sumCounts(all, func(k string) bool {
		return strings.HasPrefix(k, "OffsetCommit ") && !strings.Contains(k, "delayed") && !strings.Contains(k, "NOT_COORDINATOR")
	}))
	if cs := c.consSums[cons.Name]; cs != nil {
		s.fig("rebalances", "%d", cs.Stats.Rebalances)
	}
	s.fig("drain", "%s", fmtDur(took))
	for _, p := range phases {
		s.res.notes = append(s.res.notes, fmt.Sprintf("phase %s: %s", p, describeCounts(perPhase[p])))
	}
}

// ---------------------------------------------------------------- 7

func runAsyncPressure(s *sc) {
	b, err := newKfakeBroker(s.ctx)
	if err != nil {
		s.fatalf("broker: %v", err)
	}
	defer b.close()
	s.res.broker, s.res.brokerVersion = b.kind, b.version
	const parts = 3
	topic := s.uniqueName("t")
	if err := createTopic(s.ctx, b, topic, parts); err != nil {
		s.fatalf("create topic: %v", err)
	}
	type phase struct {
		name string
		d    time.Duration
	}
	phases := []phase{
		{"", s.dur(1500*time.Millisecond, 5*time.Second)},
		{"slow", s.dur(4*time.Second, 20*time.Second)},
		{"blackhole", s.dur(3*time.Second, 15*time.Second)},
		{"down", s.dur(3*time.Second, 15*time.Second)},
		{"", s.dur(3*time.Second, 10*time.Second)},
		// The broker black-holes again from just before the producer stops
		// sending until it has exited: Close must give up after its
		// timeout and report every message still in flight, once.
		{"blackhole", s.dur(1*time.Second, 2*time.Second)},
	}
	var total time.Duration
	for _, p := range phases {
		total += p.d
	}
	closeTimeout := time.Second
	const maxBuffered = 100
	sendTimeout := 250 * time.Millisecond
	inj := newInjector(b.kf, topic)
	inj.install(int16(kmsg.Produce), -1)
	pcfg := WorkerConfig{Role: "producer", Brokers: b.addrs, Topic: topic, Async: true, Keys: 256, Senders: 64,
		Duration: total, MaxBuffered: maxBuffered, SendTimeout: sendTimeout, DeliveryTimeout: 2 * time.Second,
		WriteTimeout: time.Second, CloseTimeout: closeTimeout, Payload: 512}
	prod := s.worker(pcfg)
	for i, p := range phases {
		inj.setPhase(p.name)
		label := p.name
		if label == "" {
			label = "healthy"
		}
		if i == len(phases)-1 {
			s.logf("phase %s until the producer has closed", label)
			break
		}
		s.logf("phase %s for %v", label, p.d)
		s.sleep(p.d)
	}
	s.waitProducer(prod, 60*time.Second)
	inj.setPhase("")
	c := s.collectProducerOnly(b, topic, prod)
	r := c.rep
	ps := c.prodSum
	s.require(r.Lost == 0, "lost = %d acknowledged messages not in the topic: %v", r.Lost, r.LostIDs)
	s.require(r.MissingOutcome == 0, "%d sends without an outcome line", r.MissingOutcome)
	s.require(r.DoubleOutcome == 0, "%d sends with more than one outcome", r.DoubleOutcome)
	if ps != nil {
		accepted := ps.Produced - ps.Rejected
		s.require(ps.Callbacks == accepted, "%d callbacks for %d accepted messages (want exactly one each)", ps.Callbacks, accepted)
		s.require(ps.DoubleCallbacks == 0 && ps.MissingOutcomes == 0, "double callbacks %d, missing %d", ps.DoubleCallbacks, ps.MissingOutcomes)
		s.require(ps.MaxBuffered <= maxBuffered, "buffered records reached %d, above WithMaxBufferedRecords(%d)", ps.MaxBuffered, maxBuffered)
		const rssLimitMiB = 128
		s.require(ps.VmHWMKiB > 0 && ps.VmHWMKiB < rssLimitMiB<<10, "peak RSS %d KiB (limit %d MiB)", ps.VmHWMKiB, rssLimitMiB)
		s.require(ps.Rejected > 0, "no send was held back: the buffer never filled")
		s.require(ps.Failed > 0, "no delivery failed: the outage phases did not bite")
		over := time.Duration(ps.MaxOvershootMs * float64(time.Millisecond))
		s.require(over <= time.Second, "a blocked send returned %v after its context deadline (%v)", over.Round(time.Millisecond), sendTimeout)
		if over > 100*time.Millisecond && over <= time.Second {
			s.note("a blocked send returned %v after its context's deadline", over.Round(time.Millisecond))
		}
		closeTook := time.Duration(ps.CloseMs * float64(time.Millisecond))
		s.require(closeTook <= closeTimeout+1500*time.Millisecond, "Close took %v with a close timeout of %v", closeTook, closeTimeout)
		s.require(ps.CloseCount > 0, "Close during the black hole reported nothing undelivered (%q)", ps.CloseError)
		s.require(ps.CloseCount == ps.FailedInClose, "Close reported %d undelivered messages, %d failure callbacks came during Close", ps.CloseCount, ps.FailedInClose)
		s.fig("Close", "%s, %d undelivered", fmtDur(closeTook), ps.CloseCount)
		s.fig("peak RSS", "%.1f MiB", float64(ps.VmHWMKiB)/1024)
		s.fig("max buffered", "%d/%d", ps.MaxBuffered, maxBuffered)
		s.fig("accepted", "%d", accepted)
		s.fig("rejected (ctx)", "%d", ps.Rejected)
		s.fig("failed", "%d", ps.Failed)
		s.fig("callbacks", "%d", ps.Callbacks)
		s.fig("max ctx overshoot", "%s", fmtMs(ps.MaxOvershootMs))
		var rss []int64
		for _, x := range ps.RSSSamples {
			rss = append(rss, x.RSSKiB)
		}
		if len(rss) > 0 {
			s.res.notes = append(s.res.notes, fmt.Sprintf("RSS samples (MiB, every 250ms): %s", rssSeries(rss)))
		}
	}
	s.res.notes = append(s.res.notes, "faults: "+describeCounts(inj.snapshot()))
}

func rssSeries(kib []int64) string {
	parts := make([]string, 0, len(kib))
	step := max(1, len(kib)/40)
	for i := 0; i < len(kib); i += step {
		parts = append(parts, fmt.Sprintf("%.0f", float64(kib[i])/1024))
	}
	return strings.Join(parts, " ")
}

// collectProducerOnly checks a producer without consumers: acknowledged
// messages must be in the topic (collect treats the log as handled).
func (s *sc) collectProducerOnly(b *broker, topic string, prod *proc) *collected {
	c := s.collect(b, topic, "", prod, nil, false, nil)
	s.res.rep.dup = c.rep.LogDupIDs
	return c
}

// logLifetime presents the topic's records as if one reader had handled
// them in log order.
func logLifetime(log []check.LogRecord) check.Lifetime {
	recs := slices.Clone(log)
	slices.SortFunc(recs, func(a, b check.LogRecord) int {
		if a.Partition != b.Partition {
			return a.Partition - b.Partition
		}
		return int(a.Offset - b.Offset)
	})
	lt := check.Lifetime{Name: "log", Events: make([]check.Event, 0, len(recs))}
	for _, r := range recs {
		lt.Events = append(lt.Events, check.Event{Type: check.EvHandled,
			H: check.Handled{Partition: r.Partition, Offset: r.Offset, ID: r.ID, Key: r.Key, Seq: r.Seq}})
	}
	return lt
}
