package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqkit/mq/chaos/check"
	"github.com/segmentio/kafka-go"
)

// Scenarios 8-12 run on the three-node cluster of scripts/kafka/cluster.sh
// (replication factor 3, min.insync.replicas 2, unclean leader election
// off): a producer and a consumer process stream through a fault, and the
// accounting is that of the other stream scenarios plus two figures, the
// max partition stall (check.PartitionStalls) and the max send latency.

const (
	clusterParts  = 6
	clusterRate   = 600.0 // messages per second
	offsetsTopic  = "__consumer_offsets"
	clusterISRMax = 3 * time.Minute
)

// clusterRun is one cluster scenario's stream.
type clusterRun struct {
	s            *sc
	c            *jvmCluster
	b            *broker
	topic, group string
	prod, cons   *proc
	poller       *offsetPoller
	events       []faultEvent
}

// faultEvent is something the scenario did to the cluster, for the report.
type faultEvent struct {
	at   time.Time
	what string
}

// clusterStream waits for the cluster, heals it (every node running and in
// sync), creates a replicated topic and starts a producer and a consumer.
func (s *sc) clusterStream() *clusterRun {
	c := s.e.cluster
	if err := s.e.waitCluster(s.ctx); err != nil {
		if c.available() != "" {
			s.fatalf("SKIP: %v", err)
		}
		s.fatalf("cluster: %v", err)
	}
	if err := c.heal(s.ctx); err != nil {
		s.fatalf("cluster: bringing every node back: %v", err)
	}
	if _, err := c.waitISR(s.ctx, clusterISRMax, offsetsTopic); err != nil {
		s.fatalf("cluster not in sync before the scenario: %v", err)
	}
	b, err := newExternalBroker(s.ctx, "cluster", c.version+", 3 nodes", c.addrs())
	if err != nil {
		s.fatalf("broker: %v", err)
	}
	s.res.broker, s.res.brokerVersion = "cluster", b.version
	r := &clusterRun{s: s, c: c, b: b, topic: s.uniqueName("t"), group: s.uniqueName("g")}
	if err := createReplicatedTopic(s.ctx, b, r.topic, clusterParts, 3, 2); err != nil {
		b.close()
		s.fatalf("create topic: %v", err)
	}
	parts, err := c.describe(s.ctx, r.topic)
	if err == nil {
		s.logf("topic %s: %d partitions, leaders %s", r.topic, len(parts), leaderCounts(parts))
	}
	r.poller = startOffsetPoller(s.ctx, b.addrs, r.group, r.topic, clusterParts, 100*time.Millisecond)
	pcfg := s.producerCfg(r.topic, b, 0, clusterRate)
	pcfg.Duration = 2 * time.Hour // until stopped: the faults decide how long the stream lasts
	r.prod = s.worker(pcfg)
	r.cons = s.worker(s.consumerCfg(r.topic, r.group, b))
	return r
}

// createReplicatedTopic creates topic with the given replication and
// min.insync.replicas, then waits until every broker shows it.
func createReplicatedTopic(ctx context.Context, b *broker, topic string, parts, rf, minISR int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	resp, err := b.cl.Client().CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: parts, ReplicationFactor: rf,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "min.insync.replicas", ConfigValue: strconv.Itoa(minISR)}},
	}}})
	if err != nil {
		return err
	}
	if terr := resp.Errors[topic]; terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
		return terr
	}
	return b.cl.CreateTopic(ctx, topic, parts) // exists: waits until every broker shows it
}

// event logs and records a fault step.
func (r *clusterRun) event(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.events = append(r.events, faultEvent{time.Now(), msg})
	r.s.logf("%s", msg)
}

// node runs a per-node cluster command, aborting the scenario on failure.
func (r *clusterRun) node(what string, n int) time.Duration {
	took, err := r.c.node(r.s.ctx, what, n)
	if err != nil {
		r.s.fatalf("%s node %d: %v", what, n, err)
	}
	return took
}

// restartAndSync restarts node n and waits until it is unfenced and every
// partition of the topic and of the offsets topic is in sync again. It
// returns both durations.
func (r *clusterRun) restartAndSync(n int) (restart, isr time.Duration) {
	restart = r.node("restart", n)
	r.event("node %d unfenced again (restart took %s)", n, fmtDur(restart))
	isr, err := r.c.waitISR(r.s.ctx, clusterISRMax, r.topic, offsetsTopic)
	if err != nil {
		r.s.fatalf("after restarting node %d: %v", n, err)
	}
	r.event("all replicas in sync %s later", fmtDur(isr))
	return restart, isr
}

// topLeader returns the node leading most of the topic's partitions.
func (r *clusterRun) topLeader() (int, int) {
	n, led, err := r.c.topLeader(r.s.ctx, r.topic)
	if err != nil {
		r.s.fatalf("leaders: %v", err)
	}
	return n, led
}

// finish stops the producer, lets the group drain, stops the consumer,
// checks and reports. The scenario's own figures come after these.
func (r *clusterRun) finish() *collected {
	s := r.s
	s.sleep(s.dur(3*time.Second, 10*time.Second)) // a fault-free tail
	s.require(r.cons.alive(), "the consumer process exited during the run: %s (see %s)", r.cons.describeExit(), r.cons.LogPath)
	t0 := time.Now()
	exited := r.prod.stop(60 * time.Second)
	s.require(exited, "the producer did not stop within 60s of SIGTERM")
	code, sig := r.prod.exit()
	s.require(code == 0 && sig == "", "producer ended with %s (see %s)", r.prod.describeExit(), r.prod.LogPath)
	s.logf("producer stopped in %v; waiting for the group to drain", time.Since(t0).Round(time.Millisecond))
	drain, err := waitDrained(s.ctx, r.b, r.group, r.topic, s.dur(120*time.Second, 300*time.Second))
	s.require(err == nil, "drain: %v", err)
	drainedAt := time.Now()
	s.stopConsumer(r.cons)
	samples, perrs := r.poller.finish()
	c := s.collect(r.b, r.topic, r.group, r.prod, []*proc{r.cons}, false, samples)
	s.standard(c)
	rep := c.rep
	s.require(s.e.maxProducerDups < 0 || rep.LogDupIDs <= s.e.maxProducerDups,
		"%d messages written twice by the producer (limit -max-producer-dups %d)", rep.LogDupIDs, s.e.maxProducerDups)
	s.require(s.e.maxLogInversions < 0 || rep.LogInversions <= s.e.maxLogInversions,
		"%d per-key inversions written by the producer (limit -max-log-inversions %d)", rep.LogInversions, s.e.maxLogInversions)

	s.fig("producer dups", "%d", rep.LogDupIDs)
	s.fig("consumer dups", "%d", rep.Duplicates)
	s.fig("log inversions", "%d", rep.LogInversions)
	failed, failedWritten := 0, 0
	inLog := map[int64]bool{}
	for _, l := range c.in.Log {
		inLog[l.ID] = true
	}
	for _, l := range c.prodLines {
		if l.Tag == 'F' {
			failed++
			if inLog[l.ID] {
				failedWritten++ // reported failed, yet the broker has it
			}
		}
	}
	s.fig("failed sends", "%d (%d of them in the topic)", failed, failedWritten)
	if failed > 0 {
		s.note("%d sends failed (not acknowledged: not counted as lost); first errors: %s", failed, firstErrors(c.prodLines, 3))
	}
	if l, ok := check.MaxSendLatency(c.prodLines); ok {
		s.fig("max send latency", "%s (sent at %s, %s)", fmtDur(time.Duration(l.LatencyUs)*time.Microsecond),
			r.when(l.Time-l.LatencyUs*1000), map[byte]string{'A': "acked", 'F': "failed"}[l.Tag])
	}
	st := check.MaxStall(check.PartitionStalls(c.prodLines, c.lifetimes, drainedAt.UnixNano()))
	if st.Duration > 0 {
		s.fig("max partition stall", "%s (p%d from %s)", fmtDur(st.Duration), st.Partition, r.when(st.From))
	} else {
		s.fig("max partition stall", "0")
	}
	if cs := c.consSums[r.cons.Name]; cs != nil {
		s.fig("rebalances", "%d", cs.Stats.Rebalances)
	}
	s.fig("commit decreases", "%d", rep.CommitDecreases)
	s.fig("drain", "%s", fmtDur(drain))
	if perrs > 0 {
		s.note("%d committed-offset polls failed", perrs)
	}
	for _, ev := range r.events {
		s.note("+%.1fs %s", ev.at.Sub(s.t0).Seconds(), ev.what)
	}
	return c
}

// when formats a time relative to the scenario's start, with the last
// fault step before it.
func (r *clusterRun) when(ns int64) string {
	t := time.Unix(0, ns)
	s := fmt.Sprintf("+%.1fs", t.Sub(r.s.t0).Seconds())
	var last *faultEvent
	for i := range r.events {
		if !r.events[i].at.After(t) {
			last = &r.events[i]
		}
	}
	if last != nil {
		s += fmt.Sprintf(", %s after %q", fmtDur(t.Sub(last.at)), last.what)
	}
	return s
}

func firstErrors(lines []check.ProducerLine, n int) string {
	var out []string
	seen := map[string]bool{}
	for _, l := range lines {
		if l.Tag != 'F' || seen[l.Err] {
			continue
		}
		seen[l.Err] = true
		out = append(out, fmt.Sprintf("%q", l.Err))
		if len(out) == n {
			break
		}
	}
	return strings.Join(out, ", ")
}

// ---------------------------------------------------------------- 8

// runClusterKill SIGKILLs the broker leading most partitions, under load,
// and brings it back (unfenced, every replica in sync) before the next round.
func runClusterKill(s *sc) {
	r := s.clusterStream()
	defer r.b.close()
	rounds := s.size(2, 5)
	var restarts, isrs []time.Duration
	for i := 1; i <= rounds; i++ {
		s.sleep(s.between(3*time.Second, 6*time.Second))
		n, led := r.topLeader()
		r.node("kill", n)
		r.event("round %d: node %d (leader of %d/%d partitions) SIGKILLed", i, n, led, clusterParts)
		s.sleep(s.between(time.Second, 4*time.Second))
		rs, is := r.restartAndSync(n)
		restarts, isrs = append(restarts, rs), append(isrs, is)
	}
	r.finish()
	s.fig("rounds", "%d", rounds)
	s.fig("max restart (unfenced)", "%s", fmtDur(slices.Max(restarts)))
	s.fig("max ISR rejoin", "%s", fmtDur(slices.Max(isrs)))
}

// ---------------------------------------------------------------- 9

// runClusterRolling restarts the three brokers one after the other with a
// controlled shutdown (SIGTERM), each back in sync before the next.
func runClusterRolling(s *sc) {
	r := s.clusterStream()
	defer r.b.close()
	passes := s.size(1, 2)
	var stops []time.Duration
	for p := 1; p <= passes; p++ {
		for n := 1; n <= clusterNodes; n++ {
			s.sleep(s.between(2*time.Second, 4*time.Second))
			r.event("pass %d: node %d SIGTERM (controlled shutdown)", p, n)
			took := r.node("term", n)
			stops = append(stops, took)
			r.event("node %d stopped after %s", n, fmtDur(took))
			r.restartAndSync(n)
		}
	}
	r.finish()
	s.fig("passes", "%d", passes)
	s.fig("max controlled shutdown", "%s", fmtDur(slices.Max(stops)))
}

// ---------------------------------------------------------------- 10

// runClusterReassign moves replicas while the stream runs: each partition's
// leader is dropped from its replicas (a leader move by reassignment), then
// added back first in the list (its log is copied again under load), then a
// preferred-leader election gives it the leadership back.
func runClusterReassign(s *sc) {
	r := s.clusterStream()
	defer r.b.close()
	rounds := s.size(1, 2)
	var moves []time.Duration
	for i := 1; i <= rounds; i++ {
		s.sleep(s.between(3*time.Second, 5*time.Second))
		parts, err := r.c.describe(s.ctx, r.topic)
		if err != nil {
			s.fatalf("describe: %v", err)
		}
		dropped := map[int]int{}
		shrink, grow := map[int][]int{}, map[int][]int{}
		for _, p := range parts {
			dropped[p.ID] = p.Leader
			for _, x := range p.Replicas {
				if x != p.Leader {
					shrink[p.ID] = append(shrink[p.ID], x)
				}
			}
			grow[p.ID] = append([]int{p.Leader}, shrink[p.ID]...)
		}
		r.event("round %d: reassigning every partition without its leader (RF 3 -> 2)", i)
		took, err := r.c.reassign(s.ctx, s.dir, r.topic, shrink, 2*time.Minute)
		if err != nil {
			s.fatalf("reassignment: %v", err)
		}
		moves = append(moves, took)
		r.event("reassignment done in %s", fmtDur(took))
		s.sleep(s.between(time.Second, 3*time.Second))
		r.event("round %d: adding the old leader back, first in the list (RF 2 -> 3, log copied)", i)
		took, err = r.c.reassign(s.ctx, s.dir, r.topic, grow, 3*time.Minute)
		if err != nil {
			s.fatalf("reassignment: %v", err)
		}
		moves = append(moves, took)
		r.event("reassignment done in %s", fmtDur(took))
		s.sleep(s.between(time.Second, 3*time.Second))
		out, err := r.c.electPreferred(s.ctx, s.dir, r.topic, clusterParts)
		if err != nil {
			s.fatalf("preferred-leader election: %v", err)
		}
		after, _ := r.c.describe(s.ctx, r.topic)
		back := 0
		for _, p := range after {
			if p.Leader == dropped[p.ID] {
				back++
			}
		}
		elected := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "Successfully completed leader election") {
				elected += strings.Count(l, r.topic+"-")
			}
		}
		r.event("round %d: preferred-leader election (%d partitions elected): %d/%d partitions led by the re-added replica again",
			i, elected, back, len(after))
		if _, err := r.c.waitISR(s.ctx, clusterISRMax, r.topic); err != nil {
			s.fatalf("after the reassignment: %v", err)
		}
	}
	r.finish()
	s.fig("rounds", "%d", rounds)
	s.fig("max reassignment", "%s", fmtDur(slices.Max(moves)))
}

// ---------------------------------------------------------------- 11

// runClusterPause stops the broker leading most partitions with SIGSTOP for
// 20 s (a hung broker: its sockets stay open, nothing answers), then resumes it.
func runClusterPause(s *sc) {
	r := s.clusterStream()
	defer r.b.close()
	pauses := s.size(1, 3)
	const pauseFor = 20 * time.Second
	var isrs []time.Duration
	for i := 1; i <= pauses; i++ {
		s.sleep(s.between(3*time.Second, 6*time.Second))
		n, led := r.topLeader()
		r.node("pause", n)
		r.event("round %d: node %d (leader of %d/%d partitions) SIGSTOPped", i, n, led, clusterParts)
		s.sleep(pauseFor)
		r.node("resume", n)
		r.event("node %d resumed (SIGCONT)", n)
		isr, err := r.c.waitISR(s.ctx, clusterISRMax, r.topic, offsetsTopic)
		if err != nil {
			s.fatalf("after resuming node %d: %v", n, err)
		}
		isrs = append(isrs, isr)
		r.event("all replicas in sync %s later", fmtDur(isr))
	}
	r.finish()
	s.fig("pauses", "%d × %s", pauses, fmtDur(pauseFor))
	s.fig("max ISR rejoin", "%s", fmtDur(slices.Max(isrs)))
}

// ---------------------------------------------------------------- 12

// runClusterCoordinator SIGKILLs the broker coordinating the consumer's
// group while the consumer commits (every second), then brings it back.
func runClusterCoordinator(s *sc) {
	r := s.clusterStream()
	defer r.b.close()
	rounds := s.size(1, 3)
	var resumed, moved []time.Duration
	for i := 1; i <= rounds; i++ {
		s.sleep(s.between(4*time.Second, 7*time.Second))
		n, err := r.c.coordinator(s.ctx, r.group)
		if err != nil {
			s.fatalf("%v", err)
		}
		r.node("kill", n)
		killed := time.Now()
		r.event("round %d: node %d (the group coordinator) SIGKILLed", i, n)
		// The brokers keep naming the dead node until the controller
		// fences it (broker.session.timeout.ms, 9 s).
		if now, took, ok := r.coordinatorMoved(n, 30*time.Second); ok {
			moved = append(moved, took)
			r.event("coordinator moved to node %d %s after the kill", now, fmtDur(took))
		} else {
			s.require(false, "round %d: the group's coordinator was still node %d 30s after its kill", i, n)
		}
		s.sleep(s.between(time.Second, 3*time.Second))
		r.restartAndSync(n)
		if d, ok := commitResumed(r.poller, killed); ok {
			resumed = append(resumed, d)
			r.event("the group's committed offsets moved again %s after the kill", fmtDur(d))
		} else {
			s.require(false, "round %d: no committed offset moved after node %d was killed", i, n)
		}
	}
	r.finish()
	s.fig("rounds", "%d", rounds)
	if len(moved) > 0 {
		s.fig("max coordinator move", "%s", fmtDur(slices.Max(moved)))
	}
	if len(resumed) > 0 {
		s.fig("max commit gap", "%s", fmtDur(slices.Max(resumed)))
	}
}

// coordinatorMoved waits until FindCoordinator names a node other than
// dead for the group, and returns it and how long that took since now.
func (r *clusterRun) coordinatorMoved(dead int, timeout time.Duration) (int, time.Duration, bool) {
	t0 := time.Now()
	for time.Since(t0) < timeout {
		n, err := r.c.coordinator(r.s.ctx, r.group)
		if err == nil && n != dead {
			return n, time.Since(t0), true
		}
		r.s.sleep(250 * time.Millisecond)
	}
	return 0, time.Since(t0), false
}

// commitResumed returns how long after t a committed offset of the group
// first moved past its value at t, from the poller's samples so far.
func commitResumed(op *offsetPoller, t time.Time) (time.Duration, bool) {
	op.mu.Lock()
	samples := slices.Clone(op.samples)
	op.mu.Unlock()
	at := map[int]int64{}
	for _, x := range samples {
		if x.Time <= t.UnixNano() {
			at[x.Partition] = x.Offset
		}
	}
	for _, x := range samples {
		if x.Time > t.UnixNano() && x.Offset > at[x.Partition] {
			return time.Unix(0, x.Time).Sub(t), true
		}
	}
	return 0, false
}

// ---------------------------------------------------------------- the cluster

// startCluster starts the cluster once, in the background.
func (e *env) startCluster(ctx context.Context) {
	e.clusterOnce.Do(func() {
		go func() {
			defer close(e.clusterReady)
			if why := e.cluster.available(); why != "" {
				e.clusterErr = errors.New(why)
				return
			}
			e.logf("cluster: starting %q on %s", e.cluster.name, strings.Join(e.cluster.addrs(), ","))
			if err := e.cluster.purge(ctx); err != nil {
				e.logf("cluster: purging a stale instance: %v", err)
			}
			took, err := e.cluster.start(ctx)
			e.clusterErr = err
			if err == nil {
				e.logf("cluster: ready in %v (%s)", took.Round(time.Millisecond), e.cluster.version)
			} else {
				e.logf("cluster: failed to start: %v", err)
			}
		}()
	})
}

func (e *env) waitCluster(ctx context.Context) error {
	e.startCluster(ctx)
	select {
	case <-e.clusterReady:
		return e.clusterErr
	case <-ctx.Done():
		return ctx.Err()
	}
}
