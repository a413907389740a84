package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// clusterNodes is the size of the scripts/kafka/cluster.sh cluster.
const clusterNodes = 3

// jvmCluster drives one named three-node cluster of scripts/kafka/cluster.sh
// (its own ports and state directories): start, stop, and per node kill,
// term, pause, resume and restart. Node n has Kafka node id n.
type jvmCluster struct {
	repo, name string
	port       int // node n: port+n-1; controllers: port+3+n-1

	mu      sync.Mutex
	version string
}

func (c *jvmCluster) addrs() []string {
	out := make([]string, clusterNodes)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.0.1:%d", c.port+i)
	}
	return out
}

func (c *jvmCluster) script() string { return filepath.Join(c.repo, "scripts", "kafka", "cluster.sh") }

func (c *jvmCluster) nodeDir(n int) string {
	return filepath.Join(kafkaCacheDir(c.repo), "run", fmt.Sprintf("%s-n%d", c.name, n))
}

// kafkaCacheDir is where scripts/kafka keeps jars and state.
func kafkaCacheDir(repo string) string {
	if d := os.Getenv("KAFKA_CACHE_DIR"); d != "" {
		return d
	}
	return filepath.Join(repo, ".cache", "kafka")
}

// available says why the cluster cannot run here, or "".
func (c *jvmCluster) available() string {
	if _, err := os.Stat(c.script()); err != nil {
		return "scripts/kafka/cluster.sh not found (run from the repository or pass -repo)"
	}
	if _, err := exec.LookPath("java"); err != nil {
		return "java not found"
	}
	return ""
}

// run runs cluster.sh with args and returns its stdout.
func (c *jvmCluster) run(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.script(), args...)
	cmd.Env = append(os.Environ(), "KAFKA_PORT="+strconv.Itoa(c.port), "KAFKA_CONTROLLER_PORT="+strconv.Itoa(c.port+clusterNodes))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
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
		return out.String(), fmt.Errorf("cluster.sh %s: %w: %s", strings.Join(args, " "), err, strings.Join(keep, " | "))
	}
	return out.String(), nil
}

// start starts every node that is not running and waits until all are ready.
func (c *jvmCluster) start(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	if _, err := c.run(ctx, 240*time.Second, "start", c.name); err != nil {
		return 0, err
	}
	c.mu.Lock()
	if c.version == "" {
		c.version = readKafkaVersion(filepath.Join(c.nodeDir(1), "kafka.log"))
	}
	c.mu.Unlock()
	return time.Since(t0), nil
}

func readKafkaVersion(logPath string) string {
	b, err := os.ReadFile(logPath)
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

// node runs a per-node command: kill, term, pause, resume or restart.
func (c *jvmCluster) node(ctx context.Context, what string, n int) (time.Duration, error) {
	t0 := time.Now()
	timeout := 30 * time.Second
	switch what {
	case "term":
		timeout = 90 * time.Second
	case "restart":
		timeout = 180 * time.Second
	}
	_, err := c.run(ctx, timeout, what, c.name, strconv.Itoa(n))
	return time.Since(t0), err
}

// nodeStates reports each node's state as cluster.sh status prints it
// ("running", "paused", "stopped"), indexed by node number.
func (c *jvmCluster) nodeStates(ctx context.Context) (map[int]string, error) {
	out, err := c.run(ctx, 30*time.Second, "status", c.name)
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) {
		return nil, err
	}
	states := map[int]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == "node" {
			n, err := strconv.Atoi(f[1])
			if err == nil {
				states[n] = f[2]
			}
		}
	}
	return states, nil
}

// heal resumes paused nodes and restarts stopped ones.
func (c *jvmCluster) heal(ctx context.Context) error {
	states, err := c.nodeStates(ctx)
	if err != nil {
		return err
	}
	for n := 1; n <= clusterNodes; n++ {
		switch states[n] {
		case "paused":
			if _, err := c.node(ctx, "resume", n); err != nil {
				return err
			}
		case "stopped", "":
			if _, err := c.node(ctx, "restart", n); err != nil {
				return err
			}
		}
	}
	return nil
}

// saveLogs copies every node's log into dir (before a purge deletes them).
func (c *jvmCluster) saveLogs(dir string) {
	for n := 1; n <= clusterNodes; n++ {
		if b, err := os.ReadFile(filepath.Join(c.nodeDir(n), "kafka.log")); err == nil {
			_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("cluster-n%d-kafka.log", n)), b, 0o644)
		}
	}
}

// purge stops every node and deletes the cluster's state.
func (c *jvmCluster) purge(ctx context.Context) error {
	_, err := c.run(ctx, 120*time.Second, "stop", "--purge", c.name)
	return err
}

// ---------------------------------------------------------------- metadata

// partitionInfo is one partition as the cluster's metadata shows it.
type partitionInfo struct {
	ID       int
	Leader   int // -1: none
	Replicas []int
	ISR      []int
}

// describe asks a live broker for topic's partitions (a connection of its
// own: no cached metadata).
func (c *jvmCluster) describe(ctx context.Context, topic string) ([]partitionInfo, error) {
	var last error
	for _, a := range c.addrs() {
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		conn, err := (&kafka.Dialer{ClientID: "mqchaos-admin"}).DialContext(dctx, "tcp", a)
		if err != nil {
			cancel()
			last = err
			continue
		}
		d, _ := dctx.Deadline()
		_ = conn.SetDeadline(d)
		parts, err := conn.ReadPartitions(topic)
		conn.Close()
		cancel()
		if err != nil {
			last = err
			continue
		}
		out := make([]partitionInfo, 0, len(parts))
		for _, p := range parts {
			pi := partitionInfo{ID: p.ID, Leader: -1}
			if p.Leader.Host != "" {
				pi.Leader = p.Leader.ID
			}
			for _, r := range p.Replicas {
				pi.Replicas = append(pi.Replicas, r.ID)
			}
			for _, r := range p.Isr {
				pi.ISR = append(pi.ISR, r.ID)
			}
			out = append(out, pi)
		}
		slices.SortFunc(out, func(a, b partitionInfo) int { return a.ID - b.ID })
		return out, nil
	}
	return nil, fmt.Errorf("metadata of %s from no broker: %w", topic, last)
}

// topLeader returns the node leading most partitions of topic (ties: the
// lowest node id) and how many it leads.
func (c *jvmCluster) topLeader(ctx context.Context, topic string) (int, int, error) {
	parts, err := c.describe(ctx, topic)
	if err != nil {
		return 0, 0, err
	}
	count := map[int]int{}
	for _, p := range parts {
		if p.Leader >= 0 {
			count[p.Leader]++
		}
	}
	best := -1
	for n := 1; n <= clusterNodes; n++ {
		if count[n] > 0 && (best < 0 || count[n] > count[best]) {
			best = n
		}
	}
	if best < 0 {
		return 0, 0, fmt.Errorf("no partition of %s has a leader", topic)
	}
	return best, count[best], nil
}

// leaderCounts returns how many partitions of topic each node leads, as
// "n1:2 n2:2 n3:2".
func leaderCounts(parts []partitionInfo) string {
	count := map[int]int{}
	for _, p := range parts {
		count[p.Leader]++
	}
	var s []string
	for n := 1; n <= clusterNodes; n++ {
		s = append(s, fmt.Sprintf("n%d:%d", n, count[n]))
	}
	if count[-1] > 0 {
		s = append(s, fmt.Sprintf("none:%d", count[-1]))
	}
	return strings.Join(s, " ")
}

// coordinator returns the node coordinating group.
func (c *jvmCluster) coordinator(ctx context.Context, group string) (int, error) {
	tr := &kafka.Transport{DialTimeout: 3 * time.Second, ClientID: "mqchaos-admin"}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(c.addrs()...), Transport: tr, Timeout: 5 * time.Second}
	var last error
	for attempt := 0; attempt < 20; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := cl.FindCoordinator(rctx, &kafka.FindCoordinatorRequest{Key: group, KeyType: kafka.CoordinatorKeyTypeConsumer})
		cancel()
		if err == nil && resp.Error != nil {
			err = resp.Error
		}
		if err == nil && resp.Coordinator != nil {
			return resp.Coordinator.NodeID, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("coordinator of group %s: %w", group, last)
}

// waitISR waits until every partition of the topics has all its replicas
// in sync and a leader.
func (c *jvmCluster) waitISR(ctx context.Context, timeout time.Duration, topics ...string) (time.Duration, error) {
	t0 := time.Now()
	deadline := t0.Add(timeout)
	var last string
	for {
		behind := 0
		last = ""
		for _, t := range topics {
			parts, err := c.describe(ctx, t)
			if errors.Is(err, kafka.UnknownTopicOrPartition) {
				continue // not created yet (the offsets topic before the first group)
			}
			if err != nil {
				behind++
				last = err.Error()
				continue
			}
			for _, p := range parts {
				if p.Leader < 0 || len(p.ISR) < len(p.Replicas) {
					behind++
					last = fmt.Sprintf("%s[%d] leader %d replicas %v isr %v", t, p.ID, p.Leader, p.Replicas, p.ISR)
				}
			}
		}
		if behind == 0 {
			return time.Since(t0), nil
		}
		if time.Now().After(deadline) {
			return time.Since(t0), fmt.Errorf("%d partitions not fully in sync after %v (%s)", behind, timeout, last)
		}
		select {
		case <-ctx.Done():
			return time.Since(t0), ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ---------------------------------------------------------------- Kafka's tools

// tool runs a Kafka tool class (scripts/kafka/kafka-run-class.sh) against the
// cluster and returns its output.
func (c *jvmCluster) tool(ctx context.Context, class string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	all := append([]string{class, "--bootstrap-server", strings.Join(c.addrs(), ",")}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(c.repo, "scripts", "kafka", "kafka-run-class.sh"), all...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", class, err, strings.TrimSpace(lastLines(out.String(), 6)))
	}
	return out.String(), nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// reassign moves topic's partitions to the given replica lists with
// ReassignPartitionsCommand and waits until the reassignment completed.
func (c *jvmCluster) reassign(ctx context.Context, dir, topic string, replicas map[int][]int, timeout time.Duration) (time.Duration, error) {
	type part struct {
		Topic     string `json:"topic"`
		Partition int    `json:"partition"`
		Replicas  []int  `json:"replicas"`
	}
	plan := struct {
		Version    int    `json:"version"`
		Partitions []part `json:"partitions"`
	}{Version: 1}
	for p, r := range replicas {
		plan.Partitions = append(plan.Partitions, part{topic, p, r})
	}
	slices.SortFunc(plan.Partitions, func(a, b part) int { return a.Partition - b.Partition })
	b, _ := json.Marshal(plan)
	f, err := os.CreateTemp(dir, "reassign-*.json")
	if err != nil {
		return 0, err
	}
	_, _ = f.Write(b)
	f.Close()
	t0 := time.Now()
	const cls = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
	if _, err := c.tool(ctx, cls, "--reassignment-json-file", f.Name(), "--execute"); err != nil {
		return 0, err
	}
	deadline := t0.Add(timeout)
	for {
		out, err := c.tool(ctx, cls, "--reassignment-json-file", f.Name(), "--verify")
		if err == nil && strings.Contains(out, "is completed") && !strings.Contains(out, "in progress") {
			return time.Since(t0), nil
		}
		if time.Now().After(deadline) {
			return time.Since(t0), fmt.Errorf("reassignment not complete after %v: %v %s", timeout, err, lastLines(out, 4))
		}
		select {
		case <-ctx.Done():
			return time.Since(t0), ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// electPreferred runs a preferred-leader election for every partition of
// topic with LeaderElectionCommand.
func (c *jvmCluster) electPreferred(ctx context.Context, dir, topic string, parts int) (string, error) {
	type tp struct {
		Topic     string `json:"topic"`
		Partition int    `json:"partition"`
	}
	var body struct {
		Partitions []tp `json:"partitions"`
	}
	for p := 0; p < parts; p++ {
		body.Partitions = append(body.Partitions, tp{topic, p})
	}
	b, _ := json.Marshal(body)
	f, err := os.CreateTemp(dir, "election-*.json")
	if err != nil {
		return "", err
	}
	_, _ = f.Write(b)
	f.Close()
	out, err := c.tool(ctx, "org.apache.kafka.tools.LeaderElectionCommand", "--election-type", "PREFERRED", "--path-to-json-file", f.Name())
	return strings.TrimSpace(out), err
}
