package integration

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two handlers each see every message exactly once, and the committed offsets
// end up equal to the end offsets.
func TestConsumeTwoHandlersCommitEndOffsets(t *testing.T) {
	const n = 600
	topic := cluster.NewTopic(t, 3)
	produceChat(t, newProducer(t, topic), 0, n)

	group := "g-" + topic
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t)...)
	require.NoError(t, err)
	persist, backup := newRecorder(), newRecorder()
	require.NoError(t, c.RegisterHandler(persist, mq.WithHandlerName("persist")))
	require.NoError(t, c.RegisterHandler(backup, mq.WithHandlerName("backup")))
	r := start(c)

	require.Eventually(t, func() bool { return persist.count() >= n && backup.count() >= n }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))

	assert.Equal(t, n, persist.unique())
	assert.Equal(t, n, backup.unique())
	assert.Zero(t, persist.duplicates())
	assert.Zero(t, backup.duplicates())
	for p, offs := range persist.order {
		for i := 1; i < len(offs); i++ {
			require.Less(t, offs[i-1], offs[i], "partition %d processed out of order", p)
		}
	}
	end, err := cluster.EndOffsets(ctxT(t), topic)
	require.NoError(t, err)
	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.Equal(t, end, committed)
	assert.EqualValues(t, n, sum(end))
}

// A handler that keeps failing at message k stops the consumer with a
// HandlerError naming k; the commit stays at k and a restart redelivers k.
func TestFailingHandlerKeepsCommitAtFailedMessage(t *testing.T) {
	const n, k = 20, 7
	topic := cluster.NewTopic(t, 1)
	produceChat(t, newProducer(t, topic), 0, n)
	group := "g-" + topic

	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t)...)
	require.NoError(t, err)
	var calls atomic.Int32
	ok := newRecorder()
	require.NoError(t, c.RegisterHandler(ok, mq.WithHandlerName("ok")))
	require.NoError(t, c.RegisterHandler(mq.HandlerFunc[ChatMessage](func(_ context.Context, m mq.Message[ChatMessage]) error {
		if m.Value.ID == k {
			calls.Add(1)
			return errors.New("database down")
		}
		return nil
	}), mq.WithHandlerName("flaky")))

	err = start(c).wait(t)
	var herr *mq.HandlerError
	require.ErrorAs(t, err, &herr)
	assert.Equal(t, topic, herr.Topic)
	assert.Equal(t, 0, herr.Partition)
	assert.EqualValues(t, k, herr.Offset)
	assert.Equal(t, "flaky", herr.Handler)
	assert.Equal(t, 3, herr.Attempts)
	assert.EqualValues(t, 3, calls.Load(), "retried up to MaxAttempts")
	assert.Equal(t, 1, ok.seen[k], "the handler that succeeded is not called again on retries")
	assert.NotContains(t, ok.seen, k+1, "nothing past the failed message is processed")

	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.EqualValues(t, k, committed[0])

	// Restart with a healthy handler: k is delivered again, then the rest.
	c2, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t)...)
	require.NoError(t, err)
	rec := newRecorder()
	require.NoError(t, c2.RegisterHandler(rec))
	r := start(c2)
	require.Eventually(t, func() bool { return rec.count() >= n-k }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))
	assert.Equal(t, int64(k), rec.order[0][0], "first redelivered offset")
	assert.Equal(t, n-k, rec.unique())
	committed, err = cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.EqualValues(t, n, committed[0])
}

// Cancelling mid-stream then restarting loses nothing and redelivers nothing
// that was already committed.
func TestCancelMidStreamThenRestart(t *testing.T) {
	const n = 3000
	topic := cluster.NewTopic(t, 3)
	produceChat(t, newProducer(t, topic), 0, n)
	group := "g-" + topic

	first := newRecorder()
	c1, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t)...)
	require.NoError(t, err)
	require.NoError(t, c1.RegisterHandler(mq.HandlerFunc[ChatMessage](func(ctx context.Context, m mq.Message[ChatMessage]) error {
		time.Sleep(100 * time.Microsecond) // keep the stream flowing while we cancel
		return first.Handle(ctx, m)
	})))
	r1 := start(c1)
	require.Eventually(t, func() bool { return first.count() >= n/3 }, 30*time.Second, time.Millisecond)
	require.NoError(t, r1.stop(t))
	handled := first.count()
	require.Less(t, handled, n, "the test must stop mid-stream")

	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.EqualValues(t, handled, sum(committed), "every processed message is committed at shutdown")

	second := newRecorder()
	c2, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t)...)
	require.NoError(t, err)
	require.NoError(t, c2.RegisterHandler(second))
	r2 := start(c2)
	require.Eventually(t, func() bool { return second.count() >= n-handled }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, r2.stop(t))

	assert.Equal(t, n-handled, second.count(), "exactly the unprocessed messages are delivered again")
	for id := range second.seen {
		assert.NotContains(t, first.seen, id, "message %d delivered again after a commit", id)
	}
	assert.Equal(t, n, first.unique()+second.unique(), "nothing lost")
}

// A second member joining mid-stream loses nothing.
func TestSecondMemberJoinsMidStream(t *testing.T) {
	const n = 4000
	topic := cluster.NewTopic(t, 4)
	p := newProducer(t, topic)
	group := "g-" + topic
	all := newRecorder()

	newMember := func() *running {
		c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t)...)
		require.NoError(t, err)
		require.NoError(t, c.RegisterHandler(mq.HandlerFunc[ChatMessage](func(ctx context.Context, m mq.Message[ChatMessage]) error {
			time.Sleep(200 * time.Microsecond)
			return all.Handle(ctx, m)
		})))
		return start(c)
	}
	produceChat(t, p, 0, n/2)
	a := newMember()
	require.Eventually(t, func() bool { return all.count() >= n/8 }, 30*time.Second, time.Millisecond)
	b := newMember()
	produceChat(t, p, n/2, n)
	require.Eventually(t, func() bool { return all.unique() >= n }, 60*time.Second, 10*time.Millisecond)
	require.NoError(t, a.stop(t))
	require.NoError(t, b.stop(t))

	assert.Equal(t, n, all.unique(), "nothing lost")
	t.Logf("duplicates across the rebalance: %d", all.duplicates())
	end, err := cluster.EndOffsets(ctxT(t), topic)
	require.NoError(t, err)
	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.Equal(t, end, committed)
}

// A value that cannot be decoded stops the consumer with a DecodeError naming
// it, and nothing past it is committed.
func TestPoisonMessageStopsWithDecodeError(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	p := newProducer(t, topic)
	produceChat(t, p, 0, 5)
	require.NoError(t, cluster.Produce(ctxT(t), topic, kafka.Message{Key: []byte("k"), Value: []byte("{not json")}))
	produceChat(t, p, 5, 10)
	group := "g-" + topic

	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t)...)
	require.NoError(t, err)
	rec := newRecorder()
	require.NoError(t, c.RegisterHandler(rec))
	err = start(c).wait(t)
	var derr *mq.DecodeError
	require.ErrorAs(t, err, &derr)
	assert.Equal(t, topic, derr.Topic)
	assert.Equal(t, 0, derr.Partition)
	assert.EqualValues(t, 5, derr.Offset)
	assert.Equal(t, 5, rec.count(), "messages before the poison one are handled, none after")

	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.EqualValues(t, 5, committed[0])
}

// A panicking handler is recovered, retried, and its message is not lost.
func TestPanickingHandlerIsRetried(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	produceChat(t, newProducer(t, topic), 0, 3)
	group := "g-" + topic
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t)...)
	require.NoError(t, err)
	var panics atomic.Int32
	rec := newRecorder()
	require.NoError(t, c.RegisterHandler(mq.HandlerFunc[ChatMessage](func(ctx context.Context, m mq.Message[ChatMessage]) error {
		if m.Value.ID == 1 && panics.Add(1) <= 2 {
			panic("boom")
		}
		return rec.Handle(ctx, m)
	})))
	r := start(c)
	require.Eventually(t, func() bool { return rec.count() >= 3 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))
	assert.EqualValues(t, 3, panics.Load())
	assert.Equal(t, 3, rec.unique())
	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.EqualValues(t, 3, committed[0])
}

// Run validates its state; Close is idempotent and stops Run.
func TestConsumerLifecycle(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, "g-"+topic, fastConsumer(t)...)
	require.NoError(t, err)
	require.ErrorIs(t, c.Run(context.Background()), mq.ErrNoHandlers)
	require.ErrorIs(t, c.RegisterHandler(nil), mq.ErrNilHandler)
	require.NoError(t, c.RegisterHandler(newRecorder()))

	assigned := make(chan map[string][]int, 4)
	c2, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, "g2-"+topic, fastConsumer(t,
		mq.WithOnAssigned(func(m map[string][]int) { assigned <- m }))...)
	require.NoError(t, err)
	require.NoError(t, c2.RegisterHandler(newRecorder()))
	done := make(chan error, 1)
	go func() { done <- c2.Run(context.Background()) }()
	select {
	case m := <-assigned:
		assert.Equal(t, []int{0}, m[topic])
	case <-time.After(20 * time.Second):
		t.Fatal("no assignment")
	}
	require.ErrorIs(t, c2.RegisterHandler(newRecorder()), mq.ErrRunning)
	require.NoError(t, c2.Close())
	require.NoError(t, <-done)
	require.NoError(t, c2.Close(), "idempotent")
	require.ErrorIs(t, c2.Run(context.Background()), mq.ErrClosed)
}

// A handler still running when the shutdown timeout passes gets its context
// cancelled; its message stays uncommitted and Run says so.
func TestShutdownTimeoutCancelsHandler(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	produceChat(t, newProducer(t, topic), 0, 3)
	group := "g-" + topic
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group,
		fastConsumer(t, mq.WithShutdownTimeout(200*time.Millisecond))...)
	require.NoError(t, err)
	entered := make(chan struct{}, 1)
	require.NoError(t, c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[ChatMessage]) error {
		if m.Value.ID == 1 {
			entered <- struct{}{}
			<-ctx.Done() // a slow call that honours its context
			return ctx.Err()
		}
		return nil
	}))
	r := start(c)
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("handler not reached")
	}
	require.ErrorIs(t, r.stop(t), mq.ErrShutdownTimeout)
	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.EqualValues(t, 1, committed[0], "message 1 stays uncommitted")
}

// With lanes, messages of one partition with different keys are handled
// concurrently while each key keeps its order, and commits stay contiguous.
func TestLanesKeepPerKeyOrder(t *testing.T) {
	const n, keys = 400, 16
	topic := cluster.NewTopic(t, 1)
	p := newProducer(t, topic)
	var msgs []mq.Message[ChatMessage]
	for i := 0; i < n; i++ {
		k := "key-" + string(rune('a'+i%keys))
		msgs = append(msgs, mq.Message[ChatMessage]{Key: []byte(k), Value: ChatMessage{ID: i, ConversationID: k}})
	}
	_, err := p.SendMessages(ctxT(t), msgs...)
	require.NoError(t, err)
	group := "g-" + topic

	var mu sync.Mutex
	lastByKey := map[string]int{}
	outOfOrder := 0
	var inFlight, maxInFlight atomic.Int32
	seen := newRecorder()
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t, mq.WithLanes(8))...)
	require.NoError(t, err)
	require.NoError(t, c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[ChatMessage]) error {
		cur := inFlight.Add(1)
		for {
			old := maxInFlight.Load()
			if cur <= old || maxInFlight.CompareAndSwap(old, cur) {
				break
			}
		}
		time.Sleep(time.Millisecond) // I/O-like
		inFlight.Add(-1)
		mu.Lock()
		if last, ok := lastByKey[m.Value.ConversationID]; ok && last > m.Value.ID {
			outOfOrder++
		}
		lastByKey[m.Value.ConversationID] = m.Value.ID
		mu.Unlock()
		return seen.Handle(ctx, m)
	}))
	r := start(c)
	require.Eventually(t, func() bool { return seen.count() >= n }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))
	assert.Zero(t, outOfOrder, "per-key order")
	assert.Equal(t, n, seen.unique())
	assert.Greater(t, maxInFlight.Load(), int32(1), "lanes run concurrently")
	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.EqualValues(t, n, committed[0])
}
