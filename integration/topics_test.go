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

// One consumer reads two topics (WithTopics): every message of both is
// handled, each topic's failures go to its own retry and dead-letter topics,
// and each topic's partitions are committed to their end.
func TestSeveralTopics(t *testing.T) {
	a := cluster.NewTopic(t, 2)
	b := cluster.NewTopic(t, 3)
	r := mq.RetryTopicRecoverer([]time.Duration{50 * time.Millisecond}, "")
	createRecoveryTopics(t, a, r, 1)
	createRecoveryTopics(t, b, r, 1)
	group := "g-" + a

	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), a, group,
		fastConsumer(t, mq.WithTopics(b), mq.WithRecoverer(r), mq.WithRetryPolicy(mq.RetryPolicy{MaxAttempts: 1, Multiplier: 1}))...)
	require.NoError(t, err)
	assert.Equal(t, a, c.Topic())
	assert.Equal(t, []string{a, b}, c.Topics())

	type key struct {
		topic string
		id    int
	}
	var mu sync.Mutex
	calls := map[key][]string{} // topics a message was handled from
	handled := map[key]bool{}
	require.NoError(t, c.RegisterHandlerFunc(func(_ context.Context, m mq.Message[ChatMessage]) error {
		origin := m.Topic
		if v, ok := m.Header(mq.HeaderOriginalTopic); ok {
			origin = string(v)
		}
		k := key{origin, m.Value.ID}
		mu.Lock()
		defer mu.Unlock()
		calls[k] = append(calls[k], m.Topic)
		switch {
		case m.Value.ID == 3 && len(calls[k]) == 1: // fails once, succeeds in the retry tier
			return errors.New("flaky")
		case m.Value.ID == 5: // never succeeds: dead-lettered
			return errors.New("always")
		}
		handled[k] = true
		return nil
	}))
	run := start(c)
	produceChat(t, newProducer(t, a), 0, 20)
	produceChat(t, newProducer(t, b), 0, 30)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 19+29 && c.Stats().DeadLettered == 2
	}, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, run.stop(t))

	mu.Lock()
	assert.Equal(t, []string{a, a + ".retry.1"}, calls[key{a, 3}], "a's failure goes to a's retry topic")
	assert.Equal(t, []string{b, b + ".retry.1"}, calls[key{b, 3}], "b's failure goes to b's retry topic")
	mu.Unlock()
	for _, topic := range []string{a, b} {
		dlt, err := cluster.ReadAll(ctxT(t), topic+".dlt", 1)
		require.NoError(t, err)
		require.Len(t, dlt, 1)
		assert.Equal(t, topic, hdr(dlt[0], mq.HeaderOriginalTopic))
		for _, tp := range []string{topic, topic + ".retry.1"} {
			end, err := cluster.EndOffsets(ctxT(t), tp)
			require.NoError(t, err)
			committed, err := cluster.CommittedOffsets(ctxT(t), group, tp)
			require.NoError(t, err)
			for p, o := range committed {
				if o == -1 && end[p] == 0 {
					committed[p] = 0 // an empty partition has nothing to commit
				}
			}
			assert.Equal(t, end, committed, "%s committed to its end", tp)
		}
	}
}
