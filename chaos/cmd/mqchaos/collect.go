package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/mqkit/mq/chaos/check"
)

// collected is everything a scenario gathered after its processes ended.
type collected struct {
	in        check.Input
	rep       check.Report
	prodSum   *ProducerSummary
	prodLines []check.ProducerLine
	consSums  map[string]*ConsumerSummary
	lifetimes []check.Lifetime // in start order
	foreign   int              // records in the topic that are not chaos messages
}

func readJSON[T any](path string) (*T, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// collect reads the workers' files and the broker's view, then analyzes.
func (s *sc) collect(b *broker, topic, group string, prod *proc, cons []*proc, dlt bool, samples []check.CommitSample) *collected {
	c := &collected{consSums: map[string]*ConsumerSummary{}}
	in := &c.in
	in.DLTEnabled = dlt
	in.Samples = samples
	in.Produced = -1

	if prod != nil {
		f, err := os.Open(prod.Cfg.Out)
		if err != nil {
			s.fatalf("producer log: %v", err)
		}
		lines, bad, err := check.ParseProducerLog(f)
		f.Close()
		if err != nil {
			s.fatalf("producer log: %v", err)
		}
		s.require(bad == 0, "producer log has %d malformed lines", bad)
		c.prodLines = lines
		in.Producer = lines
		if ps, err := readJSON[ProducerSummary](prod.Cfg.Summary); err == nil {
			c.prodSum = ps
			in.Produced = int(ps.Produced)
			in.IDBase = ps.IDBase
		} else {
			s.require(false, "producer summary missing (%v): %s", err, prod.describeExit())
		}
	}
	for _, p := range cons {
		f, err := os.Open(p.Cfg.Out)
		if err != nil {
			s.fatalf("consumer log: %v", err)
		}
		lt, err := check.ParseConsumerLog(p.Name, f)
		f.Close()
		if err != nil {
			s.fatalf("consumer log %s: %v", p.Name, err)
		}
		if lt.Malformed > 0 {
			s.note("%s: %d malformed line(s) in its log (a line torn by SIGKILL is expected to be impossible)", p.Name, lt.Malformed)
		}
		c.lifetimes = append(c.lifetimes, lt)
		if cs, err := readJSON[ConsumerSummary](p.Cfg.Summary); err == nil {
			c.consSums[p.Name] = cs
		}
	}
	in.Lifetimes = c.lifetimes

	end, err := endOffsets(s.ctx, b, topic)
	if err != nil {
		s.fatalf("end offsets: %v", err)
	}
	in.End = end
	if group != "" {
		com, err := committedOffsets(s.ctx, b, group, topic)
		if err != nil {
			s.fatalf("committed offsets: %v", err)
		}
		in.Committed = com
		// The final committed offsets are one more sample of the series.
		now := time.Now().UnixNano()
		for p, o := range com {
			in.Samples = append(in.Samples, check.CommitSample{Time: now, Partition: p, Offset: o})
		}
	}
	t0 := time.Now()
	msgs, err := scanTopic(s.ctx, b.addrs, topic, end)
	if err != nil {
		s.fatalf("reading the topic back: %v", err)
	}
	in.Log, c.foreign = toLogRecords(msgs)
	s.require(c.foreign == 0, "%d records in %s are not chaos messages", c.foreign, topic)
	if dlt {
		dend, err := endOffsets(s.ctx, b, topic+".dlt")
		if err != nil {
			s.fatalf("DLT end offsets: %v", err)
		}
		dm, err := scanTopic(s.ctx, b.addrs, topic+".dlt", dend)
		if err != nil {
			s.fatalf("reading the DLT: %v", err)
		}
		in.DLT = toDLTRecords(dm)
	}
	s.logf("read back %d records in %v", len(in.Log), time.Since(t0).Round(time.Millisecond))
	if cons == nil && group == "" {
		// No consumer: "handled" means "in the log", read in log order.
		in.Lifetimes = []check.Lifetime{logLifetime(in.Log)}
	}
	c.rep = check.Analyze(*in)
	s.res.rep = &reportFigures{produced: c.rep.Produced, acked: c.rep.Acked, consumedUnique: c.rep.HandledUnique,
		lost: c.rep.Lost, dup: c.rep.Duplicates, order: c.rep.OrderViolations}
	s.res.examples = append(s.res.examples, c.rep.Examples...)
	s.logf("produced %d, acked %d, failed %d, rejected %d; log %d; handled %d (unique %d), dup %d, lost %d, order %d, log-inversions %d, log-dups %d, commit decreases %d/%d samples",
		c.rep.Produced, c.rep.Acked, c.rep.SendFailed, c.rep.Rejected, c.rep.LogRecords, c.rep.Handled, c.rep.HandledUnique,
		c.rep.Duplicates, c.rep.Lost, c.rep.OrderViolations, c.rep.LogInversions, c.rep.LogDupIDs, c.rep.CommitDecreases, c.rep.CommitSamples)
	return c
}

// standard checks the requirements every consuming scenario shares.
func (s *sc) standard(c *collected) {
	r := c.rep
	s.require(r.Lost == 0, "lost = %d (acknowledged but never handled%s): ids %v", r.Lost,
		map[bool]string{true: " nor dead-lettered", false: ""}[c.in.DLTEnabled], r.LostIDs)
	if r.LostNotInLog > 0 {
		s.require(false, "%d acknowledged messages are not in the broker's log at all", r.LostNotInLog)
	}
	s.require(r.CommittedUnhandled == 0, "%d records below the committed offset were never handled (commit skipped them)", r.CommittedUnhandled)
	s.require(r.UncommittedTail == 0, "%d records not committed at the end (the group did not drain)", r.UncommittedTail)
	s.require(r.OrderViolations == 0, "%d per-key order violations within an assignment", r.OrderViolations)
	s.require(r.CommitDecreases == 0, "committed offsets moved backwards %d times", r.CommitDecreases)
	s.require(r.MissingOutcome == 0, "%d sends without a reported outcome", r.MissingOutcome)
	s.require(r.DoubleOutcome == 0, "%d sends with more than one reported outcome", r.DoubleOutcome)
	s.require(r.BadHandled == 0, "%d poison/always-panicking messages were handled successfully", r.BadHandled)
	if r.LogInversions > 0 {
		s.note("%d per-key sequence inversions written by the producer (retried produce requests: only a producer without idempotence can)", r.LogInversions)
	}
	if r.LogDupIDs > 0 {
		s.note("%d messages written twice by the producer (retries after a lost response)", r.LogDupIDs)
	}
	if c.prodSum != nil {
		s.require(c.prodSum.DoubleCallbacks == 0, "%d double delivery callbacks", c.prodSum.DoubleCallbacks)
		s.require(c.prodSum.MissingOutcomes == 0, "%d accepted async sends never reported an outcome", c.prodSum.MissingOutcomes)
	}
}

// consumerCfg is the consumer configuration of the stream scenarios.
func (s *sc) consumerCfg(topic, group string, b *broker) WorkerConfig {
	return WorkerConfig{Role: "consumer", Brokers: b.addrs, Topic: topic, Group: group,
		SessionTimeout: 2 * time.Second, HeartbeatInterval: 300 * time.Millisecond,
		RebalanceTimeout: 10 * time.Second, ShutdownTimeout: 10 * time.Second, CommitInterval: time.Second,
		GroupProtocol: s.e.groupProtocol}
}

func (s *sc) producerCfg(topic string, b *broker, n int, rate float64) WorkerConfig {
	return WorkerConfig{Role: "producer", Brokers: b.addrs, Topic: topic, N: n, Rate: rate, Async: true,
		Keys: 64, Senders: 4, Payload: 64}
}

// waitProducer waits for the producer and checks that it exited cleanly.
func (s *sc) waitProducer(p *proc, d time.Duration) {
	select {
	case <-p.done:
	case <-s.ctx.Done():
		s.fatalf("interrupted while waiting for the producer: %v", context.Cause(s.ctx))
	case <-time.After(d):
	}
	if p.alive() {
		s.require(false, "producer still running after %v; killed", d)
		p.stop(10 * time.Second)
		return
	}
	code, sig := p.exit()
	s.require(code == 0 && sig == "", "producer ended with %s (see %s)", p.describeExit(), p.LogPath)
}

// stopConsumer stops a consumer gracefully and checks that Run returned nil.
func (s *sc) stopConsumer(p *proc) time.Duration {
	if !p.alive() {
		s.require(false, "%s had exited by itself (%s) before being stopped (see %s)", p.Name, p.describeExit(), p.LogPath)
		return 0
	}
	t0 := time.Now()
	ok := p.stop(25 * time.Second)
	took := time.Since(t0)
	s.require(ok, "%s did not stop within 25s of SIGTERM", p.Name)
	if ok {
		code, sig := p.exit()
		why := ""
		if cs, err := readJSON[ConsumerSummary](p.Cfg.Summary); err == nil && cs.RunError != "" {
			why = ": Run returned: " + cs.RunError
		}
		s.require(code == 0 && sig == "", "%s: Run did not return nil after SIGTERM: %s%s (see %s)", p.Name, p.describeExit(), why, p.LogPath)
	}
	return took
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.0fs", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	default:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
}

func fmtMs(ms float64) string { return fmtDur(time.Duration(ms * float64(time.Millisecond))) }
