package integration

// The producer on a cluster of three brokers (kfake, embedded whatever
// KAFKA_BROKERS says, for its fault injection): leaders that move, a
// partition without a leader, a broker that answers late, and Close against
// a partition that keeps failing. The assertions are about mechanisms (what
// failed, what was written, how many requests were sent), never about
// wall-clock time.

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// threeBrokers starts an embedded cluster of three kfake brokers.
func threeBrokers(t *testing.T) (*mqtest.Cluster, *kfake.Cluster) {
	t.Helper()
	c := mqtest.New(t, mqtest.WithMode(mqtest.ModeEmbedded), mqtest.WithKfakeOptions(kfake.NumBrokers(3)))
	return c, c.Kfake()
}

// readAllRecords reads a topic from the start to its end offsets with
// franz-go, an independent reader (kafka-go's cached metadata lags behind
// leader moves).
func readAllRecords(t *testing.T, c *mqtest.Cluster, topic string, partitions int) []*kgo.Record {
	t.Helper()
	ctx := ctxT(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()

	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = int32(p)
		rp.Timestamp = -1 // the end
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	var want int64
	for _, shard := range cl.RequestSharded(ctx, req) {
		require.NoError(t, shard.Err)
		for _, t2 := range shard.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t2.Partitions {
				require.NoError(t, kerr.ErrorForCode(p.ErrorCode), "end offset of partition %d", p.Partition)
				want += p.Offset
			}
		}
	}
	var out []*kgo.Record
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read %d of %d records", len(out), want)
		out = append(out, fs.Records()...)
	}
	return out
}

// checkPerKeyOrder checks that every key's records carry 0, 1, 2, ... in
// their value, once each: no duplicate, no reordering, no gap up to n[key].
func checkPerKeyOrder(t *testing.T, recs []*kgo.Record, n map[string]int) {
	t.Helper()
	next := map[string]int{}
	for _, r := range recs {
		k := string(r.Key)
		v, err := strconv.Atoi(string(r.Value))
		require.NoError(t, err)
		require.Equal(t, next[k], v, "key %s: record %d follows %d (duplicate or reordering)", k, v, next[k]-1)
		next[k]++
	}
	for k, want := range n {
		assert.Equal(t, want, next[k], "key %s: records written", k)
	}
}

// While leaders move every 100-200 ms, 64 goroutines sending synchronously
// see no failed send, and the log holds every acknowledged message once, in
// each key's order.
func TestProducerLeaderMovesNoFailedSends(t *testing.T) {
	duration := 20 * time.Second
	if testing.Short() {
		duration = 3 * time.Second
	}
	c, kf := threeBrokers(t)
	topic := c.NewTopic(t, 12)
	p, err := mq.NewProducer[[]byte](c.Addrs(), topic, mq.WithCodec[[]byte](mq.BytesCodec{}),
		mq.WithDeliveryTimeout(time.Minute), mq.WithRetryBackoff(20*time.Millisecond))
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()

	stop := make(chan struct{})
	var moves atomic.Int64
	shuffled := make(chan struct{})
	go func() {
		defer close(shuffled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(100+rand.IntN(100)) * time.Millisecond):
				kf.ShufflePartitionLeaders()
				moves.Add(1)
			}
		}
	}()

	const senders = 64
	counts := make([]int, senders)
	var failed atomic.Int64
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []byte("sender-" + strconv.Itoa(g))
			for i := 0; time.Now().Before(deadline); i++ {
				if _, err := p.Send(ctxT(t), key, []byte(strconv.Itoa(i))); err != nil {
					failed.Add(1)
					t.Errorf("sender %d, message %d: %v", g, i, err)
					return
				}
				counts[g]++
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-shuffled
	require.Zero(t, failed.Load(), "failed sends")

	total := 0
	n := map[string]int{}
	for g, k := range counts {
		n["sender-"+strconv.Itoa(g)] = k
		total += k
	}
	t.Logf("%d sync sends by %d goroutines in %v, %d leader shuffles, 0 failed", total, senders, duration, moves.Load())
	require.Greater(t, moves.Load(), int64(5))
	recs := readAllRecords(t, c, topic, 12)
	require.Len(t, recs, total, "every acknowledged message once")
	checkPerKeyOrder(t, recs, n)
}

// A partition without a leader for 3 s: a synchronous send to it waits and
// succeeds once the partition has a leader again.
func TestProducerLeaderlessPartitionSendSucceeds(t *testing.T) {
	c, kf := threeBrokers(t)
	topic := c.NewTopic(t, 3)
	p, err := mq.NewProducer[[]byte](c.Addrs(), topic, mq.WithCodec[[]byte](mq.BytesCodec{}),
		mq.WithManualPartitioning(true), mq.WithRetryBackoff(20*time.Millisecond))
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	_, err = p.SendMessage(ctxT(t), mq.Message[[]byte]{Partition: 0, Value: []byte("warm")})
	require.NoError(t, err)

	leaderless := kf.Fault(
		kfake.Fault{Keys: []kmsg.Key{kmsg.Metadata}, Topic: topic, Partitions: []int32{0}, Err: kerr.LeaderNotAvailable, Count: -1},
		kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Partitions: []int32{0}, Err: kerr.NotLeaderForPartition, Count: -1},
	)
	kf.ShufflePartitionLeaders() // the cached leader is stale too
	type outcome struct {
		res mq.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := p.SendMessage(ctxT(t), mq.Message[[]byte]{Partition: 0, Value: []byte("through the election")})
		done <- outcome{res, err}
	}()
	const leaderlessFor = 3 * time.Second
	select {
	case o := <-done:
		t.Fatalf("the send ended while the partition had no leader: %+v", o)
	case <-time.After(leaderlessFor):
	}
	hits := leaderless.Hits()
	leaderless.Remove()
	o := <-done
	require.NoError(t, o.err)
	assert.EqualValues(t, 1, o.res.Offset)
	t.Logf("the send waited through %v without a leader (%d faulted metadata/produce requests)", leaderlessFor, hits)
	assert.Greater(t, hits, 2, "the producer kept looking for a leader")
}

// A broker that holds its produce responses delays only the partitions it
// leads: sends to partitions of the two other brokers keep completing while
// it holds one.
func TestProducerSlowBrokerDelaysOnlyItsPartitions(t *testing.T) {
	c, kf := threeBrokers(t)
	topic := c.NewTopic(t, 6)
	// kfake picks leaders at random (all six on one broker once in 243
	// topics): spread them over the three brokers.
	for part := int32(0); part < 6; part++ {
		require.NoError(t, kf.MoveTopicPartition(topic, part, part%3))
	}
	leaders := map[int32][]int{}
	for part := int32(0); part < 6; part++ {
		leaders[kf.LeaderFor(topic, part)] = append(leaders[kf.LeaderFor(topic, part)], int(part))
	}
	var slow int32 = -1
	var healthy []int
	for b, parts := range leaders {
		if slow < 0 {
			slow = b
			continue
		}
		healthy = append(healthy, parts...)
	}
	require.NotEmpty(t, healthy, "partitions on other brokers: %v", leaders)

	p, err := mq.NewProducer[[]byte](c.Addrs(), topic, mq.WithCodec[[]byte](mq.BytesCodec{}), mq.WithManualPartitioning(true))
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	for _, part := range append([]int{leaders[slow][0]}, healthy...) { // connections and metadata warm
		_, err := p.SendMessage(ctxT(t), mq.Message[[]byte]{Partition: part, Value: []byte("warm")})
		require.NoError(t, err)
	}

	release := make(chan struct{})
	var held atomic.Int32
	kf.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		if kf.CurrentNode() == slow && held.CompareAndSwap(0, 1) {
			kf.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	slowDone := make(chan error, 1)
	go func() {
		_, err := p.SendMessage(ctxT(t), mq.Message[[]byte]{Partition: leaders[slow][0], Value: []byte("slow")})
		slowDone <- err
	}()
	require.Eventually(t, func() bool { return held.Load() == 1 }, 10*time.Second, time.Millisecond)

	const sends = 200
	for i := 0; i < sends; i++ {
		_, err := p.SendMessage(ctxT(t), mq.Message[[]byte]{Partition: healthy[i%len(healthy)], Value: []byte(fmt.Sprint(i))})
		require.NoError(t, err)
	}
	select {
	case err := <-slowDone:
		t.Fatalf("the held send ended before its broker answered: %v", err)
	default:
	}
	close(release)
	require.NoError(t, <-slowDone)
	t.Logf("%d sends to brokers other than %d completed while it held a produce response", sends, slow)
}

// Close against a partition that keeps failing with a retriable error keeps
// the retry backoff: no more requests than the close took backoffs.
func TestProducerCloseKeepsRetryBackoff(t *testing.T) {
	c, kf := threeBrokers(t)
	topic := c.NewTopic(t, 1)
	const backoff = 50 * time.Millisecond
	p, err := mq.NewProducer[[]byte](c.Addrs(), topic, mq.WithCodec[[]byte](mq.BytesCodec{}),
		mq.WithRetryBackoff(backoff), mq.WithCloseTimeout(time.Second))
	require.NoError(t, err)
	_, err = p.Send(ctxT(t), nil, []byte("warm"))
	require.NoError(t, err)

	failing := kf.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.NotEnoughReplicas, Count: -1})
	defer failing.Remove()
	var report atomic.Value
	require.NoError(t, p.SendAsync(ctxT(t), mq.Message[[]byte]{Value: []byte("never")}, func(_ mq.Message[[]byte], err error) {
		report.Store(err)
	}))
	require.Eventually(t, func() bool { return failing.Hits() >= 2 }, 10*time.Second, time.Millisecond)

	before := failing.Hits()
	start := time.Now()
	err = p.Close()
	took := time.Since(start)
	sent := failing.Hits() - before
	require.ErrorIs(t, err, mq.ErrUndelivered)
	require.ErrorIs(t, report.Load().(error), mq.ErrClosed)
	limit := int(took/backoff) + 1
	t.Logf("Close took %v and sent %d produce requests (backoff %v doubling, limit %d)", took, sent, backoff, limit)
	assert.LessOrEqual(t, sent, limit)
}
