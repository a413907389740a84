package integration

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqtest"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Offset resets (mq.ResetOffsets) and reads (mq.GroupOffsets). Committed
// offsets are checked with kafka-go's client (OffsetFetch), not with mq.

// fetchCommitted reads group's committed offsets of topic's partitions with
// kafka-go's admin client; -1 where none.
func fetchCommitted(t *testing.T, group, topic string, partitions int) map[int]int64 {
	t.Helper()
	ids := make([]int, partitions)
	out := make(map[int]int64, partitions)
	for i := range ids {
		ids[i] = i
		out[i] = -1
	}
	resp, err := cluster.Client().OffsetFetch(ctxT(t), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	require.NoError(t, err)
	if errors.Is(resp.Error, kafka.GroupIdNotFound) {
		return out // kfake, for a group that never committed
	}
	require.NoError(t, resp.Error)
	for _, p := range resp.Topics[topic] {
		require.NoError(t, p.Error)
		if p.CommittedOffset >= 0 {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out
}

// firstSeen consumes topic in group until it has seen want messages and
// returns the offsets seen per partition.
func consumeOffsets(t *testing.T, topic, group string, want int) map[int][]int64 {
	t.Helper()
	c, err := mq.NewKafkaConsumer[[]byte](cluster.Addrs(), topic, group,
		append(fastConsumer(t), mq.WithCodec[[]byte](mq.BytesCodec{}))...)
	require.NoError(t, err)
	var mu sync.Mutex
	seen := map[int][]int64{}
	n := 0
	require.NoError(t, c.RegisterHandlerFunc(func(_ context.Context, m mq.Message[[]byte]) error {
		mu.Lock()
		defer mu.Unlock()
		seen[m.Partition] = append(seen[m.Partition], m.Offset)
		n++
		return nil
	}))
	r := start(c)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return n >= want }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, want, n, "no more than %d messages", want)
	return seen
}

func offsetsFrom(from, to int64) []int64 {
	var out []int64
	for o := from; o < to; o++ {
		out = append(out, o)
	}
	return out
}

// A reset to a time moves each partition to its first record at or after
// that time (to the end where there is none): the committed offsets say so,
// and the next consumer of the group starts exactly there. The dry run
// before it commits nothing.
func TestResetOffsetsToTime(t *testing.T) {
	brokers := cluster.Addrs()
	ctx := ctxT(t)
	topic := adminTopic(t, brokers)
	require.NoError(t, mq.CreateTopics(ctx, brokers, []mq.TopicSpec{{Name: topic, Partitions: 3, ReplicationFactor: 1}}))
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var msgs []kafka.Message
	for i := 0; i < 10; i++ { // partition 0: one record a second
		msgs = append(msgs, kafka.Message{Partition: 0, Value: []byte("p0"), Time: base.Add(time.Duration(i) * time.Second)})
	}
	for i := 0; i < 5; i++ { // partition 1: every three seconds
		msgs = append(msgs, kafka.Message{Partition: 1, Value: []byte("p1"), Time: base.Add(time.Duration(3*i) * time.Second)})
	}
	for i := 0; i < 3; i++ { // partition 2: all before the reset time
		msgs = append(msgs, kafka.Message{Partition: 2, Value: []byte("p2"), Time: base.Add(time.Duration(i) * time.Second)})
	}
	require.NoError(t, cluster.Produce(ctx, topic, msgs...))
	group := mqtest.UniqueName("g")
	consumeOffsets(t, topic, group, len(msgs))
	require.Equal(t, map[int]int64{0: 10, 1: 5, 2: 3}, fetchCommitted(t, group, topic, 3))

	at := base.Add(5 * time.Second)
	want := []mq.PartitionReset{
		{Partition: 0, Committed: 10, New: 5}, // record 5 is at base+5s
		{Partition: 1, Committed: 5, New: 2},  // record 2 is at base+6s, record 1 at base+3s
		{Partition: 2, Committed: 3, New: 3},  // nothing at or after: the end
	}
	plan, err := mq.ResetOffsets(ctx, brokers, group, topic, mq.ResetToTime(at), mq.WithResetDryRun(true))
	require.NoError(t, err)
	assert.Equal(t, want, plan)
	assert.Equal(t, map[int]int64{0: 10, 1: 5, 2: 3}, fetchCommitted(t, group, topic, 3), "a dry run commits nothing")

	plan, err = mq.ResetOffsets(ctx, brokers, group, topic, mq.ResetToTime(at))
	require.NoError(t, err)
	assert.Equal(t, want, plan)
	assert.Equal(t, map[int]int64{0: 5, 1: 2, 2: 3}, fetchCommitted(t, group, topic, 3))

	lag, err := mq.GroupOffsets(ctx, brokers, group, topic)
	require.NoError(t, err)
	assert.Equal(t, []mq.GroupOffset{
		{Partition: 0, Committed: 5, Start: 0, End: 10, Lag: 5},
		{Partition: 1, Committed: 2, Start: 0, End: 5, Lag: 3},
		{Partition: 2, Committed: 3, Start: 0, End: 3, Lag: 0},
	}, lag)

	seen := consumeOffsets(t, topic, group, 5+3)
	assert.Equal(t, map[int][]int64{0: offsetsFrom(5, 10), 1: offsetsFrom(2, 5)}, seen,
		"the next run starts at the first record at or after the time")
}

// A reset refuses while the group has an active member, commits nothing, and
// still shows the plan; once the consumer stopped it goes through.
func TestResetOffsetsRefusesActiveGroup(t *testing.T) {
	brokers := cluster.Addrs()
	topic := cluster.NewTopic(t, 2)
	produceChat(t, newProducer(t, topic), 0, 20)
	group := mqtest.UniqueName("g")
	c, err := mq.NewKafkaConsumer[ChatMessage](brokers, topic, group, fastConsumer(t)...)
	require.NoError(t, err)
	rec := newRecorder()
	require.NoError(t, c.RegisterHandler(rec))
	r := start(c)
	require.Eventually(t, func() bool {
		got := fetchCommitted(t, group, topic, 2)
		return rec.unique() == 20 && got[0]+got[1] == 20
	}, 20*time.Second, 10*time.Millisecond)
	before := fetchCommitted(t, group, topic, 2)

	plan, err := mq.ResetOffsets(ctxT(t), brokers, group, topic, mq.ResetToEarliest())
	var active *mq.ActiveGroupError
	require.ErrorAs(t, err, &active)
	assert.Equal(t, group, active.Group)
	assert.Equal(t, "Stable", active.State)
	assert.Equal(t, 1, active.Members)
	assert.Contains(t, err.Error(), "is active")
	require.Len(t, plan, 2, "the plan is shown anyway")
	assert.Zero(t, plan[0].New)
	assert.Equal(t, before, fetchCommitted(t, group, topic, 2), "nothing committed")

	require.NoError(t, r.stop(t))
	_, err = mq.ResetOffsets(ctxT(t), brokers, group, topic, mq.ResetToEarliest())
	require.NoError(t, err)
	assert.Equal(t, map[int]int64{0: 0, 1: 0}, fetchCommitted(t, group, topic, 2))
}

// joinStale makes a member join group and take every partition of topic,
// then go silent without leaving, as a crashed consumer does: it stays in
// the group until its session timeout.
func joinStale(t *testing.T, group, topic string, partitions int) {
	t.Helper()
	cl := cluster.Client()
	ctx := ctxT(t)
	req := &kafka.JoinGroupRequest{GroupID: group, SessionTimeout: 60 * time.Second, RebalanceTimeout: 10 * time.Second,
		ProtocolType: "consumer", Protocols: []kafka.GroupProtocol{{Name: "range",
			Metadata: kafka.GroupProtocolSubscription{Topics: []string{topic}}}}}
	jr, err := cl.JoinGroup(ctx, req)
	require.NoError(t, err)
	if errors.Is(jr.Error, kafka.MemberIDRequired) {
		req.MemberID = jr.MemberID
		jr, err = cl.JoinGroup(ctx, req)
		require.NoError(t, err)
	}
	require.NoError(t, jr.Error)
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	sr, err := cl.SyncGroup(ctx, &kafka.SyncGroupRequest{GroupID: group, GenerationID: jr.GenerationID, MemberID: jr.MemberID,
		ProtocolType: "consumer", ProtocolName: "range",
		Assignments: []kafka.SyncGroupRequestAssignment{{MemberID: jr.MemberID,
			Assignment: kafka.GroupProtocolAssignment{AssignedPartitions: map[string][]int{topic: ids}}}}})
	require.NoError(t, err)
	require.NoError(t, sr.Error)
}

// A member that is gone but not yet expired blocks a reset; forcing removes
// it (a dry run, even forced, does not), commits, and the next consumer
// starts at the reset offsets.
func TestResetOffsetsForceRemovesStaleMember(t *testing.T) {
	brokers := cluster.Addrs()
	ctx := ctxT(t)
	topic := cluster.NewTopic(t, 1)
	produceChat(t, newProducer(t, topic), 0, 10)
	group := mqtest.UniqueName("g")
	_, err := mq.ResetOffsets(ctx, brokers, group, topic, mq.ResetToLatest())
	require.NoError(t, err, "a group that does not exist yet can be reset")
	require.Equal(t, map[int]int64{0: 10}, fetchCommitted(t, group, topic, 1))

	joinStale(t, group, topic, 1)
	_, err = mq.ResetOffsets(ctx, brokers, group, topic, mq.ResetToEarliest())
	var active *mq.ActiveGroupError
	require.ErrorAs(t, err, &active)
	assert.Equal(t, 1, active.Members)

	plan, err := mq.ResetOffsets(ctx, brokers, group, topic, mq.ResetToEarliest(), mq.WithResetForce(true), mq.WithResetDryRun(true))
	require.NoError(t, err)
	assert.Equal(t, []mq.PartitionReset{{Partition: 0, Committed: 10, New: 0}}, plan)
	_, err = mq.ResetOffsets(ctx, brokers, group, topic, mq.ResetToEarliest())
	require.ErrorAs(t, err, &active, "a forced dry run removed no member")
	require.Equal(t, map[int]int64{0: 10}, fetchCommitted(t, group, topic, 1))

	plan, err = mq.ResetOffsets(ctx, brokers, group, topic, mq.ResetToEarliest(), mq.WithResetForce(true))
	require.NoError(t, err)
	assert.Equal(t, []mq.PartitionReset{{Partition: 0, Committed: 10, New: 0}}, plan)
	assert.Equal(t, map[int]int64{0: 0}, fetchCommitted(t, group, topic, 1))
	assert.Equal(t, map[int][]int64{0: offsetsFrom(0, 10)}, consumeOffsets(t, topic, group, 10))
}

// Explicit offsets (clamped to what the partition holds), a subset of
// partitions, earliest and latest, and the input checks.
func TestResetOffsetsExplicitAndPartitions(t *testing.T) {
	brokers := cluster.Addrs()
	ctx := ctxT(t)
	topic := cluster.NewTopic(t, 2)
	var msgs []kafka.Message
	for i := 0; i < 20; i++ {
		msgs = append(msgs, kafka.Message{Partition: i % 2, Value: []byte("x")})
	}
	require.NoError(t, cluster.Produce(ctx, topic, msgs...))
	group := mqtest.UniqueName("g")

	plan, err := mq.ResetOffsets(ctx, brokers, group, topic, mq.ResetToOffsets(map[int]int64{0: 3, 1: 99}))
	require.NoError(t, err)
	assert.Equal(t, []mq.PartitionReset{{Partition: 0, Committed: -1, New: 3}, {Partition: 1, Committed: -1, New: 10}}, plan,
		"99 is clamped to the end")
	assert.Equal(t, map[int]int64{0: 3, 1: 10}, fetchCommitted(t, group, topic, 2))

	plan, err = mq.ResetOffsets(ctx, brokers, group, topic, mq.ResetToEarliest(), mq.WithResetPartitions(1))
	require.NoError(t, err)
	assert.Equal(t, []mq.PartitionReset{{Partition: 1, Committed: 10, New: 0}}, plan)
	assert.Equal(t, map[int]int64{0: 3, 1: 0}, fetchCommitted(t, group, topic, 2), "partition 0 untouched")

	_, err = mq.ResetOffsets(ctx, brokers, group, topic, mq.ResetToLatest())
	require.NoError(t, err)
	assert.Equal(t, map[int]int64{0: 10, 1: 10}, fetchCommitted(t, group, topic, 2))

	for name, to := range map[string]mq.OffsetReset{
		"zero value":        {},
		"no partition":      mq.ResetToOffsets(nil),
		"missing partition": mq.ResetToOffsets(map[int]int64{7: 0}),
		"before 1970":       mq.ResetToTime(time.Unix(-10, 0)),
	} {
		_, err := mq.ResetOffsets(ctx, brokers, group, topic, to)
		assert.ErrorIs(t, err, mq.ErrInvalidOption, name)
	}
	_, err = mq.ResetOffsets(ctx, brokers, group, topic, mq.ResetToOffsets(map[int]int64{0: 1}), mq.WithResetPartitions(0))
	assert.ErrorIs(t, err, mq.ErrInvalidOption, "explicit offsets name their partitions")
	_, err = mq.ResetOffsets(ctx, brokers, group, topic, mq.ResetToEarliest(), mq.WithResetPartitions(5))
	assert.ErrorIs(t, err, mq.ErrInvalidOption)
	_, err = mq.ResetOffsets(ctx, brokers, group, mqtest.UniqueName("missing"), mq.ResetToEarliest())
	assert.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
	_, err = mq.GroupOffsets(ctx, brokers, group, mqtest.UniqueName("missing"))
	assert.ErrorIs(t, err, kafka.UnknownTopicOrPartition)

	offs, err := mq.GroupOffsets(ctx, brokers, mqtest.UniqueName("never-committed"), topic)
	require.NoError(t, err)
	assert.Equal(t, []mq.GroupOffset{{Partition: 0, Committed: -1, End: 10, Lag: 10}, {Partition: 1, Committed: -1, End: 10, Lag: 10}}, offs)
}

// The mq-offsets command: shows offsets and lag, prints a dry-run plan
// without committing, resets, and exits with 3 (nothing committed) while the
// group is active.
func TestMQOffsetsCommand(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mq-offsets")
	build := exec.Command("go", "build", "-o", bin, "./cmd/mq-offsets")
	build.Dir = ".."
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	topic := cluster.NewTopic(t, 2)
	var msgs []kafka.Message
	for i := 0; i < 10; i++ {
		msgs = append(msgs, kafka.Message{Partition: i % 2, Value: []byte("x")})
	}
	require.NoError(t, cluster.Produce(ctxT(t), topic, msgs...))
	group := mqtest.UniqueName("g")
	brokers := strings.Join(cluster.Addrs(), ",")
	mqOffsets := func(args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"-brokers", brokers, "-group", group, "-topic", topic}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else {
			require.NoError(t, err)
		}
		t.Logf("mq-offsets %v -> %d\n%s%s", args, code, stdout.String(), stderr.String())
		return stdout.String(), code
	}

	show, code := mqOffsets()
	require.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^\s+0\s+-\s+0\s+5\s+5\s*$`, show, "partition 0: nothing committed, 5 records")
	assert.Contains(t, show, "total lag 10")

	plan, code := mqOffsets("-to-offset", "0=2,1=4", "-dry-run")
	require.Equal(t, 0, code)
	assert.Contains(t, plan, "reset to offsets 0=2,1=4 (dry run: nothing committed)")
	assert.Regexp(t, `(?m)^\s+0\s+-\s+2\s+-\s*$`, plan)
	assert.Equal(t, map[int]int64{0: -1, 1: -1}, fetchCommitted(t, group, topic, 2), "the dry run committed nothing")

	plan, code = mqOffsets("-to-offset", "0=2,1=4")
	require.Equal(t, 0, code)
	assert.Contains(t, plan, "(committed)")
	assert.Equal(t, map[int]int64{0: 2, 1: 4}, fetchCommitted(t, group, topic, 2))

	plan, code = mqOffsets("-to-latest", "-partitions", "1")
	require.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^\s+1\s+4\s+5\s+\+1\s*$`, plan)
	assert.Equal(t, map[int]int64{0: 2, 1: 5}, fetchCommitted(t, group, topic, 2))

	joinStale(t, group, topic, 2)
	plan, code = mqOffsets("-to-earliest")
	assert.Equal(t, 3, code, "refused: the group is active")
	assert.Contains(t, plan, "NOT committed")
	assert.Equal(t, map[int]int64{0: 2, 1: 5}, fetchCommitted(t, group, topic, 2))
	_, code = mqOffsets("-to-earliest", "-force")
	require.Equal(t, 0, code)
	assert.Equal(t, map[int]int64{0: 0, 1: 0}, fetchCommitted(t, group, topic, 2))

	_, code = mqOffsets("-to-offset", "9=1")
	assert.Equal(t, 2, code, "a partition the topic lacks is a usage error")
}

// Group requests that meet a coordinator that is not ready (a new cluster's
// offsets topic being created, a coordinator loading) are retried: injected
// NOT_COORDINATOR and COORDINATOR_LOAD_IN_PROGRESS answers on a dedicated
// kfake cluster.
func TestResetOffsetsRetriesCoordinatorNotReady(t *testing.T) {
	kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "seeded"))
	require.NoError(t, err)
	t.Cleanup(kf.Close)
	brokers := kf.ListenAddrs()
	injected := map[kmsg.Key]int{}
	var mu sync.Mutex
	injectOnce := func(key kmsg.Key, respond func(kmsg.Request) kmsg.Response) {
		kf.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
			mu.Lock()
			injected[key]++
			mu.Unlock()
			return respond(req), nil, true
		})
	}
	injectOnce(kmsg.DescribeGroups, func(req kmsg.Request) kmsg.Response {
		resp := req.(*kmsg.DescribeGroupsRequest).ResponseKind().(*kmsg.DescribeGroupsResponse)
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group, g.ErrorCode = "g", kerr.NotCoordinator.Code
		resp.Groups = append(resp.Groups, g)
		return resp
	})
	injectOnce(kmsg.OffsetFetch, func(req kmsg.Request) kmsg.Response {
		resp := req.(*kmsg.OffsetFetchRequest).ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		return resp
	})
	injectOnce(kmsg.OffsetCommit, func(req kmsg.Request) kmsg.Response {
		oc := req.(*kmsg.OffsetCommitRequest)
		resp := oc.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range oc.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.NotCoordinator.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	})

	plan, err := mq.ResetOffsets(ctxT(t), brokers, "g", "seeded", mq.ResetToLatest())
	require.NoError(t, err)
	assert.Len(t, plan, 2)
	mu.Lock()
	assert.Equal(t, map[kmsg.Key]int{kmsg.DescribeGroups: 1, kmsg.OffsetFetch: 1, kmsg.OffsetCommit: 1}, injected,
		"each not-ready answer was met once and retried")
	mu.Unlock()
}
