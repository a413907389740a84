package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mqkit/mq/chaos/check"
	"github.com/mqkit/mq/mqtest"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// broker is where a scenario runs: an embedded kfake (in this process),
// the JVM broker started from scripts/kafka, or an external cluster.
type broker struct {
	kind    string // "kfake", "jvm", "external"
	version string
	addrs   []string
	cl      *mqtest.Cluster
	kf      *kfake.Cluster // kind kfake
	close   func()
}

func kfakeVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/twmb/franz-go/pkg/kfake" {
				return "kfake " + d.Version
			}
		}
	}
	return "kfake"
}

func newKfakeBroker(ctx context.Context) (*broker, error) {
	cl, err := mqtest.NewCluster(ctx, mqtest.WithMode(mqtest.ModeEmbedded))
	if err != nil {
		return nil, err
	}
	return &broker{kind: "kfake", version: kfakeVersion(), addrs: cl.Addrs(), cl: cl, kf: cl.Kfake(),
		close: func() { _ = cl.Close() }}, nil
}

func newExternalBroker(ctx context.Context, kind, version string, addrs []string) (*broker, error) {
	cl, err := mqtest.NewCluster(ctx, mqtest.WithMode(mqtest.ModeExternal), mqtest.WithBrokers(addrs...),
		mqtest.WithConnectTimeout(20*time.Second))
	if err != nil {
		return nil, err
	}
	return &broker{kind: kind, version: version, addrs: addrs, cl: cl, close: func() { _ = cl.Close() }}, nil
}

// ---------------------------------------------------------------- JVM broker

// jvmBroker drives one named instance of scripts/kafka (its own ports and
// state directory), so that it never touches another broker on this machine.
type jvmBroker struct {
	repo, name  string
	port, cport int
	logf        func(string, ...any)

	mu      sync.Mutex
	running bool
	version string
}

func (j *jvmBroker) addr() string { return fmt.Sprintf("127.0.0.1:%d", j.port) }

func (j *jvmBroker) script(name string) string {
	return filepath.Join(j.repo, "scripts", "kafka", name)
}

func (j *jvmBroker) stateDir() string { return filepath.Join(j.repo, ".cache", "kafka", "run", j.name) }

// available says why the JVM broker cannot run here, or "".
func (j *jvmBroker) available() string {
	if _, err := os.Stat(j.script("start.sh")); err != nil {
		return "scripts/kafka/start.sh not found (run from the repository or pass -repo)"
	}
	if _, err := exec.LookPath("java"); err != nil {
		return "java not found"
	}
	return ""
}

func (j *jvmBroker) run(ctx context.Context, timeout time.Duration, script string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, j.script(script), args...)
	// A restarted single-node KRaft broker cannot register again before its
	// previous broker session expires (broker.session.timeout.ms, 9 s by
	// default): after a SIGKILL that is the whole restart time. Shorter
	// sessions keep the outage the scenario chose.
	extra := "broker.heartbeat.interval.ms=500\nbroker.session.timeout.ms=2000"
	if v := os.Getenv("KAFKA_EXTRA_PROPS"); v != "" {
		extra += "\n" + v
	}
	cmd.Env = append(os.Environ(), "KAFKA_PORT="+strconv.Itoa(j.port), "KAFKA_CONTROLLER_PORT="+strconv.Itoa(j.cport),
		"KAFKA_EXTRA_PROPS="+extra)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil {
		// The last lines of the script's stderr (the broker log tail), and
		// the root cause of a Java stack trace, which is what matters.
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		var keep []string
		for _, l := range lines {
			if strings.HasPrefix(l, "Caused by:") || strings.HasPrefix(l, "[kafka]") {
				keep = append(keep, l)
			}
		}
		if len(keep) > 8 {
			keep = keep[len(keep)-8:]
		}
		return out.String(), fmt.Errorf("%s %s: %w: %s", script, strings.Join(args, " "), err, strings.Join(keep, " | "))
	}
	return out.String(), nil
}

// start starts the instance (or finds it running) and waits until ready.
func (j *jvmBroker) start(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	for _, p := range []int{j.port, j.cport} {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second); err == nil {
			c.Close()
			return 0, fmt.Errorf("127.0.0.1:%d is already in use by another process: choose other ports with -jvm-port", p)
		}
	}
	_, err := j.run(ctx, 150*time.Second, "start.sh", j.name)
	if err != nil {
		return 0, err
	}
	j.mu.Lock()
	j.running = true
	if j.version == "" {
		j.version = j.readVersion()
	}
	j.mu.Unlock()
	return time.Since(t0), nil
}

var kafkaVersionRE = regexp.MustCompile(`Kafka version: ([0-9][^\s,]*)`)

func (j *jvmBroker) readVersion() string {
	b, err := os.ReadFile(filepath.Join(j.stateDir(), "kafka.log"))
	if err == nil {
		if m := kafkaVersionRE.FindSubmatch(b); m != nil {
			return "Apache Kafka " + string(m[1])
		}
	}
	v := os.Getenv("KAFKA_VERSION")
	if v == "" {
		v = "4.4.0"
	}
	return "Apache Kafka " + v
}

// stopGraceful stops the broker with SIGTERM (controlled shutdown).
func (j *jvmBroker) stopGraceful(ctx context.Context) error {
	_, err := j.run(ctx, 60*time.Second, "stop.sh", j.name)
	j.mu.Lock()
	j.running = false
	j.mu.Unlock()
	return err
}

// crash SIGKILLs the broker JVM and removes its pid file as stop.sh would.
func (j *jvmBroker) crash() error {
	pidFile := filepath.Join(j.stateDir(), "kafka.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("no pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	_ = os.Remove(pidFile)
	_ = os.Remove(filepath.Join(j.stateDir(), "brokers"))
	_ = os.Remove(filepath.Join(j.stateDir(), "kafka.jsa")) // a half-dumped archive
	j.mu.Lock()
	j.running = false
	j.mu.Unlock()
	return nil
}

// saveLog copies the broker's log to path (before a purge deletes it).
func (j *jvmBroker) saveLog(path string) {
	if b, err := os.ReadFile(filepath.Join(j.stateDir(), "kafka.log")); err == nil {
		_ = os.WriteFile(path, b, 0o644)
	}
}

// purge stops the instance if it runs and deletes its state.
func (j *jvmBroker) purge(ctx context.Context) error {
	_, err := j.run(ctx, 60*time.Second, "stop.sh", "--purge", j.name)
	j.mu.Lock()
	j.running = false
	j.mu.Unlock()
	return err
}

// ---------------------------------------------------------------- admin helpers

func createTopic(ctx context.Context, b *broker, topic string, partitions int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return b.cl.CreateTopic(ctx, topic, partitions)
}

func endOffsets(ctx context.Context, b *broker, topic string) (map[int]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return b.cl.EndOffsets(ctx, topic)
}

func committedOffsets(ctx context.Context, b *broker, group, topic string) (map[int]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return b.cl.CommittedOffsets(ctx, group, topic)
}

// offsetPoller samples a group's committed offsets until stopped; every
// decrease is what the scenarios flag.
type offsetPoller struct {
	mu      sync.Mutex
	samples []check.CommitSample
	errs    int
	stop    chan struct{}
	done    chan struct{}
}

func startOffsetPoller(ctx context.Context, addrs []string, group, topic string, parts int, every time.Duration) *offsetPoller {
	op := &offsetPoller{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(op.done)
		tr := &kafka.Transport{DialTimeout: 2 * time.Second, MetadataTTL: time.Second, ClientID: "mqchaos-poller"}
		defer tr.CloseIdleConnections()
		cl := &kafka.Client{Addr: kafka.TCP(addrs...), Transport: tr, Timeout: 3 * time.Second}
		ids := make([]int, parts)
		for i := range ids {
			ids[i] = i
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-op.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			resp, err := cl.OffsetFetch(rctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
			cancel()
			now := time.Now().UnixNano()
			if err != nil || (resp.Error != nil && !errors.Is(resp.Error, kafka.GroupIdNotFound)) {
				op.mu.Lock()
				op.errs++
				op.mu.Unlock()
				continue
			}
			op.mu.Lock()
			for _, p := range resp.Topics[topic] {
				if p.Error != nil {
					op.errs++
					continue
				}
				op.samples = append(op.samples, check.CommitSample{Time: now, Partition: p.Partition, Offset: p.CommittedOffset})
			}
			op.mu.Unlock()
		}
	}()
	return op
}

func (op *offsetPoller) finish() ([]check.CommitSample, int) {
	close(op.stop)
	<-op.done
	op.mu.Lock()
	defer op.mu.Unlock()
	return slices.Clone(op.samples), op.errs
}

// waitDrained waits until the group has committed every partition's end
// offset (and the end offsets stayed the same), or the timeout passes.
func waitDrained(ctx context.Context, b *broker, group, topic string, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	deadline := t0.Add(timeout)
	var last string
	for {
		end, err := endOffsets(ctx, b, topic)
		if err == nil {
			var com map[int]int64
			com, err = committedOffsets(ctx, b, group, topic)
			if err == nil {
				behind := int64(0)
				for p, e := range end {
					if c := com[p]; c < e {
						behind += e - max(c, 0)
					}
				}
				if behind == 0 {
					return time.Since(t0), nil
				}
				last = fmt.Sprintf("%d records not committed (end %v, committed %v)", behind, end, com)
			}
		}
		if err != nil {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return time.Since(t0), fmt.Errorf("not drained after %v: %s", timeout, last)
		}
		select {
		case <-ctx.Done():
			return time.Since(t0), ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// scanTopic reads every record of topic below the given end offsets.
func scanTopic(ctx context.Context, addrs []string, topic string, ends map[int]int64) ([]kafka.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	var mu sync.Mutex
	var out []kafka.Message
	var wg sync.WaitGroup
	errs := make(chan error, len(ends))
	for p, end := range ends {
		if end <= 0 {
			continue
		}
		wg.Add(1)
		go func(p int, end int64) {
			defer wg.Done()
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: addrs, Topic: topic, Partition: p,
				MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 200 * time.Millisecond, ReadLagInterval: -1,
				StartOffset: kafka.FirstOffset})
			defer r.Close()
			var local []kafka.Message
			for {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					errs <- fmt.Errorf("reading %s[%d] (%d of %d records read): %w", topic, p, len(local), end, err)
					return
				}
				if m.Offset >= end {
					break
				}
				local = append(local, m)
				if m.Offset >= end-1 {
					break
				}
			}
			mu.Lock()
			out = append(out, local...)
			mu.Unlock()
		}(p, end)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return out, err
	}
	return out, nil
}

func header(m kafka.Message, key string) string {
	for i := len(m.Headers) - 1; i >= 0; i-- {
		if m.Headers[i].Key == key {
			return string(m.Headers[i].Value)
		}
	}
	return ""
}

func toLogRecords(msgs []kafka.Message) ([]check.LogRecord, int) {
	out := make([]check.LogRecord, 0, len(msgs))
	foreign := 0
	for _, m := range msgs {
		id, err1 := strconv.ParseInt(header(m, hdrID), 10, 64)
		seq, err2 := strconv.ParseInt(header(m, hdrSeq), 10, 64)
		kind, err3 := strconv.Atoi(header(m, hdrKind))
		if err1 != nil || err2 != nil || err3 != nil {
			foreign++
			continue
		}
		out = append(out, check.LogRecord{Partition: m.Partition, Offset: m.Offset, ID: id,
			Key: header(m, hdrKey), Seq: seq, Kind: check.Kind(kind)})
	}
	return out, foreign
}

func toDLTRecords(msgs []kafka.Message) []check.DLTRecord {
	out := make([]check.DLTRecord, 0, len(msgs))
	for _, m := range msgs {
		id, err := strconv.ParseInt(header(m, hdrID), 10, 64)
		if err != nil {
			id = -1
		}
		out = append(out, check.DLTRecord{ID: id, Failure: header(m, "mq-failure")})
	}
	return out
}
