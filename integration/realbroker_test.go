package integration

// Behaviour the embedded kfake broker cannot show, checked against a real
// Apache Kafka broker (KAFKA_BROKERS, e.g. from scripts/kafka/start.sh): real
// acknowledgements and logs, topic auto-creation switched off, the broker's
// message size limit, and consumer-group rebalances driven by real session
// timeouts, including a member that crashes. On the embedded broker these
// tests skip.
//
//	eval "$(scripts/kafka/start.sh)"
//	go test -race -count=1 -run RealBroker -v ./integration/

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqtest"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// Acknowledged sends return the offsets the log really holds: with acks=all
// and acks=leader every synchronous send returns the next offset, and
// ReadAll finds each message there. With acks=none offsets are unknown (-1)
// but the messages still arrive, in order.
func TestRealBrokerAcks(t *testing.T) {
	requireRealBroker(t)
	for _, tc := range []struct {
		name string
		acks mq.Acks
	}{{"all", mq.AcksAll}, {"leader", mq.AcksLeader}, {"none", mq.AcksNone}} {
		t.Run(tc.name, func(t *testing.T) {
			const single, batch = 20, 10
			topic := cluster.NewTopic(t, 1)
			p := newProducer(t, topic, mq.WithRequiredAcks(tc.acks))
			ctx := ctxT(t)
			var offsets []int64
			for i := 0; i < single; i++ {
				res, err := p.Send(ctx, []byte(convID(i)), ChatMessage{ID: i, Body: tc.name})
				require.NoError(t, err)
				assert.Equal(t, topic, res.Topic)
				assert.Equal(t, 0, res.Partition)
				offsets = append(offsets, res.Offset)
			}
			msgs := make([]mq.Message[ChatMessage], batch)
			for i := range msgs {
				msgs[i] = mq.Message[ChatMessage]{Value: ChatMessage{ID: single + i, Body: tc.name}}
			}
			results, err := p.SendMessages(ctx, msgs...)
			require.NoError(t, err)
			for _, r := range results {
				offsets = append(offsets, r.Offset)
			}

			const n = single + batch
			if tc.acks == mq.AcksNone {
				for i, o := range offsets {
					assert.EqualValues(t, -1, o, "message %d: no acknowledgement, no offset", i)
				}
			} else {
				for i, o := range offsets {
					require.EqualValues(t, i, o, "message %d", i)
				}
			}

			got, err := cluster.ReadAll(ctx, topic, n)
			require.NoError(t, err, "every message arrives")
			require.Len(t, got, n)
			ids := make([]int, n)
			for i, m := range got {
				var v ChatMessage
				require.NoError(t, json.Unmarshal(m.Value, &v))
				assert.EqualValues(t, i, m.Offset)
				assert.Equal(t, tc.name, v.Body)
				ids[i] = v.ID
			}
			if tc.acks == mq.AcksNone {
				// No order guarantee with AcksNone (see mq.AcksNone).
				slices.Sort(ids)
			}
			assert.Equal(t, allPartitions(n), ids, "message IDs by offset")
			end, err := cluster.EndOffsets(ctx, topic)
			require.NoError(t, err)
			assert.EqualValues(t, n, end[0], "nothing written twice")
		})
	}
}

// With auto.create.topics.enable=false (and mq never asking for creation), a
// send to a missing topic fails with an error naming the topic, within the
// delivery timeout (a synchronous Send returns it, SendAsync's callback gets
// it), and the topic still does not exist afterwards.
func TestRealBrokerMissingTopicIsNotAutoCreated(t *testing.T) {
	requireRealBroker(t)
	const deliveryTimeout = 2 * time.Second
	topic := mqtest.UniqueName(t.Name())
	p := newProducer(t, topic, mq.WithDeliveryTimeout(deliveryTimeout))
	ctx := ctxT(t)

	check := func(what string, send func() error) {
		t.Helper()
		start := time.Now()
		err := send()
		took := time.Since(start)
		require.Error(t, err, what)
		t.Logf("%s: after %v: %v", what, took.Round(time.Millisecond), err)
		assert.ErrorIs(t, err, kafka.UnknownTopicOrPartition, what)
		assert.Contains(t, err.Error(), strconv.Quote(topic)+" does not exist", what)
		assert.Contains(t, err.Error(), "Unknown Topic Or Partition", what)
		assert.NotErrorIs(t, err, context.DeadlineExceeded, "%s: ended by the broker's answer and the delivery timeout, not the test's context", what)
	}
	check("Send", func() error {
		_, err := p.Send(ctx, []byte("k"), ChatMessage{ID: 1})
		return err
	})
	// SendAsync never waits for metadata: it buffers, and the callback gets
	// the error.
	check("SendAsync", func() error {
		reported := make(chan error, 1)
		if err := p.SendAsync(ctx, mq.Message[ChatMessage]{Value: ChatMessage{ID: 2}}, func(_ mq.Message[ChatMessage], err error) {
			reported <- err
		}); err != nil {
			t.Errorf("SendAsync: %v (it reports through its callback)", err)
			return err
		}
		return <-reported
	})
	require.NoError(t, p.Close())

	_, err := cluster.EndOffsets(ctx, topic)
	require.ErrorIs(t, err, kafka.UnknownTopicOrPartition, "the sends did not create the topic")
}

// A message larger than the broker's message.max.bytes (1 MiB by default),
// let through by larger WithBatchBytes and WithMaxRequestSize limits, fails
// at once with the broker's MESSAGE_TOO_LARGE error (wrapping
// mq.ErrMessageTooLarge) instead of hanging or being retried until the
// delivery timeout, and the producer keeps working.
func TestRealBrokerMessageTooLarge(t *testing.T) {
	requireRealBroker(t)
	// Far beyond the test's own context: a message retried until the
	// delivery timeout would fail with the context's error instead of the
	// broker's.
	const deliveryTimeout = time.Hour
	newBytesProducer := func(t *testing.T, topic string, opts ...mq.ProducerOption) *mq.Producer[[]byte] {
		p, err := mq.NewProducer[[]byte](cluster.Addrs(), topic, append([]mq.ProducerOption{
			mq.WithCodec[[]byte](mq.BytesCodec{}), mq.WithBatchBytes(4 << 20), mq.WithMaxRequestSize(4 << 20),
			mq.WithDeliveryTimeout(deliveryTimeout),
		}, opts...)...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), (2<<20)/16) // 2 MiB

	t.Run("alone", func(t *testing.T) {
		topic := cluster.NewTopic(t, 1)
		p := newBytesProducer(t, topic)
		ctx := ctxT(t)
		start := time.Now()
		_, err := p.Send(ctx, []byte("big"), big)
		took := time.Since(start)
		require.Error(t, err)
		t.Logf("2 MiB message: after %v: %.300v", took.Round(time.Millisecond), err)
		assert.ErrorIs(t, err, kafka.MessageSizeTooLarge)
		assert.ErrorIs(t, err, mq.ErrMessageTooLarge)
		assert.Contains(t, err.Error(), "Message Size Too Large")
		assert.NotErrorIs(t, err, context.DeadlineExceeded, "rejected at once, not retried")

		res, err := p.Send(ctx, []byte("small"), []byte("fits"))
		require.NoError(t, err, "the producer keeps working")
		assert.EqualValues(t, 0, res.Offset, "nothing of the rejected message was written")
		got, err := cluster.ReadAll(ctx, topic, 1)
		require.NoError(t, err)
		assert.Equal(t, "fits", string(got[0].Value))
	})

	// Messages that fit are not failed because an oversize one shared their
	// batch: the broker rejects the whole batch, and the Java client then
	// splits it and sends the records again.
	t.Run("sharing a batch", func(t *testing.T) {
		topic := cluster.NewTopic(t, 1)
		p := newBytesProducer(t, topic, mq.WithBatchTimeout(time.Hour)) // only Flush sends: one batch
		ctx := ctxT(t)
		var mu sync.Mutex
		outcome := map[string]error{}
		for _, m := range []mq.Message[[]byte]{
			{Key: []byte("before"), Value: []byte("small 1")},
			{Key: []byte("big"), Value: big},
			{Key: []byte("after"), Value: []byte("small 2")},
		} {
			require.NoError(t, p.SendAsync(ctx, m, func(m mq.Message[[]byte], err error) {
				mu.Lock()
				outcome[string(m.Key)] = err
				mu.Unlock()
			}))
		}
		start := time.Now()
		ferr := p.Flush(ctx)
		took := time.Since(start)
		t.Logf("Flush: after %v: %.300v", took.Round(time.Millisecond), ferr)
		assert.NotErrorIs(t, ferr, context.DeadlineExceeded, "no retries until the delivery timeout")
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, outcome, 3, "every message reports")
		assert.ErrorIs(t, outcome["big"], kafka.MessageSizeTooLarge)
		assert.NoError(t, outcome["before"], "a message that fits is delivered although an oversize one shared its batch")
		assert.NoError(t, outcome["after"], "a message that fits is delivered although an oversize one shared its batch")
		if outcome["before"] == nil && outcome["after"] == nil {
			got, err := cluster.ReadAll(ctx, topic, 2)
			require.NoError(t, err)
			assert.Equal(t, "small 1", string(got[0].Value))
			assert.Equal(t, "small 2", string(got[1].Value))
		}
	})
}

// ----- consumer groups with real session timeouts -----

// realGroupOptions are consumer options with real-world session timing: a
// member silent for 6s is evicted; heartbeats every 500ms.
func realGroupOptions(extra ...mq.ConsumerOption) []mq.ConsumerOption {
	return append([]mq.ConsumerOption{
		mq.WithSessionTimeout(sessionTimeout),
		mq.WithHeartbeatInterval(500 * time.Millisecond),
		mq.WithRebalanceTimeout(10 * time.Second),
		mq.WithCommitInterval(200 * time.Millisecond),
		mq.WithFetchMaxWait(100 * time.Millisecond),
		mq.WithShutdownTimeout(5 * time.Second),
	}, extra...)
}

const sessionTimeout = 6 * time.Second

// assignment tracks the partitions a member currently owns.
type assignment struct {
	mu      sync.Mutex
	current []int
	gens    int
}

func (a *assignment) assigned(m map[string][]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ids := range m {
		a.current = slices.Sorted(slices.Values(ids))
	}
	a.gens++
}

func (a *assignment) revoked(map[string][]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.current = nil
}

func (a *assignment) get() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.current)
}

func allPartitions(n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return ids
}

// A member that closes gracefully leaves the group: the other member takes
// over all partitions well before the session timeout, and nothing is lost.
func TestRealBrokerRebalanceGracefulHandover(t *testing.T) {
	requireRealBroker(t)
	const parts = 4
	topic := cluster.NewTopic(t, parts)
	p := newProducer(t, topic)
	group := "g-" + topic
	all := newRecorder()

	type member struct {
		c   *mq.KafkaConsumer[ChatMessage]
		r   *running
		asg *assignment
	}
	newMember := func(name string) *member {
		asg := &assignment{}
		c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, realGroupOptions(
			mq.WithLogger(zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Named(name)),
			mq.WithClientID(name), mq.WithOnAssigned(asg.assigned), mq.WithOnRevoked(asg.revoked))...)
		require.NoError(t, err)
		require.NoError(t, c.RegisterHandler(mq.HandlerFunc[ChatMessage](func(ctx context.Context, m mq.Message[ChatMessage]) error {
			time.Sleep(200 * time.Microsecond) // keep the stream flowing across the rebalances
			return all.Handle(ctx, m)
		})))
		return &member{c: c, r: start(c), asg: asg}
	}

	produceChat(t, p, 0, 1000)
	a := newMember("mq-a")
	require.Eventually(t, func() bool { return len(a.asg.get()) == parts && all.count() >= 100 }, 30*time.Second, 10*time.Millisecond)
	b := newMember("mq-b")
	require.Eventually(t, func() bool { return len(a.asg.get()) == parts/2 && len(b.asg.get()) == parts/2 }, 30*time.Second, 10*time.Millisecond,
		"the partitions are split between the two members")
	produceChat(t, p, 1000, 2000)

	closing := time.Now()
	require.NoError(t, a.c.Close())
	require.NoError(t, a.r.wait(t))
	require.Eventually(t, func() bool { return slices.Equal(b.asg.get(), allPartitions(parts)) }, 30*time.Second, 10*time.Millisecond,
		"the remaining member owns every partition")
	takeover := time.Since(closing)
	t.Logf("graceful close to takeover: %v (session timeout %v)", takeover.Round(time.Millisecond), sessionTimeout)
	assert.Less(t, takeover, sessionTimeout, "a closing member leaves the group instead of waiting to be evicted")

	produceChat(t, p, 2000, 2500)
	require.Eventually(t, func() bool { return all.unique() >= 2500 }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, b.r.stop(t))
	assert.Equal(t, 2500, all.unique(), "nothing lost")
	t.Logf("duplicates across the rebalances: %d", all.duplicates())
	end, err := cluster.EndOffsets(ctxT(t), topic)
	require.NoError(t, err)
	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.Equal(t, end, committed)
}

// Environment of the helper process (TestHelperProcessConsumer).
const (
	envHelper      = "MQ_TEST_HELPER_PROCESS"
	envHelperTopic = "MQ_TEST_HELPER_TOPIC"
	envHelperGroup = "MQ_TEST_HELPER_GROUP"
	helperPrefix   = "mqhelper "
)

// TestHelperProcessConsumer is not a test: TestRealBrokerRebalanceAfterCrash
// re-executes the test binary to run it as a consumer group member in a
// process of its own, which it then SIGKILLs. It reports its assignments and
// every message it processed on stdout, and exits when stdin closes (its
// parent is gone) or after two minutes.
func TestHelperProcessConsumer(t *testing.T) {
	if os.Getenv(envHelper) != "consumer" {
		t.Skip("helper process of TestRealBrokerRebalanceAfterCrash; runs only when re-executed by it")
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, helperPrefix+format+"\n", args...) // unbuffered: nothing lost to SIGKILL
	}
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), os.Getenv(envHelperTopic), os.Getenv(envHelperGroup), realGroupOptions(
		mq.WithClientID("mq-crash-victim"),
		mq.WithOnAssigned(func(m map[string][]int) {
			for _, ids := range m {
				s := make([]string, len(ids))
				for i, id := range ids {
					s[i] = strconv.Itoa(id)
				}
				say("assigned %s", strings.Join(s, ","))
			}
		}),
		mq.WithOnRevoked(func(map[string][]int) { say("revoked") }))...)
	if err != nil {
		say("error %v", err)
		os.Exit(2)
	}
	_ = c.RegisterHandler(mq.HandlerFunc[ChatMessage](func(_ context.Context, m mq.Message[ChatMessage]) error {
		time.Sleep(5 * time.Millisecond) // slow: still mid-stream when killed
		say("msg %d %d %d", m.Value.ID, m.Partition, m.Offset)
		return nil
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	say("stopped %v", c.Run(ctx))
	os.Exit(0)
}

// helperConsumer is a consumer running in a child process.
type helperConsumer struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{} // stdout fully read

	mu        sync.Mutex
	seen      map[int]int // message ID -> times processed
	processed int
	current   []int
}

func startHelperConsumer(t *testing.T, topic, group string) *helperConsumer {
	t.Helper()
	h := &helperConsumer{seen: map[int]int{}, done: make(chan struct{})}
	h.cmd = exec.Command(os.Args[0], "-test.run=^TestHelperProcessConsumer$", "-test.count=1")
	h.cmd.Env = append(os.Environ(), envHelper+"=consumer", envHelperTopic+"="+topic, envHelperGroup+"="+group,
		// The child joins this cluster, whatever mode started it.
		mqtest.EnvMode+"="+string(mqtest.ModeExternal), mqtest.EnvBrokers+"="+strings.Join(cluster.Addrs(), ","))
	h.cmd.Stderr = &h.stderr
	stdin, err := h.cmd.StdinPipe() // held open: the child exits when it closes
	require.NoError(t, err)
	stdout, err := h.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, h.cmd.Start())
	t.Cleanup(func() {
		_ = h.cmd.Process.Kill()
		_ = stdin.Close()
		<-h.done
		_ = h.cmd.Wait()
		if t.Failed() {
			t.Logf("helper process stderr:\n%s", h.stderr.String())
		}
	})
	go func() {
		defer close(h.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), helperPrefix)
			if !ok {
				continue
			}
			verb, rest, _ := strings.Cut(line, " ")
			h.mu.Lock()
			switch verb {
			case "msg":
				if f := strings.Fields(rest); len(f) == 3 {
					if id, err := strconv.Atoi(f[0]); err == nil {
						h.seen[id]++
						h.processed++
					}
				}
			case "assigned":
				h.current = nil
				for _, s := range strings.Split(rest, ",") {
					if id, err := strconv.Atoi(s); err == nil {
						h.current = append(h.current, id)
					}
				}
				slices.Sort(h.current)
			case "revoked":
				h.current = nil
			}
			h.mu.Unlock()
		}
	}()
	return h
}

func (h *helperConsumer) state() (current []int, processed int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.current), h.processed
}

// kill ends the child with SIGKILL: no commit, no LeaveGroup, no goodbye.
func (h *helperConsumer) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, h.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		t.Fatal("helper process output did not end after SIGKILL")
	}
	err := h.cmd.Wait()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "helper process exit: %v", err)
}

// A member that crashes (SIGKILL: no commit, no LeaveGroup) is evicted once
// its session times out; the surviving member then owns every partition and
// consumes what the dead one had not committed, so nothing is lost.
// Duplicates (processed by the dead member, not yet committed) are allowed.
func TestRealBrokerRebalanceAfterCrash(t *testing.T) {
	requireRealBroker(t)
	const parts = 4
	topic := cluster.NewTopic(t, parts)
	p := newProducer(t, topic)
	group := "g-" + topic
	produceChat(t, p, 0, 2000)

	victim := startHelperConsumer(t, topic, group)
	require.Eventually(t, func() bool {
		cur, n := victim.state()
		return len(cur) == parts && n >= 100
	}, 45*time.Second, 10*time.Millisecond, "the child process consumes")

	survivor := newRecorder()
	asg := &assignment{}
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, realGroupOptions(
		mq.WithLogger(zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))),
		mq.WithClientID("mq-survivor"), mq.WithOnAssigned(asg.assigned), mq.WithOnRevoked(asg.revoked))...)
	require.NoError(t, err)
	require.NoError(t, c.RegisterHandler(survivor))
	r := start(c)
	require.Eventually(t, func() bool {
		cur, _ := victim.state()
		return len(cur) == parts/2 && len(asg.get()) == parts/2
	}, 30*time.Second, 10*time.Millisecond, "the partitions are split between the two members")

	// Kill it while it works through its half, with offsets not yet committed.
	_, atSplit := victim.state()
	require.Eventually(t, func() bool {
		_, n := victim.state()
		return n >= atSplit+100
	}, 30*time.Second, time.Millisecond, "the child consumes its half")
	killed := time.Now()
	victim.kill(t)
	_, processed := victim.state()
	t.Logf("killed the child after it processed %d messages (%d since the split)", processed, processed-atSplit)
	require.Less(t, processed, 2000, "the child must die mid-stream")

	require.Eventually(t, func() bool { return slices.Equal(asg.get(), allPartitions(parts)) }, sessionTimeout+30*time.Second, 10*time.Millisecond,
		"the survivor owns every partition once the dead member's session timed out")
	takeover := time.Since(killed)
	t.Logf("SIGKILL to takeover: %v (session timeout %v)", takeover.Round(time.Millisecond), sessionTimeout)
	assert.Greater(t, takeover, sessionTimeout/2, "a killed member says no goodbye: the group waits for its session to time out")

	produceChat(t, p, 2000, 2500)
	lost := func() []int {
		var missing []int
		survivor.mu.Lock()
		defer survivor.mu.Unlock()
		for id := 0; id < 2500; id++ {
			if survivor.seen[id] == 0 && victim.seen[id] == 0 { // victim is dead: no more writes
				missing = append(missing, id)
			}
		}
		return missing
	}
	require.Eventually(t, func() bool { return len(lost()) == 0 }, 60*time.Second, 20*time.Millisecond)
	require.NoError(t, r.stop(t))
	assert.Empty(t, lost(), "lost messages")

	dups := survivor.duplicates()
	redelivered := 0
	for id, n := range victim.seen {
		dups += n - 1
		if survivor.seen[id] > 0 {
			redelivered++
		}
	}
	t.Logf("lost: 0; processed by the dead member and again by the survivor: %d; other duplicates: %d", redelivered, dups)

	end, err := cluster.EndOffsets(ctxT(t), topic)
	require.NoError(t, err)
	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.Equal(t, end, committed)
}
