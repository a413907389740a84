package integration

// Exact records: null and empty keys, values and header values reach
// handlers as written; tombstones (null values) skip the codec; compacted
// topics (offset gaps, tombstones) are consumed to their end by a typed
// consumer; Message.Time is the broker's time on LogAppendTime topics.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqtest"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newTopicWithConfig creates a topic with topic-level configs (with mq's
// own admin function), deleted when the test ends.
func newTopicWithConfig(t *testing.T, partitions int, configs map[string]string) string {
	t.Helper()
	topic := mqtest.UniqueName(t.Name())
	rf := 1
	if v, err := strconv.Atoi(os.Getenv(mqtest.EnvReplicationFactor)); err == nil && cluster.Mode() != mqtest.ModeEmbedded {
		rf = v // a cluster tier's replication
	}
	require.NoError(t, mq.CreateTopics(ctxT(t), cluster.Addrs(), []mq.TopicSpec{{Name: topic, Partitions: partitions,
		ReplicationFactor: rf, Configs: configs}}))
	require.NoError(t, cluster.CreateTopic(ctxT(t), topic, partitions), "the helper client knows the topic") // idempotent
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = cluster.DeleteTopic(ctx, topic)
	})
	return topic
}

// newBytesProducer returns a producer of raw values. Tombstones are sent as
// a nil value with Tombstone set.
func newBytesProducer(t *testing.T, topic string) *mq.Producer[[]byte] {
	t.Helper()
	p, err := mq.NewProducer[[]byte](cluster.Addrs(), topic, mq.WithCodec[[]byte](mq.BytesCodec{}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func chatJSON(t *testing.T, m ChatMessage) []byte {
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

// collect runs a consumer of T on topic until done reports true for what
// its handler saw, then stops it (Run must return nil).
func collect[T any](t *testing.T, topic string, opts []mq.ConsumerOption, done func([]mq.Message[T]) bool) []mq.Message[T] {
	t.Helper()
	c, err := mq.NewKafkaConsumer[T](cluster.Addrs(), topic, "g-"+topic, fastConsumer(t, opts...)...)
	require.NoError(t, err)
	var mu sync.Mutex
	var got []mq.Message[T]
	require.NoError(t, c.RegisterHandlerFunc(func(_ context.Context, m mq.Message[T]) error {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		return nil
	}))
	r := start(c)
	snapshot := func() []mq.Message[T] {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	if !assert.Eventually(t, func() bool { return done(snapshot()) }, 60*time.Second, 10*time.Millisecond) {
		t.Logf("handled %d messages", len(snapshot()))
	}
	require.NoError(t, r.stop(t))
	out := snapshot()
	slices.SortFunc(out, func(a, b mq.Message[T]) int {
		if a.Partition != b.Partition {
			return a.Partition - b.Partition
		}
		return int(a.Offset - b.Offset)
	})
	return out
}

// What mq writes, null and empty keys, values and header values included,
// reaches an mq consumer exactly as written, on any broker.
func TestNullAndEmptyRoundTrip(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	p := newBytesProducer(t, topic)
	sent := []mq.Message[[]byte]{
		{Key: nil, Value: []byte("null key"), Headers: []mq.Header{{Key: "null", Value: nil}, {Key: "empty", Value: []byte{}}}},
		{Key: []byte{}, Value: []byte("empty key")},
		{Key: []byte("k"), Value: []byte{}},                    // empty value
		{Key: []byte("k"), Value: nil, Tombstone: true},        // tombstone
		{Key: []byte{0, 0xff}, Value: []byte{0}, Headers: nil}, // binary
	}
	_, err := p.SendMessages(ctxT(t), sent...)
	require.NoError(t, err)
	got := collect(t, topic, []mq.ConsumerOption{mq.WithCodec[[]byte](mq.BytesCodec{})},
		func(ms []mq.Message[[]byte]) bool { return len(ms) >= len(sent) })
	require.Len(t, got, len(sent))
	for i, w := range sent {
		g := got[i]
		what := fmt.Sprintf("message %d", i)
		assert.Equal(t, w.Key == nil, g.Key == nil, "%s: null key", what)
		assert.Equal(t, w.Key, g.Key, what)
		assert.Equal(t, w.Tombstone, g.Tombstone, "%s: tombstone", what)
		assert.Equal(t, w.Tombstone, g.Raw == nil, "%s: Raw is nil exactly for a tombstone", what)
		if !w.Tombstone {
			assert.Equal(t, w.Value, g.Value, what)
			assert.NotNil(t, g.Value, "%s: an empty value is not null", what)
		}
		require.Len(t, g.Headers, len(w.Headers), what)
		for j, h := range w.Headers {
			assert.Equal(t, h.Key, g.Headers[j].Key, what)
			assert.Equal(t, h.Value == nil, g.Headers[j].Value == nil, "%s: header %q null", what, h.Key)
			assert.Equal(t, h.Value, g.Headers[j].Value, what)
		}
	}
}

// A typed JSON consumer gets tombstones as such (zero Value, Tombstone set)
// and does not stop on them: they are not poison.
func TestTombstonesReachTypedConsumer(t *testing.T) {
	topic := cluster.NewTopic(t, 2)
	p := newBytesProducer(t, topic)
	var sent []mq.Message[[]byte]
	for i := 0; i < 20; i++ {
		m := mq.Message[[]byte]{Key: []byte(fmt.Sprintf("user-%d", i%5)), Value: chatJSON(t, ChatMessage{ID: i, Body: "x"})}
		if i%4 == 3 {
			m.Value, m.Tombstone = nil, true // delete the key
		}
		sent = append(sent, m)
	}
	_, err := p.SendMessages(ctxT(t), sent...)
	require.NoError(t, err)
	got := collect(t, topic, nil, func(ms []mq.Message[ChatMessage]) bool { return len(ms) >= len(sent) })
	require.Len(t, got, len(sent))
	tombstones := 0
	for _, m := range got {
		if m.Tombstone {
			tombstones++
			assert.Equal(t, ChatMessage{}, m.Value, "a tombstone's value is T's zero value")
			assert.Nil(t, m.Raw)
			continue
		}
		assert.Equal(t, "x", m.Value.Body)
	}
	assert.Equal(t, 5, tombstones)
}

// A compacted topic — offsets removed by the log cleaner, tombstones — is
// consumed by a typed JSON consumer without stopping, and its group commits
// the end offset (lag 0) although no message has the offsets in the gaps.
func TestCompactedTopicWithTombstones(t *testing.T) {
	if cluster.Mode() == mqtest.ModeEmbedded {
		// kfake compacts every log.cleaner.backoff.ms (an hour unless set
		// when its compaction timer starts, with the first compacted
		// topic): set it low for this broker.
		_, err := cluster.Client().AlterConfigs(ctxT(t), &kafka.AlterConfigsRequest{Resources: []kafka.AlterConfigRequestResource{{
			ResourceType: kafka.ResourceTypeBroker, ResourceName: "0",
			Configs: []kafka.AlterConfigRequestConfig{{Name: "log.cleaner.backoff.ms", Value: "100"}}}}})
		require.NoError(t, err)
	}
	topic := newTopicWithConfig(t, 1, map[string]string{
		"cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01",
		"min.compaction.lag.ms": "0", "delete.retention.ms": "3600000",
	})
	p := newBytesProducer(t, topic)
	ctx := ctxT(t)
	send := func(key string, id int, tombstone bool) {
		m := mq.Message[[]byte]{Key: []byte(key), Value: chatJSON(t, ChatMessage{ID: id, Body: key})}
		if tombstone {
			m.Value, m.Tombstone = nil, true
		}
		_, err := p.SendMessage(ctx, m)
		require.NoError(t, err)
	}
	for round := 0; round < 3; round++ {
		for k := 0; k < 5; k++ {
			send(fmt.Sprintf("user-%d", k), round*5+k, false)
		}
	}
	send("user-0", 100, true)
	send("user-1", 101, true)

	// Keep writing (so that segments roll) until the cleaner has removed
	// some offsets.
	require.Eventually(t, func() bool {
		send("filler", 200, false)
		offsets, err := readAllOffsets(ctx, topic)
		if err != nil || len(offsets) == 0 || offsets[len(offsets)-1]-offsets[0]+1 == int64(len(offsets)) {
			return false
		}
		t.Logf("compacted: %d records in offsets [%d, %d]", len(offsets), offsets[0], offsets[len(offsets)-1])
		return true
	}, 90*time.Second, 200*time.Millisecond, "the log cleaner compacted the topic")

	// The cleaner may still remove older fillers while the consumer runs:
	// check what compaction guarantees, not one snapshot of the log.
	got := collect(t, topic, nil, func(ms []mq.Message[ChatMessage]) bool {
		return len(ms) > 0 && committedEnds(ctx, "g-"+topic, topic)
	})
	last := map[string]mq.Message[ChatMessage]{}
	gaps, tombstones := 0, 0
	for i, m := range got {
		if i > 0 {
			require.Greater(t, m.Offset, got[i-1].Offset, "each record once, in order")
			if m.Offset > got[i-1].Offset+1 {
				gaps++
			}
		}
		if m.Tombstone {
			tombstones++
		}
		last[string(m.Key)] = m
	}
	assert.Positive(t, gaps, "the consumer went over offsets the cleaner removed")
	assert.Equal(t, 2, tombstones, "the tombstones are kept (delete.retention.ms) and delivered as such")
	for k := 0; k < 5; k++ {
		m := last[fmt.Sprintf("user-%d", k)]
		if k < 2 {
			assert.True(t, m.Tombstone, "user-%d was deleted", k)
			continue
		}
		assert.Equal(t, 10+k, m.Value.ID, "user-%d: its last value", k)
	}
	assert.Equal(t, 200, last["filler"].Value.ID)
}

// readAllOffsets reads the offsets of every record of partition 0 of topic
// with kafka-go, from the log start up to the high watermark.
func readAllOffsets(ctx context.Context, topic string) ([]int64, error) {
	conn, err := kafka.DialLeader(ctx, "tcp", cluster.Addrs()[0], topic, 0)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return nil, err
	}
	if _, err := conn.Seek(first, kafka.SeekAbsolute); err != nil {
		return nil, err
	}
	var out []int64
	for len(out) == 0 || out[len(out)-1] < last-1 {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := conn.ReadMessage(10 << 20)
		if err != nil {
			return nil, err
		}
		out = append(out, m.Offset)
	}
	return out, nil
}

// On a LogAppendTime topic, Message.Time is the broker's append time and
// TimestampType says so; on a CreateTime topic it is the producer's time.
func TestTimestampTypes(t *testing.T) {
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		configs map[string]string
		typ     mq.TimestampType
	}{
		{"LogAppendTime", map[string]string{"message.timestamp.type": "LogAppendTime"}, mq.TimestampLogAppendTime},
		{"CreateTime", nil, mq.TimestampCreateTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.typ == mq.TimestampLogAppendTime && cluster.Mode() == mqtest.ModeEmbedded {
				t.Skip("kfake ignores the topic's message.timestamp.type (it stamps only batches whose producer set the LogAppendTime attribute)")
			}
			topic := newTopicWithConfig(t, 1, tc.configs)
			p := newProducer(t, topic)
			before := time.Now().Add(-time.Second)
			_, err := p.SendMessages(ctxT(t), mq.Message[ChatMessage]{Value: ChatMessage{ID: 1}, Time: old},
				mq.Message[ChatMessage]{Value: ChatMessage{ID: 2}, Time: old})
			require.NoError(t, err)
			after := time.Now().Add(time.Second)
			got := collect(t, topic, nil, func(ms []mq.Message[ChatMessage]) bool { return len(ms) >= 2 })
			require.Len(t, got, 2)
			for _, m := range got {
				assert.Equal(t, tc.typ, m.TimestampType)
				if tc.typ == mq.TimestampLogAppendTime {
					assert.True(t, m.Time.After(before) && m.Time.Before(after), "broker time %v, written between %v and %v", m.Time, before, after)
				} else {
					assert.True(t, m.Time.Equal(old), "producer time %v, want %v", m.Time, old)
				}
			}
		})
	}
}
