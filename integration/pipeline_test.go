package integration

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// createRecoveryTopics creates the topics a recoverer writes to.
func createRecoveryTopics(t *testing.T, topic string, r mq.Recoverer, partitions int) {
	t.Helper()
	for _, name := range r.Topics(topic) {
		require.NoError(t, cluster.CreateTopic(ctxT(t), name, partitions))
		if cluster.Mode() != "embedded" {
			name := name
			t.Cleanup(func() { _ = cluster.DeleteTopic(context.Background(), name) })
		}
	}
}

func hdr(m kafka.Message, key string) string {
	for i := len(m.Headers) - 1; i >= 0; i-- {
		if m.Headers[i].Key == key {
			return string(m.Headers[i].Value)
		}
	}
	return ""
}

// failOn returns a handler failing with err for the given message IDs and
// recording the others.
func failOn(rec *recorder, err error, ids ...int) mq.HandlerFunc[ChatMessage] {
	bad := map[int]bool{}
	for _, id := range ids {
		bad[id] = true
	}
	return func(ctx context.Context, m mq.Message[ChatMessage]) error {
		if bad[m.Value.ID] {
			return err
		}
		return rec.Handle(ctx, m)
	}
}

// Skip: the failing message is logged, counted and committed past; all others
// are handled; nothing stops.
func TestSkipRecoverer(t *testing.T) {
	const n = 30
	topic := cluster.NewTopic(t, 2)
	produceChat(t, newProducer(t, topic), 0, n)
	group := "g-" + topic
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group,
		fastConsumer(t, mq.WithRecoverer(mq.SkipRecoverer()))...)
	require.NoError(t, err)
	rec := newRecorder()
	require.NoError(t, c.RegisterHandler(failOn(rec, mq.Permanent(errors.New("invalid chat")), 3, 17)))
	r := start(c)
	require.Eventually(t, func() bool { return rec.count() >= n-2 && c.Stats().Skipped >= 2 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))
	st := c.Stats()
	assert.EqualValues(t, 2, st.Skipped)
	assert.EqualValues(t, 2, st.HandlerErrors, "permanent errors are not retried")
	assert.Zero(t, st.Retries)
	assert.Equal(t, n-2, rec.unique())
	assert.NotContains(t, rec.seen, 3)
	end, err := cluster.EndOffsets(ctxT(t), topic)
	require.NoError(t, err)
	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.Equal(t, end, committed, "skipped messages are committed")
}

// Dead letter: a message whose handler keeps failing and a poison message
// both end in the DLT — the poison bytes unchanged — with headers describing
// the failure; every other message is handled and everything is committed.
func TestDeadLetterRecoverer(t *testing.T) {
	const n = 20
	topic := cluster.NewTopic(t, 1)
	r := mq.DeadLetterRecoverer("")
	createRecoveryTopics(t, topic, r, 1)
	p := newProducer(t, topic)
	produceChat(t, p, 0, 10)
	poison := []byte{0xff, 0x00, '{', 'x'}
	require.NoError(t, cluster.Produce(ctxT(t), topic, kafka.Message{Key: []byte("poison-key"), Value: poison,
		Headers: []kafka.Header{{Key: "trace", Value: []byte("abc")}}}))
	produceChat(t, p, 10, n)
	group := "g-" + topic

	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t, mq.WithRecoverer(r))...)
	require.NoError(t, err)
	ok, rec := newRecorder(), newRecorder()
	require.NoError(t, c.RegisterHandler(ok, mq.WithHandlerName("persist")))
	require.NoError(t, c.RegisterHandler(failOn(rec, errors.New("mailer down"), 5), mq.WithHandlerName("mail")))
	run := start(c)
	require.Eventually(t, func() bool { return c.Stats().DeadLettered >= 2 && rec.count() >= n-1 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, run.stop(t))

	assert.EqualValues(t, 2, c.Stats().DeadLettered)
	assert.EqualValues(t, 1, c.Stats().DecodeErrors)
	assert.Equal(t, n, ok.unique(), "persist handled every decodable message")
	assert.Equal(t, 1, ok.seen[5], "persist succeeded once on message 5 and was not called again")
	assert.Equal(t, n-1, rec.unique())

	dlt, err := cluster.ReadAll(ctxT(t), topic+".dlt", 2)
	require.NoError(t, err)
	require.Len(t, dlt, 2)
	var handlerMsg, poisonMsg kafka.Message
	for _, m := range dlt {
		if hdr(m, mq.HeaderFailure) == "decode" {
			poisonMsg = m
		} else {
			handlerMsg = m
		}
	}
	assert.Equal(t, poison, poisonMsg.Value, "poison bytes reach the DLT unchanged")
	assert.Equal(t, "poison-key", string(poisonMsg.Key))
	assert.Equal(t, "abc", hdr(poisonMsg, "trace"), "original headers are kept")
	assert.Equal(t, topic, hdr(poisonMsg, mq.HeaderOriginalTopic))
	assert.Equal(t, "10", hdr(poisonMsg, mq.HeaderOriginalOffset))
	assert.Equal(t, "0", hdr(poisonMsg, mq.HeaderOriginalPartition))
	assert.Equal(t, group, hdr(poisonMsg, mq.HeaderConsumerGroup))
	assert.NotEmpty(t, hdr(poisonMsg, mq.HeaderError))

	assert.Equal(t, "handler", hdr(handlerMsg, mq.HeaderFailure))
	assert.Equal(t, "mail", hdr(handlerMsg, mq.HeaderFailedHandler))
	assert.Equal(t, "mailer down", hdr(handlerMsg, mq.HeaderError))
	assert.Equal(t, "3", hdr(handlerMsg, mq.HeaderAttempts))
	assert.Equal(t, "5", hdr(handlerMsg, mq.HeaderOriginalOffset))
	assert.Equal(t, "persist", hdr(handlerMsg, mq.HeaderHandlersDone))
	ts, err := strconv.ParseInt(hdr(handlerMsg, mq.HeaderOriginalTimestamp), 10, 64)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), time.UnixMilli(ts), time.Minute)

	end, err := cluster.EndOffsets(ctxT(t), topic)
	require.NoError(t, err)
	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.Equal(t, end, committed)
}

// A dead-letter topic that does not exist makes Run fail at once, clearly.
func TestDeadLetterTopicMissing(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, "g-"+topic,
		fastConsumer(t, mq.WithRecoverer(mq.DeadLetterRecoverer("no-such-dlt-"+topic)))...)
	require.NoError(t, err)
	require.NoError(t, c.RegisterHandler(newRecorder()))
	err = start(c).wait(t)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no-such-dlt-"+topic)
	assert.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
	assert.ErrorIs(t, err, mq.ErrTopicNotFound)
}

// Non-blocking retry topics: a failing message moves through the tiers, each
// processed no earlier than its delay; handlers that already succeeded are not
// called again; the main partition keeps flowing meanwhile; a message that
// never succeeds ends in the DLT with the attempt count.
func TestRetryTopicRecoverer(t *testing.T) {
	delays := []time.Duration{300 * time.Millisecond, 600 * time.Millisecond}
	const n = 40
	topic := cluster.NewTopic(t, 2)
	r := mq.RetryTopicRecoverer(delays, "")
	createRecoveryTopics(t, topic, r, 2)
	group := "g-" + topic

	type call struct {
		topic string
		at    time.Time
	}
	var mu sync.Mutex
	calls := map[int][]call{} // "flaky" handler calls per message ID
	handledAt := map[int]time.Time{}
	var persistCalls atomic.Int32
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group,
		fastConsumer(t, mq.WithRecoverer(r), mq.WithRetryPolicy(mq.RetryPolicy{MaxAttempts: 1, Multiplier: 1}))...)
	require.NoError(t, err)
	require.NoError(t, c.RegisterHandlerFunc(func(_ context.Context, m mq.Message[ChatMessage]) error {
		if m.Value.ID == 7 || m.Value.ID == 9 {
			persistCalls.Add(1)
		}
		return nil
	}, mq.WithHandlerName("persist")))
	require.NoError(t, c.RegisterHandlerFunc(func(_ context.Context, m mq.Message[ChatMessage]) error {
		mu.Lock()
		defer mu.Unlock()
		calls[m.Value.ID] = append(calls[m.Value.ID], call{m.Topic, time.Now()})
		switch {
		case m.Value.ID == 7 && len(calls[7]) < 3: // fails in main and tier 1, succeeds in tier 2
			return errors.New("flaky")
		case m.Value.ID == 9: // never succeeds
			return errors.New("always")
		}
		handledAt[m.Value.ID] = time.Now()
		return nil
	}, mq.WithHandlerName("flaky")))
	run := start(c)
	p := newProducer(t, topic)
	produceChat(t, p, 0, n)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handledAt) == n-1 && c.Stats().DeadLettered == 1
	}, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, run.stop(t))

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, calls[7], 3)
	assert.Equal(t, topic, calls[7][0].topic)
	assert.Equal(t, topic+".retry.1", calls[7][1].topic)
	assert.Equal(t, topic+".retry.2", calls[7][2].topic)
	tol := 50 * time.Millisecond
	assert.GreaterOrEqual(t, calls[7][1].at.Sub(calls[7][0].at), delays[0]-tol, "tier 1 waited its delay")
	assert.GreaterOrEqual(t, calls[7][2].at.Sub(calls[7][1].at), delays[1]-tol, "tier 2 waited its delay")
	assert.EqualValues(t, 2, persistCalls.Load(), "persist ran once per message: not again in the retry tiers")
	require.Len(t, calls[9], 3)

	// The main topic kept flowing: the last message was handled before message 7's first retry.
	assert.True(t, handledAt[n-1].Before(calls[7][1].at), "main partitions are not blocked by a waiting retry")

	dlt, err := cluster.ReadAll(ctxT(t), topic+".dlt", 1)
	require.NoError(t, err)
	require.Len(t, dlt, 1)
	assert.Equal(t, "3", hdr(dlt[0], mq.HeaderAttempts))
	assert.Equal(t, topic, hdr(dlt[0], mq.HeaderOriginalTopic))
	assert.Equal(t, "flaky", hdr(dlt[0], mq.HeaderFailedHandler))
	assert.JSONEq(t, `{"id":9,"conversation_id":"`+convID(9)+`","body":"hello"}`, string(dlt[0].Value))

	st := c.Stats()
	assert.EqualValues(t, 4, st.RetryPublished, "7 and 9 each moved through two tiers")
	assert.EqualValues(t, 1, st.DeadLettered)
	for _, tp := range append([]string{topic}, r.Topics(topic)[:2]...) {
		end, err := cluster.EndOffsets(ctxT(t), tp)
		require.NoError(t, err)
		committed, err := cluster.CommittedOffsets(ctxT(t), group, tp)
		require.NoError(t, err)
		for p, o := range committed {
			if o == -1 && end[p] == 0 {
				committed[p] = 0 // an empty partition has nothing to commit
			}
		}
		assert.Equal(t, end, committed, tp)
	}
}

// Redrive moves dead-lettered messages back to their original topic with
// their headers; a header filter selects a subset (a handler named in the
// list of failed handlers too); a group makes reruns resume.
func TestRedrive(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	dlt := cluster.NewTopic(t, 2)
	var msgs []kafka.Message
	for i := 0; i < 6; i++ {
		handler := "persist"
		switch {
		case i%2 == 1:
			handler = "mail"
		case i == 4:
			handler = "persist,mail" // both failed
		}
		msgs = append(msgs, kafka.Message{Partition: i % 2, Key: []byte("k" + strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i)),
			Headers: []kafka.Header{{Key: mq.HeaderOriginalTopic, Value: []byte(topic)}, {Key: mq.HeaderFailedHandler, Value: []byte(handler)}}})
	}
	require.NoError(t, cluster.Produce(ctxT(t), dlt, msgs...))

	stats, err := mq.Redrive(ctxT(t), cluster.Addrs(), dlt, mq.WithRedriveHeader(mq.HeaderFailedHandler, "mail"), mq.WithRedriveDryRun(true))
	require.NoError(t, err)
	assert.Equal(t, mq.RedriveStats{Read: 6, Redriven: 4, Filtered: 2, ByTopic: map[string]int{topic: 4}}, stats)
	stats, err = mq.Redrive(ctxT(t), cluster.Addrs(), dlt, mq.WithRedriveHeader(mq.HeaderFailedHandler, "persist,mail"), mq.WithRedriveDryRun(true))
	require.NoError(t, err)
	assert.Equal(t, 1, stats.Redriven, "the whole value matches too")
	end, err := cluster.EndOffsets(ctxT(t), topic)
	require.NoError(t, err)
	assert.Zero(t, sum(end), "a dry run writes nothing")

	stats, err = mq.Redrive(ctxT(t), cluster.Addrs(), dlt, mq.WithRedriveGroup("redrive-"+dlt))
	require.NoError(t, err)
	assert.Equal(t, 6, stats.Redriven)
	got, err := cluster.ReadAll(ctxT(t), topic, 6)
	require.NoError(t, err)
	require.Len(t, got, 6)
	for _, m := range got {
		assert.Equal(t, "v"+string(m.Key[1:]), string(m.Value))
		assert.Equal(t, topic, hdr(m, mq.HeaderOriginalTopic), "headers are kept")
		assert.NotEmpty(t, hdr(m, mq.HeaderFailedHandler))
	}
	stats, err = mq.Redrive(ctxT(t), cluster.Addrs(), dlt, mq.WithRedriveGroup("redrive-"+dlt))
	require.NoError(t, err)
	assert.Zero(t, stats.Read, "a rerun with the same group resumes after what was done")
}
