package integration

import (
	"context"
	"errors"
	"strconv"
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
	"github.com/twmb/franz-go/pkg/kgo"
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
			} else if m.Offset < 0 || m.Topic != topic || m.Time.IsZero() {
				failed = append(failed, errors.New("missing offset, topic or time in report"))
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

// A delivery callback gets each message as it was sent, every field kept,
// with its partition and offset filled in: the producer keeps only what it
// needs while the message is buffered and rebuilds it for the callback.
func TestDeliveryCallbackGetsTheMessageAsSent(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	p := newProducer(t, topic)
	sent := []mq.Message[ChatMessage]{{
		Key:           []byte("k"),
		Value:         ChatMessage{ID: 7, Body: "hi"},
		Headers:       []mq.Header{{Key: "h", Value: []byte("v")}},
		Time:          time.UnixMilli(1_764_000_000_000),
		TimestampType: mq.TimestampLogAppendTime, // meaningless here, but the caller's
		HighWaterMark: 42,
		Raw:           []byte("raw"),
	}, {
		Key:       []byte("gone"),
		Tombstone: true,
		Time:      time.UnixMilli(1_764_000_000_001),
	}}
	got := make(chan mq.Message[ChatMessage], len(sent))
	for _, m := range sent {
		require.NoError(t, p.SendAsync(ctxT(t), m, func(m mq.Message[ChatMessage], err error) {
			assert.NoError(t, err)
			got <- m
		}))
	}
	require.NoError(t, p.Flush(ctxT(t)))
	for i, want := range sent {
		m := <-got
		assert.GreaterOrEqual(t, m.Offset, int64(0))
		want.Topic, want.Partition, want.Offset = topic, 0, m.Offset
		assert.Equal(t, want, m, "message %d", i)
	}
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

// Asynchronous sends without a delivery handler tell nobody of a failure
// but the log: Flush and Close count such failures even when they happened
// before the call, each once. With a handler, which was told, they count
// only what fails while they wait.
func TestUnheardFailuresAreCountedByFlushAndClose(t *testing.T) {
	missing := func() string { return "missing-" + strconv.FormatInt(time.Now().UnixNano(), 36) }
	sendThree := func(t *testing.T, p *mq.Producer[ChatMessage]) {
		for i := 0; i < 3; i++ {
			_, err := p.Send(ctxT(t), nil, ChatMessage{ID: i})
			require.NoError(t, err, "buffered")
		}
		require.Eventually(t, func() bool { return p.Stats().Failed == 3 }, 15*time.Second, 5*time.Millisecond)
	}
	requireUndelivered := func(t *testing.T, err error, n int) {
		t.Helper()
		var uerr *mq.UndeliveredError
		require.ErrorAs(t, err, &uerr)
		assert.Equal(t, n, uerr.Count)
		assert.ErrorIs(t, err, kafka.UnknownTopicOrPartition, "the last error is the broker's")
	}

	t.Run("Close", func(t *testing.T) {
		p := newProducer(t, missing(), mq.WithAsync(true), mq.WithDeliveryTimeout(2*time.Second))
		sendThree(t, p)
		requireUndelivered(t, p.Close(), 3)
	})
	t.Run("Flush, then Close", func(t *testing.T) {
		p := newProducer(t, missing(), mq.WithAsync(true), mq.WithDeliveryTimeout(2*time.Second))
		sendThree(t, p)
		requireUndelivered(t, p.Flush(ctxT(t)), 3)
		assert.NoError(t, p.Flush(ctxT(t)), "counted once")
		assert.NoError(t, p.Close(), "counted by Flush")
	})
	t.Run("with a delivery handler", func(t *testing.T) {
		var told atomic.Int64
		p := newProducer(t, missing(), mq.WithAsync(true), mq.WithDeliveryTimeout(2*time.Second),
			mq.WithDeliveryHandler(func(_ mq.Message[ChatMessage], err error) {
				if err != nil {
					told.Add(1)
				}
			}))
		sendThree(t, p)
		assert.NoError(t, p.Flush(ctxT(t)), "the handler was told")
		assert.Equal(t, int64(3), told.Load(), "Flush returns once the callbacks have")
		assert.NoError(t, p.Close(), "the handler was told")
	})
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
	require.Len(t, res, len(msgs))
	for i, r := range res {
		assert.EqualValues(t, i, r.Offset)
	}

	// A failed message's entry says it was not written.
	mp := newProducer(t, topic, mq.WithManualPartitioning(true))
	res, err = mp.SendMessages(ctxT(t), mq.Message[ChatMessage]{Value: ChatMessage{ID: 10}},
		mq.Message[ChatMessage]{Partition: 5, Value: ChatMessage{ID: 11}})
	var berr *mq.BatchError
	require.ErrorAs(t, err, &berr)
	require.Len(t, res, 2)
	assert.NoError(t, berr.Errors[0])
	assert.Error(t, berr.Errors[1])
	assert.Equal(t, mq.Result{Topic: topic, Partition: 0, Offset: 10, Time: res[0].Time}, res[0])
	assert.Equal(t, mq.Result{Topic: topic, Partition: -1, Offset: -1}, res[1])

	// Asynchronously, one entry per message too, as Send's.
	ap := newProducer(t, topic, mq.WithAsync(true))
	res, err = ap.SendMessages(ctxT(t), msgs[:3]...)
	require.NoError(t, err)
	require.Len(t, res, 3)
	for _, r := range res {
		assert.Equal(t, mq.Result{Topic: topic, Partition: -1, Offset: -1}, r)
	}
	require.NoError(t, ap.Flush(ctxT(t)))
}

// One producer writes to several topics: Message.Topic names the topic
// (empty: the producer's own), and the result and the delivery report name
// the topic really written.
func TestProducerWritesSeveralTopics(t *testing.T) {
	own, other := cluster.NewTopic(t, 1), cluster.NewTopic(t, 2)
	var mu sync.Mutex
	var observed []string
	p := newProducer(t, own, mq.WithObserver(topicObserver{func(topic string) {
		mu.Lock()
		observed = append(observed, topic)
		mu.Unlock()
	}}))
	ctx := ctxT(t)
	res, err := p.SendMessage(ctx, mq.Message[ChatMessage]{Topic: other, Key: []byte("k"), Value: ChatMessage{ID: 1}})
	require.NoError(t, err)
	assert.Equal(t, other, res.Topic)
	res, err = p.Send(ctx, nil, ChatMessage{ID: 2})
	require.NoError(t, err)
	assert.Equal(t, own, res.Topic)
	reported := make(chan mq.Message[ChatMessage], 1)
	require.NoError(t, p.SendAsync(ctx, mq.Message[ChatMessage]{Topic: other, Value: ChatMessage{ID: 3}},
		func(m mq.Message[ChatMessage], err error) {
			assert.NoError(t, err)
			reported <- m
		}))
	m := <-reported
	assert.Equal(t, other, m.Topic)
	assert.GreaterOrEqual(t, m.Offset, int64(0))

	got, err := cluster.ReadAll(ctx, other, 2)
	require.NoError(t, err)
	require.Len(t, got, 2)
	got, err = cluster.ReadAll(ctx, own, 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	mu.Lock()
	assert.Equal(t, []string{other, own, other}, observed, "the observer is told the real topic")
	mu.Unlock()
}

type topicObserver struct {
	started func(topic string)
}

func (o topicObserver) SendStarted(ctx context.Context, topic string, h []mq.Header) (context.Context, []mq.Header) {
	o.started(topic)
	return ctx, h
}
func (topicObserver) SendFinished(context.Context, string, int, int64, time.Duration, error) {}
func (topicObserver) ProcessStarted(ctx context.Context, _ mq.MessageInfo) context.Context {
	return ctx
}
func (topicObserver) HandlerFinished(context.Context, mq.MessageInfo, string, int, time.Duration, error) {
}
func (topicObserver) ProcessFinished(context.Context, mq.MessageInfo, mq.Outcome, time.Duration, error) {
}
func (topicObserver) Committed(string, string, int, int64)       {}
func (topicObserver) Rebalanced(string, int32, map[string][]int) {}

// A tombstone is a record with a null value, sent by a typed producer
// without calling its codec; null and empty keys stay distinct.
func TestProducerTombstoneSendsNullValue(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	codec := mq.CodecFuncs[ChatMessage]{
		EncodeFunc: func(ChatMessage) ([]byte, error) { return nil, errors.New("the codec must not be called") },
		DecodeFunc: func([]byte) (ChatMessage, error) { return ChatMessage{}, nil },
	}
	p := newProducer(t, topic, mq.WithCodec[ChatMessage](codec))
	ctx := ctxT(t)
	_, err := p.SendMessage(ctx, mq.Message[ChatMessage]{Key: []byte("gone"), Tombstone: true})
	require.NoError(t, err)
	_, err = p.SendMessage(ctx, mq.Message[ChatMessage]{Key: []byte{}, Tombstone: true})
	require.NoError(t, err)
	_, err = p.SendMessage(ctx, mq.Message[ChatMessage]{Key: nil, Tombstone: true})
	require.NoError(t, err)
	_, err = p.SendMessage(ctx, mq.Message[ChatMessage]{Key: []byte("x")})
	require.ErrorContains(t, err, "the codec must not be called", "a message that is no tombstone is encoded")

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.Addrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	var recs []*kgo.Record
	for len(recs) < 3 {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err())
		recs = append(recs, fs.Records()...)
	}
	for i, r := range recs {
		assert.Nil(t, r.Value, "record %d: null value", i)
	}
	assert.Equal(t, "gone", string(recs[0].Key))
	assert.NotNil(t, recs[1].Key, "an empty key stays empty")
	assert.Empty(t, recs[1].Key)
	assert.Nil(t, recs[2].Key, "a nil key is null")
}

// With manual partitioning Message.Partition is used, 0 included; a
// partition the topic does not have fails once metadata confirms it; a
// negative one is rejected by Send.
func TestProducerManualPartitioning(t *testing.T) {
	topic := cluster.NewTopic(t, 3)
	p := newProducer(t, topic, mq.WithManualPartitioning(true))
	ctx := ctxT(t)
	for _, part := range []int{2, 0, 1, 0} {
		res, err := p.SendMessage(ctx, mq.Message[ChatMessage]{Partition: part, Key: []byte("same key"), Value: ChatMessage{ID: part}})
		require.NoError(t, err)
		assert.Equal(t, part, res.Partition)
	}
	_, err := p.SendMessage(ctx, mq.Message[ChatMessage]{Partition: 7, Value: ChatMessage{ID: 7}})
	require.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
	assert.Contains(t, err.Error(), "partition 7")
	_, err = p.SendMessage(ctx, mq.Message[ChatMessage]{Partition: -1, Value: ChatMessage{ID: -1}})
	require.ErrorContains(t, err, "invalid partition -1")
	end, err := cluster.EndOffsets(ctx, topic)
	require.NoError(t, err)
	assert.Equal(t, map[int]int64{0: 2, 1: 1, 2: 1}, end)
}

// A message larger than the producer's limits is rejected by Send with
// ErrMessageTooLarge, before anything is buffered.
func TestProducerMessageTooLargeLocally(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	p := newProducer(t, topic, mq.WithMaxRequestSize(1000))
	_, err := p.Send(ctxT(t), nil, ChatMessage{Body: strings.Repeat("x", 2000)})
	require.ErrorIs(t, err, mq.ErrMessageTooLarge)
	assert.Contains(t, err.Error(), "max request size of 1000")
	assert.Zero(t, p.Stats().Sent)
}
