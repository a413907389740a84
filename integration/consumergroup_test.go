package integration

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqtest"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A handler that drains for twice the session timeout while its partition
// is revoked: the member keeps heartbeating, the revoke commit succeeds and
// nothing is delivered twice.
func TestRevokeCommitAfterDrainingTwiceTheSessionTimeout(t *testing.T) {
	const n = 40
	const session = time.Second
	topic := cluster.NewTopic(t, 2)
	p := newProducer(t, topic)
	produceChat(t, p, 0, n)
	group := "g-" + topic
	all := newRecorder()
	slowStarted := make(chan struct{})
	var slowOnce sync.Once
	var slowDone atomic.Bool
	handler := mq.HandlerFunc[ChatMessage](func(ctx context.Context, m mq.Message[ChatMessage]) error {
		if m.Value.ID == 5 {
			first := false
			slowOnce.Do(func() { first = true })
			if first {
				close(slowStarted)
				deadline := time.Now().Add(2 * session)
				for time.Now().Before(deadline) { // simulated work: the drain under test
					time.Sleep(10 * time.Millisecond)
				}
				slowDone.Store(true)
			}
		}
		return all.Handle(ctx, m)
	})
	newMember := func() *running {
		c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t,
			mq.WithSessionTimeout(session), mq.WithRebalanceTimeout(10*time.Second),
			mq.WithShutdownTimeout(10*time.Second))...)
		require.NoError(t, err)
		require.NoError(t, c.RegisterHandler(handler))
		return start(c)
	}
	a := newMember()
	select {
	case <-slowStarted:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow message was never handled")
	}
	b := newMember() // rebalances while the slow handler runs
	require.Eventually(t, func() bool { return all.unique() >= n }, 60*time.Second, 10*time.Millisecond)
	require.True(t, slowDone.Load())
	require.NoError(t, a.stop(t))
	require.NoError(t, b.stop(t))
	assert.Equal(t, 0, all.duplicates(), "nothing delivered twice")
	end, err := cluster.EndOffsets(ctxT(t), topic)
	require.NoError(t, err)
	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.Equal(t, end, committed)
}

// With WithMissingTopicsFatal, Run returns ErrTopicNotFound for a topic that
// does not exist.
func TestMissingTopicFatal(t *testing.T) {
	topic := mqtest.UniqueName("missing")
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, "g-"+topic,
		fastConsumer(t, mq.WithMissingTopicsFatal())...)
	require.NoError(t, err)
	require.NoError(t, c.RegisterHandler(newRecorder()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = c.Run(ctx)
	require.ErrorIs(t, err, mq.ErrTopicNotFound)
	require.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
	require.Contains(t, err.Error(), topic)
	assert.Zero(t, c.Stats().Rebalances, "never joined")
}

// By default a consumer of a missing topic waits for it without joining
// (no generations), says why in Ready, and consumes once it exists.
func TestMissingTopicWaitsThenConsumes(t *testing.T) {
	topic := mqtest.UniqueName("missing-wait")
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, "g-"+topic, fastConsumer(t)...)
	require.NoError(t, err)
	rec := newRecorder()
	require.NoError(t, c.RegisterHandler(rec))
	r := start(c)
	require.Eventually(t, func() bool {
		err := c.Ready()
		return err != nil && strings.Contains(err.Error(), "missing topics") && strings.Contains(err.Error(), topic)
	}, 10*time.Second, 10*time.Millisecond)
	assert.Zero(t, c.Stats().Rebalances, "no generation while the topic is missing")

	require.NoError(t, cluster.CreateTopic(ctxT(t), topic, 1))
	p := newProducer(t, topic)
	produceChat(t, p, 0, 3)
	require.Eventually(t, func() bool { return rec.unique() == 3 }, 60*time.Second, 10*time.Millisecond)
	require.NoError(t, c.Ready())
	require.NoError(t, r.stop(t))
	assert.Equal(t, int64(1), c.Stats().Rebalances, "one generation")
}

// A static member restarted within the session timeout gets its partitions
// back without the other member seeing a revocation.
func TestStaticMemberRestartWithoutRebalance(t *testing.T) {
	topic := cluster.NewTopic(t, 4)
	group := "g-" + topic
	var revokedB atomic.Int32
	var assignedA sync.Map // run number -> partitions
	newMember := func(instance string, extra ...mq.ConsumerOption) *mq.KafkaConsumer[ChatMessage] {
		// Range alone: kfake lets a static member back without a rebalance
		// only when its JoinGroup metadata equals the previous member's
		// bytes, and the default's cooperative-sticky subscription carries
		// the partitions owned at the last join (none after a restart).
		// Apache Kafka compares only the protocol the group would select.
		opts := fastConsumer(t, append([]mq.ConsumerOption{mq.WithGroupInstanceID(instance),
			mq.WithGroupProtocol(mq.GroupProtocolRange),
			mq.WithSessionTimeout(10 * time.Second)}, extra...)...)
		c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, opts...)
		require.NoError(t, err)
		require.NoError(t, c.RegisterHandler(newRecorder()))
		return c
	}
	var runA atomic.Int32
	onA := mq.WithOnAssigned(func(m map[string][]int) { assignedA.Store(runA.Load(), m[topic]) })
	a := newMember("a", onA)
	b := newMember("b", mq.WithOnRevoked(func(map[string][]int) { revokedB.Add(1) }))
	ra := start(a)
	rb := start(b)
	settled := func() bool {
		sa, sb := a.Stats(), b.Stats()
		return len(sa.Partitions) == 2 && len(sb.Partitions) == 2
	}
	require.Eventually(t, settled, 30*time.Second, 10*time.Millisecond)
	rebalancesB := b.Stats().Rebalances
	revokes := revokedB.Load()
	first, _ := assignedA.Load(int32(0))
	require.Len(t, first, 2)

	require.NoError(t, ra.stop(t))
	runA.Store(1)
	a2 := newMember("a", onA)
	ra2 := start(a2)
	require.Eventually(t, func() bool { return len(a2.Stats().Partitions) == 2 }, 30*time.Second, 10*time.Millisecond)
	again, _ := assignedA.Load(int32(1))
	assert.Equal(t, first, again, "the restarted member got its partitions back")
	assert.Equal(t, revokes, revokedB.Load(), "the other member saw no revocation")
	assert.Equal(t, rebalancesB, b.Stats().Rebalances, "the other member saw no rebalance")
	require.NoError(t, ra2.stop(t))
	require.NoError(t, rb.stop(t))
}

// Partitions added to a topic are consumed: the leader sees the partition
// count change (it checks every 5 s) and rebalances.
func TestPartitionsAddedAreConsumed(t *testing.T) {
	topic := cluster.NewTopic(t, 2)
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, "g-"+topic, fastConsumer(t)...)
	require.NoError(t, err)
	require.NoError(t, c.RegisterHandler(newRecorder()))
	r := start(c)
	require.Eventually(t, func() bool { return len(c.Stats().Partitions) == 2 }, 30*time.Second, 10*time.Millisecond)
	res, err := cluster.Client().CreatePartitions(ctxT(t), &kafka.CreatePartitionsRequest{
		Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 4}}})
	require.NoError(t, err)
	for _, e := range res.Errors {
		require.NoError(t, e)
	}
	require.Eventually(t, func() bool { return len(c.Stats().Partitions) == 4 }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))
}

// A graceful stop whose handler drains for twice the session timeout still
// commits what it processed: heartbeats go on until the member leaves.
func TestShutdownDrainLongerThanSessionCommits(t *testing.T) {
	const session = time.Second
	topic := cluster.NewTopic(t, 1)
	p := newProducer(t, topic)
	produceChat(t, p, 0, 5)
	group := "g-" + topic
	started := make(chan struct{})
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t,
		mq.WithSessionTimeout(session), mq.WithShutdownTimeout(10*time.Second))...)
	require.NoError(t, err)
	require.NoError(t, c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[ChatMessage]) error {
		if m.Value.ID == 4 {
			close(started)
			deadline := time.Now().Add(2 * session)
			for time.Now().Before(deadline) { // simulated work: the drain under test
				time.Sleep(10 * time.Millisecond)
			}
		}
		return nil
	}))
	r := start(c)
	<-started
	require.NoError(t, r.stop(t))
	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.Equal(t, map[int]int64{0: 5}, committed)
}

// mq members and kafka-go group members (mq before its own membership) share
// a group during a rolling upgrade, whichever leads: both hold partitions.
func TestRollingUpgradeFromKafkaGoMembership(t *testing.T) {
	for _, kafkaGoLeads := range []bool{false, true} {
		t.Run(map[bool]string{false: "mq-leads", true: "kafka-go-leads"}[kafkaGoLeads], func(t *testing.T) {
			topic := cluster.NewTopic(t, 4)
			group := "g-" + topic
			c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t)...)
			require.NoError(t, err)
			require.NoError(t, c.RegisterHandler(newRecorder()))
			var assigned atomic.Int32
			startKafkaGo := func() func() {
				ctx, cancel := context.WithCancel(context.Background())
				cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{ID: group, Brokers: cluster.Addrs(),
					Topics: []string{topic}, HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: 2 * time.Second,
					RebalanceTimeout: 5 * time.Second, JoinGroupBackoff: 100 * time.Millisecond})
				require.NoError(t, err)
				done := make(chan struct{})
				go func() {
					defer close(done)
					for {
						gen, err := cg.Next(ctx)
						if err != nil {
							if ctx.Err() != nil {
								return
							}
							continue
						}
						assigned.Store(int32(len(gen.Assignments[topic])))
						gen.Start(func(gctx context.Context) { <-gctx.Done() })
					}
				}()
				return func() {
					cancel()
					_ = cg.Close()
					<-done
				}
			}
			var stopKG func()
			var r *running
			if kafkaGoLeads {
				stopKG = startKafkaGo()
				require.Eventually(t, func() bool { return assigned.Load() == 4 }, 30*time.Second, 10*time.Millisecond)
				r = start(c)
			} else {
				r = start(c)
				require.Eventually(t, func() bool { return len(c.Stats().Partitions) == 4 }, 30*time.Second, 10*time.Millisecond)
				stopKG = startKafkaGo()
			}
			require.Eventually(t, func() bool {
				return assigned.Load() == 2 && len(c.Stats().Partitions) == 2
			}, 30*time.Second, 10*time.Millisecond, "kafka-go %d partitions, mq %d", assigned.Load(), len(c.Stats().Partitions))
			stopKG()
			require.NoError(t, r.stop(t))
		})
	}
}
