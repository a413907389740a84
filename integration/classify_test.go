package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Error classification (WithRetryableIf) and FuncRecoverer on a broker.

var errInvalidChat = errors.New("invalid chat")

// countingFailOn fails with err for the given message IDs, counting the
// calls per ID, and records the others in rec.
func countingFailOn(rec *recorder, calls *sync.Map, err error, ids ...int) mq.HandlerFunc[ChatMessage] {
	bad := map[int]bool{}
	for _, id := range ids {
		bad[id] = true
	}
	return func(ctx context.Context, m mq.Message[ChatMessage]) error {
		if bad[m.Value.ID] {
			n, _ := calls.LoadOrStore(m.Value.ID, new(atomic.Int32))
			n.(*atomic.Int32).Add(1)
			return err
		}
		return rec.Handle(ctx, m)
	}
}

func callsOf(calls *sync.Map, id int) int32 {
	n, ok := calls.Load(id)
	if !ok {
		return 0
	}
	return n.(*atomic.Int32).Load()
}

// A classified error skips the blocking retries and the retry topics: the
// handler is called once and the message goes straight to the dead-letter
// topic, while an unclassified error goes through the retries as before.
func TestClassifiedErrorSkipsRetries(t *testing.T) {
	const n = 10
	topic := cluster.NewTopic(t, 1)
	r := mq.RetryTopicRecoverer([]time.Duration{10 * time.Millisecond}, "")
	createRecoveryTopics(t, topic, r, 1)
	produceChat(t, newProducer(t, topic), 0, n)
	group := mqtest.UniqueName("g")
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group,
		fastConsumer(t, mq.WithRecoverer(r), mq.WithRetryableIf(mq.NotRetryable(errInvalidChat)))...)
	require.NoError(t, err)
	rec := newRecorder()
	var calls sync.Map
	require.NoError(t, c.RegisterHandler(countingFailOn(rec, &calls, fmt.Errorf("message 3: %w", errInvalidChat), 3)))
	run := start(c)
	require.Eventually(t, func() bool { return rec.unique() == n-1 && c.Stats().DeadLettered == 1 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, run.stop(t))

	assert.EqualValues(t, 1, callsOf(&calls, 3), "called once: no blocking retry, no retry tier")
	st := c.Stats()
	assert.Zero(t, st.Retries)
	assert.Zero(t, st.RetryPublished)
	dlt, err := cluster.ReadAll(ctxT(t), topic+".dlt", 1)
	require.NoError(t, err)
	assert.Equal(t, "1", hdr(dlt[0], mq.HeaderAttempts))
	assert.Equal(t, "3", hdr(dlt[0], mq.HeaderOriginalOffset))
	end, err := cluster.EndOffsets(ctxT(t), topic+".retry.1")
	require.NoError(t, err)
	assert.Zero(t, sum(end), "nothing went to the retry topic")
	assert.Equal(t, map[int]int64{0: n}, fetchCommitted(t, group, topic, 1))
}

// A FuncRecoverer is called once per failed message; returning nil commits
// past it.
func TestFuncRecovererCalledOncePerFailedMessage(t *testing.T) {
	const n = 20
	topic := cluster.NewTopic(t, 2)
	produceChat(t, newProducer(t, topic), 0, n)
	group := mqtest.UniqueName("g")
	var mu sync.Mutex
	recovered := map[string]int{} // "partition@offset" -> calls
	var handlers []string
	fr := mq.FuncRecoverer(func(_ context.Context, f mq.FailedMessage) error {
		mu.Lock()
		defer mu.Unlock()
		recovered[fmt.Sprintf("%d@%d", f.Message.Partition, f.Message.Offset)]++
		handlers = append(handlers, f.Handlers...)
		return nil
	})
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t, mq.WithRecoverer(fr))...)
	require.NoError(t, err)
	rec := newRecorder()
	var calls sync.Map
	require.NoError(t, c.RegisterHandler(countingFailOn(rec, &calls, errors.New("mailer down"), 4, 11), mq.WithHandlerName("mail")))
	run := start(c)
	require.Eventually(t, func() bool { return rec.unique() == n-2 && c.Stats().Recovered == 2 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, run.stop(t))

	mu.Lock()
	assert.Len(t, recovered, 2)
	for k, v := range recovered {
		assert.Equal(t, 1, v, "message %s recovered once", k)
	}
	assert.Equal(t, []string{"mail", "mail"}, handlers)
	mu.Unlock()
	assert.EqualValues(t, 3, callsOf(&calls, 4), "retried per the policy first (3 attempts)")
	end, err := cluster.EndOffsets(ctxT(t), topic)
	require.NoError(t, err)
	assert.Equal(t, end, fetchCommitted(t, group, topic, 2), "recovered messages are committed")
}

// While a FuncRecoverer fails, its message stays uncommitted (a stop leaves
// the commit at it); a Permanent recoverer error stops the consumer with a
// *RecovererError and the commit stays at the message too.
func TestFuncRecovererErrorKeepsMessageUncommitted(t *testing.T) {
	const n, bad = 10, 6
	topic := cluster.NewTopic(t, 1)
	produceChat(t, newProducer(t, topic), 0, n)
	group := mqtest.UniqueName("g")

	var attempts atomic.Int32
	fr := mq.FuncRecoverer(func(context.Context, mq.FailedMessage) error {
		attempts.Add(1)
		return errors.New("failure table unavailable")
	})
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t, mq.WithRecoverer(fr))...)
	require.NoError(t, err)
	rec := newRecorder()
	var calls sync.Map
	require.NoError(t, c.RegisterHandler(countingFailOn(rec, &calls, mq.Permanent(errInvalidChat), bad)))
	run := start(c)
	require.Eventually(t, func() bool {
		return attempts.Load() >= 2 && fetchCommitted(t, group, topic, 1)[0] == bad
	}, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, run.stop(t))
	assert.Equal(t, map[int]int64{0: bad}, fetchCommitted(t, group, topic, 1), "nothing committed past the message")
	assert.Equal(t, bad, rec.unique(), "the partition waited for the recoverer")

	errGone := errors.New("failure table dropped")
	c2, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t,
		mq.WithRecoverer(mq.FuncRecoverer(func(context.Context, mq.FailedMessage) error { return mq.Permanent(errGone) })))...)
	require.NoError(t, err)
	require.NoError(t, c2.RegisterHandler(countingFailOn(rec, &calls, mq.Permanent(errInvalidChat), bad)))
	err = start(c2).wait(t)
	var rerr *mq.RecovererError
	require.ErrorAs(t, err, &rerr)
	assert.ErrorIs(t, err, errGone)
	var herr *mq.HandlerError
	require.ErrorAs(t, err, &herr)
	assert.EqualValues(t, bad, herr.Offset)
	assert.Equal(t, map[int]int64{0: bad}, fetchCommitted(t, group, topic, 1))
}
