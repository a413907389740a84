package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mqkit/mq/chaos/check"
)

// ---------------------------------------------------------------- 1 and 2

func runCrash(s *sc)    { runRestarts(s, false) }
func runGraceful(s *sc) { runRestarts(s, true) }

// runRestarts streams messages while the consumer process is stopped at
// random points and started again: SIGKILL (scenario 1) or SIGTERM
// (scenario 2).
func runRestarts(s *sc, graceful bool) {
	n := s.size(20000, 100000)
	rounds := s.size(3, 10)
	stream := s.dur(12*time.Second, 60*time.Second)
	if graceful {
		rounds = s.size(5, 20)
		stream = s.dur(12*time.Second, 80*time.Second)
	}
	const parts = 4
	b, err := s.e.streamBroker(s.ctx)
	if err != nil {
		s.fatalf("broker: %v", err)
	}
	defer b.close()
	s.res.broker, s.res.brokerVersion = b.kind, b.version
	topic, group := s.uniqueName("t"), s.uniqueName("g")
	if err := createTopic(s.ctx, b, topic, parts); err != nil {
		s.fatalf("create topic: %v", err)
	}
	poller := startOffsetPoller(s.ctx, b.addrs, group, topic, parts, 100*time.Millisecond)

	pcfg := s.producerCfg(topic, b, n, float64(n)/stream.Seconds())
	prod := s.worker(pcfg)
	ccfg := s.consumerCfg(topic, group, b)
	if s.e.lanes > 1 {
		ccfg.Lanes = s.e.lanes
		s.fig("lanes", "%d", s.e.lanes)
	}
	if s.e.handlerDelay > 0 {
		ccfg.HandlerDelay = s.e.handlerDelay
		s.fig("handler", "%v", s.e.handlerDelay)
	}
	cons := s.worker(ccfg)
	all := []*proc{cons}
	stoppedAt := map[string]time.Time{}
	var stopTimes []time.Duration
	sig := syscall.SIGKILL
	if graceful {
		sig = syscall.SIGTERM
	}
	gap := stream / time.Duration(rounds+1)
	for r := 1; r <= rounds; r++ {
		s.sleep(s.between(gap/2, gap*3/2))
		t0 := time.Now()
		if graceful {
			took := s.stopConsumer(cons)
			stopTimes = append(stopTimes, took)
			s.logf("round %d/%d: %s stopped by SIGTERM in %v (%s)", r, rounds, cons.Name, took.Round(time.Millisecond), cons.describeExit())
		} else {
			if b.kind == "kfake" && !cons.assigned() {
				// See awaitAssigned: kfake never expires a member killed inside JoinGroup.
				s.logf("round %d/%d: waiting for %s to join before killing it (kfake)", r, rounds, cons.Name)
				cons.awaitAssigned(30 * time.Second)
			}
			cons.signal(sig)
			if !cons.wait(10 * time.Second) {
				s.fatalf("%s survived SIGKILL", cons.Name)
			}
			s.logf("round %d/%d: %s killed after %v", r, rounds, cons.Name, time.Since(cons.Started).Round(time.Millisecond))
		}
		stoppedAt[cons.Name] = t0
		cons = s.worker(ccfg)
		all = append(all, cons)
	}
	s.waitProducer(prod, 3*stream+60*time.Second)
	s.logf("producer done; waiting for the group to drain")
	took, err := waitDrained(s.ctx, b, group, topic, s.dur(60*time.Second, 180*time.Second))
	s.require(err == nil, "drain: %v", err)
	s.stopConsumer(cons)
	samples, perrs := poller.finish()
	c := s.collect(b, topic, group, prod, all, false, samples)
	s.standard(c)
	r := c.rep

	// Redeliveries: where did every duplicate come from?
	rd := check.Redeliveries(c.lifetimes)
	var maxAge time.Duration
	fromClean := 0
	for _, x := range rd {
		at, ok := stoppedAt[x.First]
		if !ok {
			fromClean++ // first handled by a process that was never stopped by us
			continue
		}
		if age := at.Sub(time.Unix(0, x.FirstAt)); age > maxAge {
			maxAge = age
		}
	}
	s.fig("rounds", "%d", rounds)
	if graceful {
		s.require(r.Duplicates == 0, "duplicates = %d after graceful stops (want 0)", r.Duplicates)
		for i, x := range rd {
			if i >= 5 {
				break
			}
			s.res.examples = append(s.res.examples, fmt.Sprintf("offset %d/%d handled by %s at %s and again by %s",
				x.Partition, x.Offset, x.First, time.Unix(0, x.FirstAt).Format("15:04:05.000"), x.Again))
		}
		slices.Sort(stopTimes)
		if len(stopTimes) > 0 {
			s.fig("max stop", "%s", fmtDur(stopTimes[len(stopTimes)-1]))
		}
	} else {
		window := time.Duration(ccfg.CommitInterval)
		s.fig("dup/kill", "%.0f", float64(r.Duplicates)/float64(rounds))
		s.fig("max redelivery age", "%s", fmtDur(maxAge))
		// Only the uncommitted window may come back: what was handled in the
		// last commit interval before the kill (plus commit latency).
		s.require(maxAge <= window+2*time.Second, "a message handled %v before a kill was redelivered: more than the commit interval (%v) + 2s", maxAge, window)
		s.require(fromClean == 0, "%d redeliveries of messages first handled by a process that was not killed", fromClean)
	}
	s.fig("drain", "%s", fmtDur(took))
	if perrs > 0 {
		s.note("%d committed-offset polls failed", perrs)
	}
}

// ---------------------------------------------------------------- 3

// runBrokerRestart stops the JVM broker gracefully while a synchronous
// producer and a consumer run, then crashes it (SIGKILL) while the consumer
// works through a backlog. Neither process is restarted.
func runBrokerRestart(s *sc) {
	if err := s.e.waitJVM(s.ctx); err != nil {
		if s.e.jvm.available() != "" {
			s.fatalf("SKIP: %v", err)
		}
		s.fatalf("JVM broker: %v", err)
	}
	b, err := newExternalBroker(s.ctx, "jvm", s.e.jvm.version, []string{s.e.jvm.addr()})
	if err != nil {
		s.fatalf("broker: %v", err)
	}
	defer func() { b.close() }()
	s.res.broker, s.res.brokerVersion = "jvm", s.e.jvm.version
	const parts = 3
	topic, group := s.uniqueName("t"), s.uniqueName("g")
	if err := createTopic(s.ctx, b, topic, parts); err != nil {
		s.fatalf("create topic: %v", err)
	}
	rate := 800.0
	stream := s.dur(10*time.Second, 60*time.Second)
	n := int(rate * stream.Seconds())
	deliveryTimeout, writeTimeout := 5*time.Second, 2*time.Second
	pcfg := s.producerCfg(topic, b, n, rate)
	pcfg.Async = false // synchronous sends: each returns the outcome
	pcfg.DeliveryTimeout, pcfg.WriteTimeout = deliveryTimeout, writeTimeout
	ccfg := s.consumerCfg(topic, group, b)
	ccfg.SessionTimeout = 3 * time.Second
	ccfg.HandlerDelay = 5 * time.Millisecond // slower than the producer: a backlog for the second outage
	poller := startOffsetPoller(s.ctx, b.addrs, group, topic, parts, 200*time.Millisecond)
	prod := s.worker(pcfg)
	cons := s.worker(ccfg)

	type outage struct {
		how       string
		down, up  time.Time
		stopTook  time.Duration
		startTook time.Duration
	}
	var outs []outage
	doOutage := func(how string, downFor time.Duration) {
		o := outage{how: how}
		t0 := time.Now()
		o.down = t0
		switch how {
		case "SIGTERM":
			if err := s.e.jvm.stopGraceful(s.ctx); err != nil {
				s.fatalf("stopping the broker: %v", err)
			}
		case "SIGKILL":
			if err := s.e.jvm.crash(); err != nil {
				s.fatalf("killing the broker: %v", err)
			}
		}
		o.stopTook = time.Since(t0)
		s.logf("broker stopped (%s) in %v; down for %v", how, o.stopTook.Round(time.Millisecond), downFor)
		s.sleep(downFor)
		took, err := s.e.jvm.start(s.ctx)
		if err != nil {
			s.fatalf("restarting the broker: %v", err)
		}
		o.startTook = took
		o.up = time.Now()
		s.logf("broker back after %v (start took %v)", o.up.Sub(o.down).Round(time.Millisecond), took.Round(time.Millisecond))
		outs = append(outs, o)
	}

	// Outage 1: during synchronous produce (and consume). The broker stays
	// down longer than the delivery timeout, so that a send made as it went
	// down must fail (with 3 s down in -short, the whole outage, stop and
	// start included, was 4.5 s in one CI run: every send waited it out).
	s.sleep(s.dur(3*time.Second, 15*time.Second))
	doOutage("SIGTERM", max(s.dur(3*time.Second, 10*time.Second), deliveryTimeout+time.Second))
	s.waitProducer(prod, 3*stream+90*time.Second)
	s.logf("producer done")
	// Outage 2: during consume only (the consumer works through a backlog).
	s.sleep(time.Second)
	end, err := endOffsets(s.ctx, b, topic)
	if err == nil {
		com, _ := committedOffsets(s.ctx, b, group, topic)
		behind := int64(0)
		for p, e := range end {
			behind += e - max(com[p], 0)
		}
		s.logf("backlog before the second outage: %d records", behind)
		if behind < 500 {
			s.note("backlog before the consume-only outage was only %d records", behind)
		}
	}
	doOutage("SIGKILL", s.dur(2*time.Second, 10*time.Second))
	b.close()
	b, err = newExternalBroker(s.ctx, "jvm", s.e.jvm.version, []string{s.e.jvm.addr()})
	if err != nil {
		s.fatalf("broker admin after restart: %v", err)
	}
	took, err := waitDrained(s.ctx, b, group, topic, s.dur(90*time.Second, 240*time.Second))
	s.require(err == nil, "drain: %v", err)
	s.require(cons.alive(), "the consumer process exited during the run: %s (see %s)", cons.describeExit(), cons.LogPath)
	s.stopConsumer(cons)
	samples, _ := poller.finish()
	c := s.collect(b, topic, group, prod, []*proc{cons}, false, samples)
	s.standard(c)

	// Error latency of sends during the outage, and resumption.
	ps := c.prodSum
	if ps != nil {
		bound := deliveryTimeout + min(deliveryTimeout, 10*time.Second) + 2*time.Second
		maxErr := time.Duration(ps.MaxErrLatencyMs * float64(time.Millisecond))
		s.fig("failed sends", "%d", ps.Failed)
		s.fig("max send error latency", "%s", fmtDur(maxErr))
		s.fig("max send latency", "%s", fmtMs(ps.MaxLatencyMs))
		s.require(ps.Failed > 0, "no send failed during the outage: the outage did not hit the producer")
		s.require(maxErr <= bound, "a failing send took %v to return (bound %v)", maxErr, bound)
		late := 0
		for _, l := range c.prodLines {
			if l.Tag == 'F' && time.Duration(l.LatencyUs)*time.Microsecond > deliveryTimeout+50*time.Millisecond {
				late++
			}
		}
		if late > 0 {
			s.note("%d of %d failing synchronous sends returned more than 50ms after WithDeliveryTimeout (%v), the latest after %v: producer.go fails an expired record only when its partition's batch is sent again, after the retry backoff (up to 1 s)",
				late, ps.Failed, deliveryTimeout, maxErr.Round(time.Millisecond))
		}
	}
	// First ack after the first outage, first handled message after each.
	firstAck := func(after time.Time) time.Duration {
		best := time.Duration(-1)
		for _, l := range c.prodLines {
			if l.Tag == 'A' && l.Time >= after.UnixNano() {
				if d := time.Unix(0, l.Time).Sub(after); best < 0 || d < best {
					best = d
				}
			}
		}
		return best
	}
	firstHandled := func(after time.Time) time.Duration {
		best := time.Duration(-1)
		for _, lt := range c.lifetimes {
			for _, ev := range lt.Events {
				if ev.Type == check.EvHandled && ev.Time >= after.UnixNano() {
					if d := time.Unix(0, ev.Time).Sub(after); best < 0 || d < best {
						best = d
					}
					break
				}
			}
		}
		return best
	}
	// handledBefore counts the distinct records handled before t.
	handledBefore := func(t time.Time) int {
		seen := make(map[[2]int64]bool)
		for _, lt := range c.lifetimes {
			for _, ev := range lt.Events {
				if ev.Type == check.EvHandled && ev.Time < t.UnixNano() {
					seen[[2]int64{int64(ev.H.Partition), ev.H.Offset}] = true
				}
			}
		}
		return len(seen)
	}
	resumeBound := 30 * time.Second
	if len(outs) == 2 {
		pr := firstAck(outs[0].up)
		s.require(pr >= 0 && pr <= resumeBound, "producer did not resume within %v of the broker's return (first ack after %v)", resumeBound, pr)
		s.fig("producer resumed", "%s", fmtDur(pr))
		for i, o := range outs {
			cr := firstHandled(o.up)
			if cr < 0 && i == 1 && handledBefore(o.up) >= c.rep.Acked {
				// The consume-only outage came too late to matter: the
				// consumer had handled every record (from its fetch
				// buffer) before the broker was back. That it recovered
				// shows in the drain: every offset committed at the end.
				s.note("the consumer handled all %d records before the broker returned from outage 2; nothing to resume", c.rep.Acked)
				s.fig(fmt.Sprintf("outage #%d", i+1), "%s %s", o.how, fmtDur(o.up.Sub(o.down)))
				continue
			}
			s.require(cr >= 0 && cr <= resumeBound, "consumer did not resume within %v after outage %d (%s): first handled after %v", resumeBound, i+1, o.how, cr)
			s.fig(fmt.Sprintf("consumer resumed #%d", i+1), "%s", fmtDur(cr))
			s.fig(fmt.Sprintf("outage #%d", i+1), "%s %s", o.how, fmtDur(o.up.Sub(o.down)))
		}
	}
	s.fig("drain", "%s", fmtDur(took))
}

// ---------------------------------------------------------------- 4

// runRebalanceStorm runs three consumer slots; each keeps starting a
// consumer process, letting it run a random while and stopping it, half the
// time with SIGTERM and half with SIGKILL, while a stream flows. Committed
// offsets are polled all along.
func runRebalanceStorm(s *sc) {
	n := s.size(20000, 100000)
	stream := s.dur(20*time.Second, 100*time.Second)
	const parts, slots = 6, 3
	b, err := s.e.streamBroker(s.ctx)
	if err != nil {
		s.fatalf("broker: %v", err)
	}
	defer b.close()
	s.res.broker, s.res.brokerVersion = b.kind, b.version
	topic, group := s.uniqueName("t"), s.uniqueName("g")
	if err := createTopic(s.ctx, b, topic, parts); err != nil {
		s.fatalf("create topic: %v", err)
	}
	poller := startOffsetPoller(s.ctx, b.addrs, group, topic, parts, 50*time.Millisecond)
	prod := s.worker(s.producerCfg(topic, b, n, float64(n)/stream.Seconds()))
	ccfg := s.consumerCfg(topic, group, b)

	var mu sync.Mutex
	var all []*proc
	current := make([]*proc, slots)
	kills, terms, badTerms := 0, 0, 0
	var maxStop time.Duration
	var termProblems, startErrs []string
	start := func(slot int) *proc {
		mu.Lock()
		defer mu.Unlock()
		cfg := ccfg
		cfg.Name = fmt.Sprintf("consumer-s%d-%d", slot+1, len(all)+1)
		cfg.Seed = uint64(len(all) + 1)
		if len(all)%2 == 1 {
			cfg.Lanes = 4 // every other process runs key lanes (WithLanes): per-key order must still hold
		}
		p, err := s.tryWorker(cfg)
		if err != nil {
			startErrs = append(startErrs, err.Error())
			return nil
		}
		all = append(all, p)
		current[slot] = p
		return p
	}
	stopStorm := make(chan struct{})
	var stopOnce sync.Once
	endStorm := func() { stopOnce.Do(func() { close(stopStorm) }) }
	var wg sync.WaitGroup
	// However the scenario ends, the slots stop before its processes are
	// killed.
	defer func() {
		endStorm()
		wg.Wait()
	}()
	for slot := 0; slot < slots; slot++ {
		wg.Add(1)
		rng := rand.New(rand.NewPCG(s.rng.Uint64(), uint64(slot)))
		go func(slot int) {
			defer wg.Done()
			between := func(a, b time.Duration) time.Duration { return a + time.Duration(rng.Int64N(int64(b-a))) }
			pause := func(d time.Duration) bool { // false: the storm is over
				select {
				case <-stopStorm:
					return false
				case <-s.ctx.Done():
					return false
				case <-time.After(d):
					return true
				}
			}
			// Stagger the slots.
			if !pause(between(0, 1500*time.Millisecond)) {
				return
			}
			for {
				p := start(slot)
				if p == nil {
					return
				}
				if !pause(between(1500*time.Millisecond, 5*time.Second)) {
					return
				}
				if rng.IntN(2) == 0 {
					if b.kind == "kfake" {
						p.awaitAssigned(30 * time.Second) // see awaitAssigned
					}
					p.signal(syscall.SIGKILL)
					p.wait(10 * time.Second)
					mu.Lock()
					kills++
					mu.Unlock()
					s.logf("slot %d: %s killed", slot+1, p.Name)
				} else {
					t0 := time.Now()
					ok := p.stop(25 * time.Second)
					took := time.Since(t0)
					code, sig := p.exit()
					mu.Lock()
					terms++
					maxStop = max(maxStop, took)
					if !ok || code != 0 || sig != "" {
						badTerms++
						why := p.describeExit()
						if cs, err := readJSON[ConsumerSummary](p.Cfg.Summary); err == nil && cs.RunError != "" {
							why += ", Run returned: " + cs.RunError
						}
						termProblems = append(termProblems, fmt.Sprintf("%s (ran %v): %s", p.Name, time.Since(p.Started).Round(100*time.Millisecond), why))
					}
					mu.Unlock()
					s.logf("slot %d: %s stopped by SIGTERM in %v (%s)", slot+1, p.Name, took.Round(time.Millisecond), p.describeExit())
				}
				if !pause(between(200*time.Millisecond, 1200*time.Millisecond)) {
					if s.ctx.Err() == nil {
						start(slot) // leave one running in every slot for the drain
					}
					return
				}
			}
		}(slot)
	}
	s.waitProducer(prod, 3*stream+60*time.Second)
	endStorm()
	wg.Wait()
	s.require(len(startErrs) == 0, "starting consumers failed: %v", startErrs)
	s.logf("producer done, storm over (%d kills, %d graceful stops); draining", kills, terms)
	took, err := waitDrained(s.ctx, b, group, topic, s.dur(60*time.Second, 180*time.Second))
	s.require(err == nil, "drain: %v", err)
	for _, p := range current {
		if p != nil {
			maxStop = max(maxStop, s.stopConsumer(p))
		}
	}
	samples, perrs := poller.finish()
	c := s.collect(b, topic, group, prod, all, false, samples)
	s.standard(c)
	s.require(badTerms == 0, "%d graceful stops (SIGTERM: Run's context cancelled) did not end with Run returning nil as the README promises: %s", badTerms, strings.Join(termProblems, "; "))
	// Revocations and graceful stops commit what was handled: every
	// redelivery must go back to a process that was killed.
	killed := map[string]bool{}
	for _, p := range all {
		if _, sig := p.exit(); sig == "killed" || sig == syscall.SIGKILL.String() {
			killed[p.Name] = true
		}
	}
	laned := map[string]bool{}
	for _, p := range all {
		laned[p.Name] = p.Cfg.Lanes > 1
	}
	fromLive, fromLiveLanes := 0, 0
	for _, x := range check.Redeliveries(c.lifetimes) {
		if !killed[x.First] {
			fromLive++
			if laned[x.First] {
				fromLiveLanes++
			}
			if fromLive <= 5 {
				s.res.examples = append(s.res.examples, fmt.Sprintf("offset %d/%d handled by %s (not killed) at %s, again by %s at %s",
					x.Partition, x.Offset, x.First, time.Unix(0, x.FirstAt).Format("15:04:05.000"), x.Again, time.Unix(0, x.AgainAt).Format("15:04:05.000")))
			}
		}
	}
	s.require(fromLive-fromLiveLanes == 0, "%d redeliveries of messages first handled by a process that was not killed (a revocation or graceful stop did not commit what it had handled)", fromLive-fromLiveLanes)
	s.require(fromLiveLanes == 0, "%d redeliveries of messages first handled by a process using WithLanes(4) that was not killed (a revocation or graceful stop did not commit what its lanes had handled; README: a rebalance or graceful stop causes no redelivery)", fromLiveLanes)
	rebalances := int64(0)
	for _, cs := range c.consSums {
		rebalances += cs.Stats.Rebalances
	}
	s.fig("processes", "%d", len(all))
	s.fig("kills", "%d", kills)
	s.fig("SIGTERMs", "%d", terms)
	s.fig("max SIGTERM→exit", "%s", fmtDur(maxStop))
	s.fig("assignments", "%d", c.rep.Segments)
	s.fig("commit samples", "%d", c.rep.CommitSamples)
	s.fig("commit decreases", "%d", c.rep.CommitDecreases)
	s.fig("drain", "%s", fmtDur(took))
	if perrs > 0 {
		s.note("%d committed-offset polls failed", perrs)
	}
}

// ---------------------------------------------------------------- 6

// runPoisonStorm mixes undecodable values and panicking handlers into a
// stream consumed with DeadLetterRecoverer.
func runPoisonStorm(s *sc) {
	n := s.size(5000, 50000)
	const parts = 3
	b, err := s.e.streamBroker(s.ctx)
	if err != nil {
		s.fatalf("broker: %v", err)
	}
	defer b.close()
	s.res.broker, s.res.brokerVersion = b.kind, b.version
	topic, group := s.uniqueName("t"), s.uniqueName("g")
	if err := createTopic(s.ctx, b, topic, parts); err != nil {
		s.fatalf("create topic: %v", err)
	}
	if err := createTopic(s.ctx, b, topic+".dlt", 1); err != nil {
		s.fatalf("create DLT: %v", err)
	}
	pcfg := s.producerCfg(topic, b, n, float64(n)/s.dur(5*time.Second, 30*time.Second).Seconds())
	pcfg.PoisonPct, pcfg.PanicAlwaysPct, pcfg.PanicOncePct = 5, 2, 3
	ccfg := s.consumerCfg(topic, group, b)
	ccfg.DLT = true
	ccfg.RetryAttempts = 3
	poller := startOffsetPoller(s.ctx, b.addrs, group, topic, parts, 200*time.Millisecond)
	prod := s.worker(pcfg)
	cons := s.worker(ccfg)
	s.waitProducer(prod, 120*time.Second)
	took, err := waitDrained(s.ctx, b, group, topic, s.dur(60*time.Second, 300*time.Second))
	s.require(err == nil, "drain: %v", err)
	s.require(cons.alive(), "the consumer did not stay up: %s (see %s)", cons.describeExit(), cons.LogPath)
	s.stopConsumer(cons)
	samples, _ := poller.finish()
	c := s.collect(b, topic, group, prod, []*proc{cons}, true, samples)
	s.standard(c)
	r := c.rep
	var poison, always, once int
	for _, l := range c.in.Log {
		switch l.Kind {
		case check.KindPoison:
			poison++
		case check.KindPanicAlways:
			always++
		case check.KindPanicOnce:
			once++
		}
	}
	s.require(r.DLTMissing == 0 && r.DLTUnexpected == 0 && r.DLTUnique == poison+always,
		"DLT holds %d distinct messages, want exactly poison %d + always-panicking %d = %d (missing %d, unexpected %d)",
		r.DLTUnique, poison, always, poison+always, r.DLTMissing, r.DLTUnexpected)
	s.require(r.DLTRecords == r.DLTUnique, "%d DLT records for %d messages: some were dead-lettered twice", r.DLTRecords, r.DLTUnique)
	s.require(r.DLTWrongFailure == 0, "%d DLT records with the wrong mq-failure header", r.DLTWrongFailure)
	recovered := int64(0)
	if cs := c.consSums[cons.Name]; cs != nil {
		recovered = cs.PanicOK
		s.fig("consumer dead-lettered", "%d", cs.Stats.DeadLettered)
		s.require(cs.Stats.DeadLettered == int64(poison+always), "consumer counted %d dead-lettered, want %d", cs.Stats.DeadLettered, poison+always)
	}
	s.fig("poison", "%d", poison)
	s.fig("panic-always", "%d", always)
	s.fig("panic-once", "%d (%d recovered)", once, recovered)
	s.fig("DLT", "%d", r.DLTRecords)
	s.fig("drain", "%s", fmtDur(took))
}
