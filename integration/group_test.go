package integration

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A message moved to a retry topic by a run that then stopped is processed
// by the next run even with WithStartOffset(StartLatest): retry topics are
// read from their beginning when the group has no commit on them, since the
// main topic's offset was committed when the message moved.
func TestRetryTopicReadFromStartWithStartLatest(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	// Run 1's retry tier waits 10 s: the message sits in .retry.1, not yet
	// due, when run 1 stops.
	r1 := mq.RetryTopicRecoverer([]time.Duration{10 * time.Second}, "")
	createRecoveryTopics(t, topic, r1, 1)
	group := "g-" + topic
	retryOpt := mq.WithRetryPolicy(mq.RetryPolicy{MaxAttempts: 1, Multiplier: 1})

	// Run 1 reads the (new, empty) topic from its start: with StartLatest,
	// Ready can hold before the latest offset is looked up, and the messages
	// produced next would be skipped. Run 2 is the one under test.
	c1, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group,
		fastConsumer(t, mq.WithRecoverer(r1), retryOpt)...)
	require.NoError(t, err)
	require.NoError(t, c1.RegisterHandlerFunc(func(_ context.Context, m mq.Message[ChatMessage]) error {
		if m.Topic == topic && m.Value.ID == 3 {
			return errors.New("downstream down")
		}
		return nil
	}, mq.WithHandlerName("h")))
	run1 := start(c1)
	require.Eventually(t, func() bool { return c1.Ready() == nil }, 30*time.Second, 10*time.Millisecond)
	produceChat(t, newProducer(t, topic), 0, 5)
	require.Eventually(t, func() bool { return c1.Stats().RetryPublished == 1 }, 30*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		end, err := cluster.EndOffsets(ctxT(t), topic)
		require.NoError(t, err)
		committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
		require.NoError(t, err)
		return committed[0] == end[0]
	}, 30*time.Second, 10*time.Millisecond, "the main topic is committed past the moved message")
	require.NoError(t, run1.stop(t))
	rc, err := cluster.CommittedOffsets(ctxT(t), group, topic+".retry.1")
	require.NoError(t, err)
	require.Equal(t, map[int]int64{0: -1}, rc, "run 1 stopped before the retry was due")

	// Run 2 starts at the latest offsets of the main topic but reads the
	// retry topic from its start: the message is handled once due.
	c2, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group,
		fastConsumer(t, mq.WithStartOffset(mq.StartLatest), mq.WithRecoverer(r1), retryOpt)...)
	require.NoError(t, err)
	var mu sync.Mutex
	var got []string
	require.NoError(t, c2.RegisterHandlerFunc(func(_ context.Context, m mq.Message[ChatMessage]) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m.Topic)
		return nil
	}, mq.WithHandlerName("h")))
	run2 := start(c2)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1
	}, 30*time.Second, 10*time.Millisecond, "the message waiting in the retry topic is processed")
	require.NoError(t, run2.stop(t))
	assert.Equal(t, []string{topic + ".retry.1"}, got)
}

// A member that gets no partitions (more members than partitions) is a hot
// standby: it is in the group generation, so it reports ready.
func TestHotStandbyIsReady(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	group := "g-" + topic
	var cs []*mq.KafkaConsumer[ChatMessage]
	var runs []*running
	for range 2 {
		c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t)...)
		require.NoError(t, err)
		require.NoError(t, c.RegisterHandlerFunc(func(context.Context, mq.Message[ChatMessage]) error { return nil }))
		cs = append(cs, c)
		runs = append(runs, start(c))
	}
	owned := func(c *mq.KafkaConsumer[ChatMessage]) int { return len(c.Stats().Partitions) }
	require.Eventually(t, func() bool {
		return owned(cs[0])+owned(cs[1]) == 1 && cs[0].Ready() == nil && cs[1].Ready() == nil
	}, 30*time.Second, 10*time.Millisecond, "one member owns the partition, both are ready")
	for _, r := range runs {
		require.NoError(t, r.stop(t))
	}
}
