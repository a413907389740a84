package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// javaMember is a Java KafkaConsumer in a group (Interop.java's "group"
// subcommand), driven through its standard input and output.
type javaMember struct {
	cmd    *exec.Cmd
	stdin  interface{ Close() error }
	stderr strings.Builder
	done   chan error

	mu       sync.Mutex
	held     map[int]bool
	everHeld bool
	seen     map[int]int // message ID -> times
	exited   bool        // printed "X"
}

func startJavaMember(t *testing.T, topic, group, strategy string) *javaMember {
	t.Helper()
	requireJava(t)
	j := &javaMember{held: map[int]bool{}, seen: map[int]int{}, done: make(chan error, 1)}
	j.cmd = exec.Command(filepath.Join(repoRoot(t), "scripts", "interop", "java.sh"), "group", bootstrap(), topic, group, strategy)
	in, err := j.cmd.StdinPipe()
	require.NoError(t, err)
	j.stdin = in
	out, err := j.cmd.StdoutPipe()
	require.NoError(t, err)
	j.cmd.Stderr = &j.stderr
	require.NoError(t, j.cmd.Start())
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			j.line(sc.Text())
		}
		j.done <- j.cmd.Wait()
	}()
	t.Cleanup(func() { _ = j.cmd.Process.Kill() })
	return j
}

func (j *javaMember) line(l string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	kind, rest, _ := strings.Cut(l, " ")
	switch kind {
	case "A", "V", "L":
		for _, f := range strings.Split(rest, ",") {
			p, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			j.held[p] = kind == "A"
			if kind == "A" {
				j.everHeld = true
			}
		}
	case "R":
		parts := strings.SplitN(rest, " ", 3)
		var m ChatMessage
		if len(parts) == 3 && json.Unmarshal([]byte(parts[2]), &m) == nil {
			j.seen[m.ID]++
		}
	case "X":
		j.exited = true
	}
}

func (j *javaMember) holding() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := 0
	for _, h := range j.held {
		if h {
			n++
		}
	}
	return n
}

// stop closes the member's standard input, which makes it leave the group
// and exit; it returns the exit error.
func (j *javaMember) stop(t *testing.T) error {
	t.Helper()
	_ = j.stdin.Close()
	select {
	case err := <-j.done:
		if err != nil {
			return fmt.Errorf("%w\nstderr:\n%s", err, j.stderr.String())
		}
		return nil
	case <-time.After(60 * time.Second):
		return fmt.Errorf("the Java member did not exit within 60s\nstderr:\n%s", j.stderr.String())
	}
}

// A Java KafkaConsumer (classic protocol) and an mq consumer share a group,
// for each assignor and with either one leading: both hold partitions, the
// Java member throws nothing, every record is consumed; the Java member
// leaves and mq takes over at its committed offsets.
func TestInteropGroupWithJavaMember(t *testing.T) {
	requireRealBroker(t)
	// "consumer": the Java member is on the new protocol (KIP-848) and mq's
	// classic member runs inside the consumer group the broker makes of it.
	for _, strategy := range []string{"range", "roundrobin", "cooperative-sticky", "consumer"} {
		for _, javaLeads := range []bool{false, true} {
			name := strategy + "/mq-leads"
			if javaLeads {
				name = strategy + "/java-leads"
			}
			if strategy == "consumer" { // the broker assigns: nobody leads
				name = "consumer-protocol/mq-first"
				if javaLeads {
					name = "consumer-protocol/java-first"
				}
			}
			t.Run(name, func(t *testing.T) { interopGroup(t, strategy, javaLeads) })
		}
	}
}

func interopGroup(t *testing.T, strategy string, javaLeads bool) {
	const batch = 200
	topic := cluster.NewTopic(t, 6)
	group := "g-" + topic
	p := newProducer(t, topic)
	produceChat(t, p, 0, batch)
	rec := newRecorder()
	opts := fastConsumer(t)
	if strategy != "consumer" {
		opts = append(opts, mq.WithGroupProtocol(mq.GroupProtocol(strategy)))
	}
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, opts...)
	require.NoError(t, err)
	require.NoError(t, c.RegisterHandler(rec))

	var j *javaMember
	var r *running
	if javaLeads {
		j = startJavaMember(t, topic, group, strategy)
		require.Eventually(t, func() bool { return j.holding() == 6 }, 60*time.Second, 10*time.Millisecond,
			"the Java member alone holds every partition")
		r = start(c)
	} else {
		r = start(c)
		require.Eventually(t, func() bool { return len(c.Stats().Partitions) == 6 }, 60*time.Second, 10*time.Millisecond)
		j = startJavaMember(t, topic, group, strategy)
	}
	require.Eventually(t, func() bool {
		return j.holding() > 0 && len(c.Stats().Partitions) > 0 && j.holding()+len(c.Stats().Partitions) == 6
	},
		60*time.Second, 10*time.Millisecond, "both members hold partitions")
	t.Logf("shared: java %d partitions, mq %d", j.holding(), len(c.Stats().Partitions))

	produceChat(t, p, batch, 2*batch)
	union := func() int {
		j.mu.Lock()
		defer j.mu.Unlock()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		ids := map[int]bool{}
		for id := range j.seen {
			ids[id] = true
		}
		for id := range rec.seen {
			ids[id] = true
		}
		return len(ids)
	}
	require.Eventually(t, func() bool { return union() == 2*batch }, 60*time.Second, 10*time.Millisecond)

	require.NoError(t, j.stop(t), "the Java member exits cleanly")
	j.mu.Lock()
	assert.True(t, j.exited)
	javaRecords := len(j.seen)
	j.mu.Unlock()
	produceChat(t, p, 2*batch, 3*batch)
	require.Eventually(t, func() bool { return len(c.Stats().Partitions) == 6 && union() == 3*batch },
		60*time.Second, 10*time.Millisecond, "mq takes over every partition and consumes the rest")
	require.NoError(t, r.stop(t))

	both, repeats := 0, rec.duplicates()
	j.mu.Lock()
	for id, n := range j.seen {
		repeats += n - 1
		if rec.seen[id] > 0 {
			both++
		}
	}
	j.mu.Unlock()
	t.Logf("%s: java consumed %d distinct records, mq %d; seen by both %d, repeated within one member %d",
		strategy, javaRecords, rec.unique(), both, repeats)
	end, err := cluster.EndOffsets(context.Background(), topic)
	require.NoError(t, err)
	committed, err := cluster.CommittedOffsets(context.Background(), group, topic)
	require.NoError(t, err)
	for p, e := range end {
		if e == 0 && committed[p] == -1 {
			committed[p] = 0 // an empty partition: Java commits 0, mq nothing
		}
	}
	assert.Equal(t, end, committed)
	assert.NotContains(t, j.stderr.String(), "Exception")
}
