package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Batch handlers, pause and resume, and seeks, on the test broker (kfake,
// or the one of KAFKA_BROKERS).

// produceTo writes messages with IDs [from, to) to one partition, stamped
// with at (the current time when zero).
func produceTo(t testing.TB, topic string, partition, from, to int, at time.Time) {
	t.Helper()
	msgs := make([]kafka.Message, 0, to-from)
	for i := from; i < to; i++ {
		v, err := json.Marshal(ChatMessage{ID: i, ConversationID: convID(i), Body: "hello"})
		require.NoError(t, err)
		msgs = append(msgs, kafka.Message{Partition: partition, Key: []byte(convID(i)), Value: v, Time: at})
	}
	require.NoError(t, cluster.Produce(ctxT(t), topic, msgs...))
}

// batchRecorder is a batch handler that records its batches.
type batchRecorder struct {
	mu      sync.Mutex
	batches [][]mq.Message[ChatMessage]
	seen    map[int]int
	fail    func(msgs []mq.Message[ChatMessage]) error
}

func newBatchRecorder(fail func(msgs []mq.Message[ChatMessage]) error) *batchRecorder {
	return &batchRecorder{seen: map[int]int{}, fail: fail}
}

func (b *batchRecorder) HandleBatch(_ context.Context, msgs []mq.Message[ChatMessage]) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches = append(b.batches, append([]mq.Message[ChatMessage](nil), msgs...))
	var err error
	if b.fail != nil {
		err = b.fail(msgs)
	}
	n := len(msgs)
	var bf *mq.BatchFailedError
	if errors.As(err, &bf) {
		n = bf.Index
	} else if err != nil {
		n = 0
	}
	for _, m := range msgs[:n] {
		b.seen[m.Value.ID]++
	}
	return err
}

func (b *batchRecorder) unique() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.seen)
}

// A batch handler failing at message k with BatchFailedAt: the consumer
// (default recoverer: stop) commits exactly the messages before k, after
// retrying k alone; a restart delivers k and the rest.
func TestBatchFailedAtCommitsExactlyTheMessagesBefore(t *testing.T) {
	const n, k = 20, 7
	topic := cluster.NewTopic(t, 1)
	produceTo(t, topic, 0, 0, n, time.Time{})
	group := "g-" + topic

	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t)...)
	require.NoError(t, err)
	rec := newBatchRecorder(func(msgs []mq.Message[ChatMessage]) error {
		for i, m := range msgs {
			if m.Value.ID == k {
				return mq.BatchFailedAt(i, errors.New("database down"))
			}
		}
		return nil
	})
	require.NoError(t, c.RegisterBatchHandler(rec, mq.WithHandlerName("store")))
	err = start(c).wait(t)
	var herr *mq.HandlerError
	require.ErrorAs(t, err, &herr)
	assert.EqualValues(t, k, herr.Offset)
	assert.Equal(t, "store", herr.Handler)
	assert.Equal(t, 3, herr.Attempts, "the batch call and two retries of the message alone")
	rec.mu.Lock()
	require.NotEmpty(t, rec.batches)
	assert.EqualValues(t, 0, rec.batches[0][0].Offset)
	for _, b := range rec.batches {
		for i := 1; i < len(b); i++ {
			assert.Equal(t, b[i-1].Offset+1, b[i].Offset, "a batch is consecutive messages of a partition")
		}
		assert.LessOrEqual(t, b[0].Offset, int64(k), "nothing past the failed message is handed over")
	}
	last := rec.batches[len(rec.batches)-1]
	assert.Len(t, last, 1, "the failed message is retried alone")
	assert.EqualValues(t, k, last[0].Offset)
	rec.mu.Unlock()

	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.EqualValues(t, k, committed[0], "exactly the messages before the failure are committed")

	c2, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t)...)
	require.NoError(t, err)
	rec2 := newBatchRecorder(nil)
	require.NoError(t, c2.RegisterBatchHandler(rec2))
	r := start(c2)
	require.Eventually(t, func() bool { return rec2.unique() == n-k }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))
	rec2.mu.Lock()
	assert.EqualValues(t, k, rec2.batches[0][0].Offset, "the failed message comes first after a restart")
	rec2.mu.Unlock()
	committed, err = cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.EqualValues(t, n, committed[0])
}

// Batches respect the size cap, keep each partition's order, and every
// message is handled once and committed.
func TestBatchHandlerDeliversEverythingInBatches(t *testing.T) {
	const perPartition = 150
	topic := cluster.NewTopic(t, 3)
	for p := 0; p < 3; p++ {
		produceTo(t, topic, p, p*perPartition, (p+1)*perPartition, time.Time{})
	}
	group := "g-" + topic
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group,
		fastConsumer(t, mq.WithBatchMaxMessages(40), mq.WithBatchLinger(20*time.Millisecond))...)
	require.NoError(t, err)
	rec := newBatchRecorder(nil)
	require.NoError(t, c.RegisterBatchHandler(rec))
	perMessage := newRecorder()
	require.NoError(t, c.RegisterHandler(perMessage))
	r := start(c)
	require.Eventually(t, func() bool { return rec.unique() == 3*perPartition }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
		return err == nil && sum(committed) == 3*perPartition
	}, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, r.stop(t))

	rec.mu.Lock()
	defer rec.mu.Unlock()
	next := map[int]int64{}
	multi := 0
	for _, b := range rec.batches {
		assert.LessOrEqual(t, len(b), 40)
		if len(b) > 1 {
			multi++
		}
		for _, m := range b {
			assert.Equal(t, b[0].Partition, m.Partition, "a batch holds one partition")
			assert.Equal(t, next[m.Partition], m.Offset, "partition %d in order, nothing skipped", m.Partition)
			next[m.Partition] = m.Offset + 1
		}
	}
	assert.Positive(t, multi, "batches of more than one message")
	for id, n := range rec.seen {
		assert.Equal(t, 1, n, "message %d handled once", id)
	}
	assert.Equal(t, 3*perPartition, perMessage.unique(), "a per-message handler beside it sees every message")
}

// Pausing a partition under load: nothing more of it is handed over (but
// the message in flight) while the other partition is consumed to its end;
// after Resume everything arrives and nothing is lost. The pause survives
// nothing here but is kept in Paused until resumed.
func TestPauseResumeUnderLoad(t *testing.T) {
	const n = 300
	topic := cluster.NewTopic(t, 2)
	produceTo(t, topic, 0, 0, n, time.Time{})
	produceTo(t, topic, 1, n, 2*n, time.Time{})
	group := "g-" + topic
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t)...)
	require.NoError(t, err)

	var mu sync.Mutex
	seen := map[int]map[int]bool{0: {}, 1: {}}
	pausedAt := -1 // deliveries of partition 0 when Pause returned
	afterPause := 0
	gate := make(chan struct{})
	require.NoError(t, c.RegisterHandlerFunc(func(_ context.Context, m mq.Message[ChatMessage]) error {
		if m.Partition == 0 && m.Offset == 50 {
			<-gate // partition 0 is busy when it is paused
		}
		mu.Lock()
		seen[m.Partition][m.Value.ID] = true
		if m.Partition == 0 && pausedAt >= 0 {
			afterPause++
		}
		mu.Unlock()
		return nil
	}))
	r := start(c)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen[0]) == 50
	}, 20*time.Second, 5*time.Millisecond)
	c.Pause(mq.TopicPartition{Topic: topic, Partition: 0})
	mu.Lock()
	pausedAt = len(seen[0])
	mu.Unlock()
	close(gate) // the message in flight finishes
	assert.Equal(t, []mq.TopicPartition{{Topic: topic, Partition: 0}}, c.Paused())
	for _, p := range c.Health().Partitions {
		assert.Equal(t, p.Partition == 0, p.Paused, "partition %d", p.Partition)
	}

	// More load on both partitions; partition 1 is consumed to its end.
	produceTo(t, topic, 0, 2*n, 3*n, time.Time{})
	produceTo(t, topic, 1, 3*n, 4*n, time.Time{})
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen[1]) == 2*n
	}, 20*time.Second, 5*time.Millisecond)
	mu.Lock()
	assert.LessOrEqual(t, afterPause, 1, "only the message in flight finishes after the pause")
	assert.Less(t, len(seen[0]), 2*n, "partition 0 has messages waiting")
	mu.Unlock()

	c.Resume()
	assert.Empty(t, c.Paused())
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen[0]) == 2*n
	}, 20*time.Second, 5*time.Millisecond, "everything of the paused partition arrives after Resume")
	require.Eventually(t, func() bool {
		committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
		return err == nil && committed[0] == 2*n && committed[1] == 2*n
	}, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, r.stop(t))
}

// A partition paused before Run starts paused; a batch consumer pauses
// too.
func TestPauseBeforeRunWithBatches(t *testing.T) {
	topic := cluster.NewTopic(t, 2)
	produceTo(t, topic, 0, 0, 30, time.Time{})
	produceTo(t, topic, 1, 30, 60, time.Time{})
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, "g-"+topic, fastConsumer(t)...)
	require.NoError(t, err)
	rec := newBatchRecorder(nil)
	require.NoError(t, c.RegisterBatchHandler(rec))
	c.Pause(mq.TopicPartition{Topic: topic, Partition: 1})
	r := start(c)
	require.Eventually(t, func() bool { return rec.unique() == 30 }, 20*time.Second, 5*time.Millisecond)
	// Partition 0 is done; more records for it arrive and are handled,
	// proving the consumer runs, while partition 1 stays untouched.
	produceTo(t, topic, 0, 60, 70, time.Time{})
	require.Eventually(t, func() bool { return rec.unique() == 40 }, 20*time.Second, 5*time.Millisecond)
	rec.mu.Lock()
	for _, b := range rec.batches {
		assert.Equal(t, 0, b[0].Partition, "nothing of the paused partition")
	}
	rec.mu.Unlock()
	c.Resume(mq.TopicPartition{Topic: topic, Partition: 1})
	require.Eventually(t, func() bool { return rec.unique() == 70 }, 20*time.Second, 5*time.Millisecond)
	require.NoError(t, r.stop(t))
}

// Seeks from the assigned hook (by offset and by time) and while running
// (backwards): the partition continues there, and the commit follows.
func TestSeek(t *testing.T) {
	topic := cluster.NewTopic(t, 2)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	produceTo(t, topic, 0, 0, 20, t0)
	produceTo(t, topic, 1, 20, 30, t0)
	produceTo(t, topic, 1, 30, 40, t0.Add(10*time.Minute))
	group := "g-" + topic

	var c *mq.KafkaConsumer[ChatMessage]
	hookErrs := make(chan error, 3)
	hook := func(assigned map[string][]int) {
		if len(assigned[topic]) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, err := range []error{c.Seek(topic, 0, 12), c.SeekToTime(ctx, topic, 1, t0.Add(5*time.Minute)), c.Seek(topic, 7, 0)} {
			select {
			case hookErrs <- err:
			default: // a later generation's
			}
		}
	}
	var err error
	c, err = mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t, mq.WithOnAssigned(hook))...)
	require.NoError(t, err)
	assert.ErrorIs(t, c.Seek(topic, 0, 1), mq.ErrNotAssigned, "not running")
	rec := newRecorder()
	require.NoError(t, c.RegisterHandler(rec))
	r := start(c)
	require.NoError(t, <-hookErrs)
	require.NoError(t, <-hookErrs)
	require.ErrorIs(t, <-hookErrs, mq.ErrNotAssigned)
	require.Eventually(t, func() bool { return rec.unique() == 8+10 }, 20*time.Second, 5*time.Millisecond)
	rec.mu.Lock()
	assert.EqualValues(t, 12, rec.order[0][0], "partition 0 starts at the offset sought")
	assert.EqualValues(t, 10, rec.order[1][0], "partition 1 starts at the first message at or after the time")
	rec.mu.Unlock()
	require.Eventually(t, func() bool {
		committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
		return err == nil && committed[0] == 20 && committed[1] == 20
	}, 20*time.Second, 20*time.Millisecond)

	// Backwards while running: offsets 5.. of partition 0 come again, and
	// the commit goes back to 5 before moving on to the end.
	require.NoError(t, c.Seek(topic, 0, 5))
	require.Eventually(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.seen[5] == 1 && rec.seen[19] == 2
	}, 20*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
		return err == nil && committed[0] == 20
	}, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, r.stop(t))
	assert.Equal(t, 0, rec.seen[4], "nothing before the seek offset")
}

// An offset beyond a partition's end (a seek too far, or a committed offset
// that a truncated log no longer reaches) restarts the partition where
// WithStartOffset says, and the commit follows it, backwards. Before, the
// records from the restart were taken for ones already handled: the
// partition stalled for good, with the too-high offset committed.
func TestOffsetBeyondTheEnd(t *testing.T) {
	for _, batch := range []bool{false, true} {
		name := "seek, earliest"
		if batch {
			name += ", batch handler"
		}
		t.Run(name, func(t *testing.T) {
			topic := cluster.NewTopic(t, 1)
			group := "g-" + topic
			produceTo(t, topic, 0, 0, 5, time.Time{})
			c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t)...)
			require.NoError(t, err)
			rec := newRecorder()
			if batch {
				require.NoError(t, c.RegisterBatchHandler(mq.BatchHandlerFunc[ChatMessage](
					func(ctx context.Context, msgs []mq.Message[ChatMessage]) error {
						for _, m := range msgs {
							_ = rec.Handle(ctx, m)
						}
						return nil
					})))
			} else {
				require.NoError(t, c.RegisterHandler(rec))
			}
			r := start(c)
			require.Eventually(t, committedAt(t, group, topic, 5), 20*time.Second, 20*time.Millisecond)
			require.NoError(t, c.Seek(topic, 0, 1000))
			require.Eventually(t, rec.saw(0, 2, 4, 2), 20*time.Second, 5*time.Millisecond, "restarted at the earliest offset")
			produceTo(t, topic, 0, 5, 8, time.Time{})
			require.Eventually(t, rec.saw(5, 1, 7, 1), 20*time.Second, 5*time.Millisecond)
			require.Eventually(t, committedAt(t, group, topic, 8), 20*time.Second, 20*time.Millisecond)
			require.NoError(t, r.stop(t))
		})
	}
	t.Run("committed, latest", func(t *testing.T) {
		topic := cluster.NewTopic(t, 1)
		group := "g-" + topic
		produceTo(t, topic, 0, 0, 5, time.Time{})
		_, err := cluster.Client().OffsetCommit(ctxT(t), &kafka.OffsetCommitRequest{
			GroupID: group, GenerationID: -1,
			Topics: map[string][]kafka.OffsetCommit{topic: {{Partition: 0, Offset: 1000}}},
		})
		require.NoError(t, err)
		require.True(t, committedAt(t, group, topic, 1000)())
		c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group,
			fastConsumer(t, mq.WithStartOffset(mq.StartLatest))...)
		require.NoError(t, err)
		rec := newRecorder()
		require.NoError(t, c.RegisterHandler(rec))
		r := start(c)
		require.Eventually(t, committedAt(t, group, topic, 5), 20*time.Second, 20*time.Millisecond,
			"the end is committed once the partition restarts there")
		produceTo(t, topic, 0, 5, 8, time.Time{})
		require.Eventually(t, rec.saw(5, 1, 7, 1), 20*time.Second, 5*time.Millisecond)
		require.Eventually(t, committedAt(t, group, topic, 8), 20*time.Second, 20*time.Millisecond)
		require.NoError(t, r.stop(t))
		assert.True(t, rec.saw(0, 0, 4, 0)(), "nothing before the end")
	})
}

// A seek made while a message is being retried waits for it; if it then
// fails for good, Run returns its error and the seek is not applied: the
// commit stays at the failed message. With lanes, the seek once moved the
// commit past it.
func TestSeekDoesNotSkipAFailedMessage(t *testing.T) {
	for _, lanes := range []int{1, 2} {
		t.Run(fmt.Sprintf("lanes=%d", lanes), func(t *testing.T) {
			topic := cluster.NewTopic(t, 1)
			group := "g-" + topic
			produceTo(t, topic, 0, 0, 10, time.Time{})
			failing := make(chan struct{}, 1)
			c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t, mq.WithLanes(lanes),
				mq.WithRetryPolicy(mq.RetryPolicy{MaxAttempts: 4, InitialBackoff: 200 * time.Millisecond,
					MaxBackoff: 200 * time.Millisecond, Multiplier: 1}))...)
			require.NoError(t, err)
			require.NoError(t, c.RegisterHandlerFunc(func(_ context.Context, m mq.Message[ChatMessage]) error {
				if m.Value.ID != 2 {
					return nil
				}
				select {
				case failing <- struct{}{}:
				default:
				}
				return errors.New("always fails")
			}))
			r := start(c)
			select {
			case <-failing:
			case <-time.After(20 * time.Second):
				t.Fatal("the failing message was never handled")
			}
			require.NoError(t, c.Seek(topic, 0, 5))
			var herr *mq.HandlerError
			require.ErrorAs(t, r.wait(t), &herr)
			assert.EqualValues(t, 2, herr.Offset)
			committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
			require.NoError(t, err)
			assert.LessOrEqual(t, committed[0], int64(2), "nothing past the failed message is committed")
		})
	}
}

// committedAt reports whether the group's committed offset of partition 0
// of topic is want.
func committedAt(t *testing.T, group, topic string, want int64) func() bool {
	return func() bool {
		committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
		return err == nil && committed[0] == want
	}
}

// A paused partition stays paused across rebalances: a second member joins
// and leaves, the first gets the partition back, and it is still not
// consumed until resumed.
func TestPauseSurvivesRebalance(t *testing.T) {
	topic := cluster.NewTopic(t, 2)
	group := "g-" + topic
	produceTo(t, topic, 0, 0, 20, time.Time{})
	produceTo(t, topic, 1, 20, 40, time.Time{})

	var mu sync.Mutex
	var gens []map[string][]int
	onAssigned := func(a map[string][]int) {
		mu.Lock()
		gens = append(gens, a)
		mu.Unlock()
	}
	a, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t, mq.WithOnAssigned(onAssigned))...)
	require.NoError(t, err)
	rec := newRecorder()
	require.NoError(t, a.RegisterHandler(rec))
	ra := start(a)
	require.Eventually(t, func() bool { return rec.unique() == 40 }, 20*time.Second, 5*time.Millisecond)
	a.Pause(mq.TopicPartition{Topic: topic, Partition: 0})

	// A second member joins, then leaves: two rebalances.
	b, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t)...)
	require.NoError(t, err)
	require.NoError(t, b.RegisterHandler(rec))
	rb := start(b)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(gens) >= 2 && len(gens[len(gens)-1][topic]) == 1
	}, 30*time.Second, 5*time.Millisecond, "the second member got a partition")
	require.NoError(t, rb.stop(t))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(gens) >= 3 && len(gens[len(gens)-1][topic]) == 2
	}, 30*time.Second, 5*time.Millisecond, "the first member owns both partitions again")
	assert.Equal(t, []mq.TopicPartition{{Topic: topic, Partition: 0}}, a.Paused())

	produceTo(t, topic, 0, 40, 60, time.Time{})
	produceTo(t, topic, 1, 60, 80, time.Time{})
	require.Eventually(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.seen[79] > 0
	}, 20*time.Second, 5*time.Millisecond, "partition 1 is consumed")
	rec.mu.Lock()
	for id := 40; id < 60; id++ {
		assert.Zero(t, rec.seen[id], "message %d of the paused partition", id)
	}
	rec.mu.Unlock()
	a.Resume()
	require.Eventually(t, func() bool { return rec.unique() == 80 }, 20*time.Second, 5*time.Millisecond)
	require.NoError(t, ra.stop(t))
}

// With lanes, each lane hands its messages over in batches: every message
// arrives once, each key's messages in order, and everything is committed.
func TestBatchHandlerWithLanes(t *testing.T) {
	const n = 600
	topic := cluster.NewTopic(t, 2)
	produceTo(t, topic, 0, 0, n/2, time.Time{})
	produceTo(t, topic, 1, n/2, n, time.Time{})
	group := "g-" + topic
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group,
		fastConsumer(t, mq.WithLanes(4), mq.WithBatchMaxMessages(25), mq.WithBatchMaxBytes(64<<10))...)
	require.NoError(t, err)
	rec := newBatchRecorder(nil)
	require.NoError(t, c.RegisterBatchHandler(rec))
	r := start(c)
	require.Eventually(t, func() bool { return rec.unique() == n }, 20*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
		return err == nil && committed[0] == n/2 && committed[1] == n/2
	}, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, r.stop(t))
	rec.mu.Lock()
	defer rec.mu.Unlock()
	last := map[string]int64{} // partition/key -> last offset
	for _, b := range rec.batches {
		assert.LessOrEqual(t, len(b), 25)
		for _, m := range b {
			k := fmt.Sprintf("%d/%s", m.Partition, m.Key)
			if prev, ok := last[k]; ok {
				assert.Greater(t, m.Offset, prev, "key %s in order", k)
			}
			last[k] = m.Offset
		}
	}
	for id, times := range rec.seen {
		assert.Equal(t, 1, times, "message %d", id)
	}
}

// Pausing a batch consumer under load, with batches gathering for a
// linger: after the batch in flight, nothing more of the paused partition
// is handed over while the other partition is consumed; after Resume,
// everything arrives once.
func TestPauseResumeUnderLoadWithBatches(t *testing.T) {
	const n = 400
	topic := cluster.NewTopic(t, 2)
	produceTo(t, topic, 0, 0, n, time.Time{})
	produceTo(t, topic, 1, n, 2*n, time.Time{})
	group := "g-" + topic
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group,
		fastConsumer(t, mq.WithBatchMaxMessages(20), mq.WithBatchLinger(30*time.Millisecond))...)
	require.NoError(t, err)

	var mu sync.Mutex
	seen := map[int]map[int]int{0: {}, 1: {}}
	paused := false
	batchesAfterPause := 0
	blocked := make(chan struct{})
	gate := make(chan struct{})
	var once sync.Once
	require.NoError(t, c.RegisterBatchHandlerFunc(func(_ context.Context, msgs []mq.Message[ChatMessage]) error {
		p := msgs[0].Partition
		if p == 0 && msgs[len(msgs)-1].Offset >= 100 {
			once.Do(func() { close(blocked); <-gate }) // partition 0 is busy when it is paused
		}
		mu.Lock()
		defer mu.Unlock()
		if p == 0 && paused {
			batchesAfterPause++
		}
		for _, m := range msgs {
			seen[p][m.Value.ID]++
		}
		return nil
	}))
	r := start(c)
	select {
	case <-blocked:
	case <-time.After(20 * time.Second):
		t.Fatal("partition 0 never reached offset 100")
	}
	c.Pause(mq.TopicPartition{Topic: topic, Partition: 0})
	mu.Lock()
	paused = true
	mu.Unlock()
	close(gate)

	produceTo(t, topic, 0, 2*n, 3*n, time.Time{})
	produceTo(t, topic, 1, 3*n, 4*n, time.Time{})
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen[1]) == 2*n
	}, 20*time.Second, 5*time.Millisecond)
	mu.Lock()
	assert.LessOrEqual(t, batchesAfterPause, 1, "only the batch in flight finishes after the pause")
	assert.Less(t, len(seen[0]), n, "partition 0 has messages waiting")
	mu.Unlock()

	c.Resume()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen[0]) == 2*n
	}, 20*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
		return err == nil && committed[0] == 2*n && committed[1] == 2*n
	}, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, r.stop(t))
	mu.Lock()
	defer mu.Unlock()
	for p := range seen {
		for id, times := range seen[p] {
			assert.Equal(t, 1, times, "message %d", id)
		}
	}
}
