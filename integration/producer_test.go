package integration

import (
	"context"
	"errors"
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

// A synchronous send returns the record's partition and offset, and the record
// reads back byte-identical (key, value, headers).
func TestSendReturnsOffsetsAndRoundTrips(t *testing.T) {
	for _, codec := range []mq.Compression{mq.CompressionNone, mq.CompressionGzip, mq.CompressionSnappy, mq.CompressionLz4, mq.CompressionZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			topic := cluster.NewTopic(t, 1)
			p := newProducer(t, topic, mq.WithCompression(codec))
			ctx := ctxT(t)
			for i := 0; i < 3; i++ {
				res, err := p.Send(ctx, []byte("k"+strconv.Itoa(i)), ChatMessage{ID: i, Body: "hi"},
					mq.Header{Key: "trace", Value: []byte("t" + strconv.Itoa(i))})
				require.NoError(t, err)
				assert.Equal(t, topic, res.Topic)
				assert.Equal(t, 0, res.Partition)
				assert.EqualValues(t, i, res.Offset)
			}
			got, err := cluster.ReadAll(ctx, topic, 3)
			require.NoError(t, err)
			require.Len(t, got, 3)
			for i, m := range got {
				assert.Equal(t, "k"+strconv.Itoa(i), string(m.Key))
				assert.JSONEq(t, `{"id":`+strconv.Itoa(i)+`,"conversation_id":"","body":"hi"}`, string(m.Value))
				require.Len(t, m.Headers, 1)
				assert.Equal(t, "trace", m.Headers[0].Key)
				assert.Equal(t, "t"+strconv.Itoa(i), string(m.Headers[0].Value))
			}
		})
	}
}

// Keys land on the partition the Java client's default partitioner picks
// (kafka-go's Murmur2Balancer implements it), whatever the send path.
func TestKeysHashLikeJavaClient(t *testing.T) {
	const parts = 6
	topic := cluster.NewTopic(t, parts)
	p := newProducer(t, topic)
	java := kafka.Murmur2Balancer{}
	all := []int{0, 1, 2, 3, 4, 5}
	var msgs []mq.Message[ChatMessage]
	for i := 0; i < 200; i++ {
		msgs = append(msgs, mq.Message[ChatMessage]{Key: []byte("conversation-" + strconv.Itoa(i)), Value: ChatMessage{ID: i}})
	}
	res, err := p.SendMessages(ctxT(t), msgs...)
	require.NoError(t, err)
	for i, r := range res {
		want := java.Balance(kafka.Message{Key: msgs[i].Key}, all...)
		require.Equal(t, want, r.Partition, "key %s", msgs[i].Key)
	}
	// nil keys are spread over all partitions.
	seen := map[int]bool{}
	for i := 0; i < 3*parts; i++ {
		r, err := p.Send(ctxT(t), nil, ChatMessage{ID: i})
		require.NoError(t, err)
		seen[r.Partition] = true
	}
	assert.Len(t, seen, parts)
}

// Every async send reports its outcome exactly once, and Close flushes.
func TestAsyncReportsEveryMessageOnceAndCloseFlushes(t *testing.T) {
	const n = 2000
	topic := cluster.NewTopic(t, 3)
	var mu sync.Mutex
	reports := map[int]int{}
	var failed []error
	p, err := mq.NewProducer[ChatMessage](cluster.Addrs(), topic,
		mq.WithAsync(true), mq.WithBatchSize(100), mq.WithBatchTimeout(10*time.Millisecond),
		mq.WithCompression(mq.CompressionSnappy), mq.WithMaxBufferedRecords(256),
		mq.WithDeliveryHandler(func(m mq.Message[ChatMessage], err error) {
			mu.Lock()
			defer mu.Unlock()
			reports[m.Value.ID]++
			if err != nil {
				failed = append(failed, err)
			} else if m.Offset < 0 || m.Topic != topic {
				failed = append(failed, errors.New("missing offset or topic in report"))
			}
		}))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < n; i += 4 {
				_, err := p.Send(context.Background(), []byte(convID(i)), ChatMessage{ID: i})
				assert.NoError(t, err)
			}
		}(g)
	}
	wg.Wait()
	require.NoError(t, p.Close(), "close flushes everything")
	_, err = p.Send(context.Background(), nil, ChatMessage{})
	require.ErrorIs(t, err, mq.ErrClosed)

	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, failed)
	assert.Len(t, reports, n)
	for id, c := range reports {
		require.Equal(t, 1, c, "message %d reported %d times", id, c)
	}
	end, err := cluster.EndOffsets(ctxT(t), topic)
	require.NoError(t, err)
	assert.EqualValues(t, n, sum(end))
}

// SendAsync callbacks fire exactly once each, Flush waits for them.
func TestSendAsyncCallbacksAndFlush(t *testing.T) {
	topic := cluster.NewTopic(t, 2)
	p := newProducer(t, topic, mq.WithBatchTimeout(time.Hour)) // only Flush can send
	var mu sync.Mutex
	got := map[int]int{}
	for i := 0; i < 50; i++ {
		require.NoError(t, p.SendAsync(ctxT(t), mq.Message[ChatMessage]{Value: ChatMessage{ID: i}}, func(m mq.Message[ChatMessage], err error) {
			assert.NoError(t, err)
			mu.Lock()
			got[m.Value.ID]++
			mu.Unlock()
		}))
	}
	require.NoError(t, p.Flush(ctxT(t)))
	mu.Lock()
	assert.Len(t, got, 50)
	mu.Unlock()
}

// When the broker is gone, every buffered message still reports (an error)
// exactly once, and Close says how many were not delivered.
func TestCloseReportsUndelivered(t *testing.T) {
	private, err := mqtest.NewCluster(ctxT(t), mqtest.WithMode(mqtest.ModeEmbedded))
	require.NoError(t, err)
	topic := "lost-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	require.NoError(t, private.CreateTopic(ctxT(t), topic, 1))
	p, err := mq.NewProducer[ChatMessage](private.Addrs(), topic,
		mq.WithDeliveryTimeout(time.Second), mq.WithCloseTimeout(3*time.Second), mq.WithRetryBackoff(10*time.Millisecond))
	require.NoError(t, err)
	_, err = p.Send(ctxT(t), nil, ChatMessage{ID: -1}) // warm metadata
	require.NoError(t, err)
	require.NoError(t, private.Close())

	var mu sync.Mutex
	reports := map[int]int{}
	for i := 0; i < 10; i++ {
		require.NoError(t, p.SendAsync(ctxT(t), mq.Message[ChatMessage]{Value: ChatMessage{ID: i}}, func(m mq.Message[ChatMessage], err error) {
			mu.Lock()
			defer mu.Unlock()
			assert.Error(t, err)
			reports[m.Value.ID]++
		}))
	}
	err = p.Close() // bounded by the close timeout: a hang would fail the test by its timeout
	var uerr *mq.UndeliveredError
	require.ErrorAs(t, err, &uerr)
	assert.Equal(t, 10, uerr.Count)
	assert.ErrorIs(t, err, mq.ErrUndelivered)
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, reports, 10)
	for id, c := range reports {
		assert.Equal(t, 1, c, "message %d", id)
	}
}

// A send to a topic that does not exist fails with a clear error, not a hang.
func TestSendToMissingTopicFails(t *testing.T) {
	p := newProducer(t, "does-not-exist-"+strconv.FormatInt(time.Now().UnixNano(), 36), mq.WithDeliveryTimeout(2*time.Second))
	// The send ends by itself (its context has no deadline), with the
	// broker's answer rather than a timeout of ours.
	_, err := p.Send(context.Background(), nil, ChatMessage{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not exist")
	assert.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
}

// The buffer is bounded: with the broker unreachable, a full buffer blocks
// senders until their context ends.
func TestFullBufferAppliesBackpressure(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	p := newProducer(t, topic, mq.WithMaxBufferedRecords(4), mq.WithBatchTimeout(time.Hour))
	for i := 0; i < 4; i++ {
		require.NoError(t, p.SendAsync(ctxT(t), mq.Message[ChatMessage]{Value: ChatMessage{ID: i}}, func(mq.Message[ChatMessage], error) {}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := p.SendAsync(ctx, mq.Message[ChatMessage]{Value: ChatMessage{ID: 5}}, func(mq.Message[ChatMessage], error) {})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, p.Flush(ctxT(t)))
	require.NoError(t, p.SendAsync(ctxT(t), mq.Message[ChatMessage]{Value: ChatMessage{ID: 6}}, nil), "space again after flush")
}

// SendMessages reports results per message, in order.
func TestSendMessagesResults(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	p := newProducer(t, topic)
	var msgs []mq.Message[ChatMessage]
	for i := 0; i < 10; i++ {
		msgs = append(msgs, mq.Message[ChatMessage]{Value: ChatMessage{ID: i}})
	}
	res, err := p.SendMessages(ctxT(t), msgs...)
	require.NoError(t, err)
	for i, r := range res {
		assert.EqualValues(t, i, r.Offset)
	}
}
