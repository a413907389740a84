package produce

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/mqkit/mq/internal/wire/wiretest"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func kafkaMessage(r *Record) kafka.Message { return kafka.Message{Topic: r.Topic, Key: r.Key} }

// requireInOrder checks that the partition's log holds exactly the records
// of recs that went to it, once each, in produce order.
func requireInOrder(t *testing.T, f *fakeCluster, topic string, partition int32, recs []*Record) {
	t.Helper()
	var want []string
	for _, r := range recs {
		if r.Partition == partition {
			want = append(want, string(r.Key))
		}
	}
	var got []string
	for _, fr := range f.log(topic, partition) {
		got = append(got, string(fr.key))
	}
	require.Equal(t, want, got, "log of %s[%d]: every record once, in produce order", topic, partition)
}

// Keyed records reach the partition murmur2 picks, on whichever broker
// leads it, each partition's records in the order produced, with the
// offsets reported matching the log.
func TestDeliversToEveryLeaderInOrder(t *testing.T) {
	f := newFakeCluster(t, 3)
	f.CreateTopic("orders", 6)
	o := newOutcomes()
	e := newEngine(t, f, o, nil)
	recs := produceN(t, e, "orders", "k", 300, false)
	o.wait(t, recs)

	next := map[int32]int64{}
	for _, r := range recs {
		_, err := o.reported(r)
		require.NoError(t, err)
		want := javaPartitioner.Balance(kafkaMessage(r), 0, 1, 2, 3, 4, 5)
		require.EqualValues(t, want, r.Partition, "record %s", r.Key)
		require.Equal(t, next[r.Partition], r.Offset, "record %s: offsets in produce order", r.Key)
		next[r.Partition]++
	}
	for p := int32(0); p < 6; p++ {
		requireInOrder(t, f, "orders", p, recs)
	}
	for b := int32(0); b < 3; b++ {
		assert.Positive(t, f.Count(b, protocol.Produce), "broker %d got produce requests", b)
	}
	assert.Equal(t, 1, f.Count(-1, protocol.InitProducerId), "one producer ID")
}

// A broker that does not answer holds up only the partitions it leads:
// records for the other brokers are delivered meanwhile.
func TestSlowBrokerDelaysOnlyItsPartitions(t *testing.T) {
	f := newFakeCluster(t, 3)
	f.CreateTopic("t", 3) // partition p led by broker p
	gate := make(chan struct{})
	f.setRespond(func(r *wiretest.Request, res wiretest.Response) wiretest.Response {
		if r.Broker == 0 {
			return res.Until(gate)
		}
		return res
	})
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) { c.ManualPartitions = true })

	slow := &Record{Topic: "t", Partition: 0, Value: []byte("slow")}
	require.NoError(t, e.Produce(context.Background(), slow, true))
	require.Eventually(t, func() bool { return f.Count(0, protocol.Produce) == 1 }, 10*time.Second, time.Millisecond)
	var fast []*Record
	for i := 0; i < 50; i++ {
		for _, p := range []int32{1, 2} {
			r := &Record{Topic: "t", Partition: p, Value: []byte(fmt.Sprint(i))}
			require.NoError(t, e.Produce(context.Background(), r, true))
			fast = append(fast, r)
		}
	}
	o.wait(t, fast)
	ok, _ := o.reported(slow)
	assert.False(t, ok, "the slow broker's record is still waiting: the others did not wait for it")
	close(gate)
	o.wait(t, []*Record{slow})
	_, err := o.reported(slow)
	require.NoError(t, err)
}

// A leader move is followed: the old leader answers NOT_LEADER, the engine
// refreshes metadata and delivers to the new leader, in order, without
// failing anything.
func TestFollowsLeaderMoves(t *testing.T) {
	f := newFakeCluster(t, 3)
	f.CreateTopic("t", 3)
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) { c.ManualPartitions = true })

	var recs []*Record
	for round := 0; round < 20; round++ {
		var batch []*Record
		for i := 0; i < 10; i++ {
			r := &Record{Topic: "t", Partition: 0, Key: []byte(fmt.Sprintf("r%d-%d", round, i))}
			require.NoError(t, e.Produce(context.Background(), r, true))
			batch = append(batch, r)
		}
		f.SetLeader("t", 0, int32((round+1)%3)) // while the round may be in flight
		o.wait(t, batch)
		recs = append(recs, batch...)
	}
	o.wait(t, recs)
	for _, r := range recs {
		_, err := o.reported(r)
		require.NoError(t, err)
	}
	requireInOrder(t, f, "t", 0, recs)
	brokers := 0
	for b := int32(0); b < 3; b++ {
		if f.Count(b, protocol.Produce) > 0 {
			brokers++
		}
	}
	assert.Greater(t, brokers, 1, "records went to more than one leader")
}

// A partition without a leader keeps its records until a leader exists:
// they are delivered, not failed.
func TestLeaderlessPartitionWaitsForLeader(t *testing.T) {
	f := newFakeCluster(t, 3)
	f.CreateTopic("t", 3)
	f.SetLeaderless("t", 1)
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) { c.ManualPartitions = true })

	r := &Record{Topic: "t", Partition: 1, Value: []byte("x")}
	require.NoError(t, e.Produce(context.Background(), r, true))
	before := f.Count(-1, protocol.Metadata)
	require.Eventually(t, func() bool { return f.Count(-1, protocol.Metadata) >= before+3 }, 10*time.Second, time.Millisecond,
		"the engine keeps asking for the partition's leader")
	ok, _ := o.reported(r)
	require.False(t, ok, "not failed while leaderless")
	f.SetLeader("t", 1, 2)
	o.wait(t, []*Record{r})
	_, err := o.reported(r)
	require.NoError(t, err)
	assert.Equal(t, 1, f.Count(2, protocol.Produce))
}

// A retriable error on one partition is retried after a backoff; the other
// partitions of the same broker and request are delivered meanwhile.
func TestRetriableErrorPerPartition(t *testing.T) {
	f := newFakeCluster(t, 1)
	f.CreateTopic("t", 2)
	var rejected atomic.Int32
	f.setBefore(func(_ *wiretest.Request, tp partitionKey, _ *fakeBatch) (int16, bool) {
		if tp.partition == 1 && rejected.Load() < 3 {
			rejected.Add(1)
			return int16(kafka.NotEnoughReplicas), true
		}
		return 0, false
	})
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) { c.ManualPartitions = true })
	var recs []*Record
	for i := 0; i < 20; i++ {
		for p := int32(0); p < 2; p++ {
			r := &Record{Topic: "t", Partition: p, Key: []byte(fmt.Sprintf("%d-%d", p, i))}
			require.NoError(t, e.Produce(context.Background(), r, true))
			recs = append(recs, r)
		}
	}
	o.wait(t, recs)
	for _, r := range recs {
		_, err := o.reported(r)
		require.NoError(t, err)
	}
	assert.EqualValues(t, 3, rejected.Load())
	requireInOrder(t, f, "t", 0, recs)
	requireInOrder(t, f, "t", 1, recs)
}

// A permanent error fails only the partition's records, with the broker's
// error code visible to errors.Is.
func TestPermanentErrorFailsOnlyItsPartition(t *testing.T) {
	f := newFakeCluster(t, 1)
	f.CreateTopic("t", 2)
	f.setBefore(func(_ *wiretest.Request, tp partitionKey, _ *fakeBatch) (int16, bool) {
		if tp.partition == 1 {
			return int16(kafka.TopicAuthorizationFailed), true
		}
		return 0, false
	})
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) { c.ManualPartitions = true })
	good := &Record{Topic: "t", Partition: 0, Value: []byte("a")}
	bad := &Record{Topic: "t", Partition: 1, Value: []byte("b")}
	require.NoError(t, e.Produce(context.Background(), good, true))
	require.NoError(t, e.Produce(context.Background(), bad, true))
	o.wait(t, []*Record{good, bad})
	_, err := o.reported(good)
	require.NoError(t, err)
	_, err = o.reported(bad)
	require.ErrorIs(t, err, kafka.TopicAuthorizationFailed)
	assert.Contains(t, err.Error(), "t[1]")
}

// Responses lost after the broker appended (the connection drops before
// the answer) are retried with the same sequence numbers: the broker
// deduplicates, so every record is written once and in order.
func TestLostResponsesWriteNothingTwice(t *testing.T) {
	f := newFakeCluster(t, 2)
	f.CreateTopic("t", 4)
	var drops atomic.Int32
	f.setRespond(func(r *wiretest.Request, res wiretest.Response) wiretest.Response {
		if drops.Add(1)%3 == 0 { // every third produce response is lost
			return wiretest.Drop()
		}
		return res
	})
	o := newOutcomes()
	e := newEngine(t, f, o, nil)
	var recs []*Record
	var wg sync.WaitGroup
	var mu sync.Mutex
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ { // one at a time: many requests
				r := &Record{Topic: "t", Key: []byte(fmt.Sprintf("g%d-%d", g, i))}
				mu.Lock()
				err := e.Produce(context.Background(), r, true) // under mu: recs in produce order
				recs = append(recs, r)
				mu.Unlock()
				if !assert.NoError(t, err) {
					return
				}
				o.wait(t, []*Record{r})
			}
		}()
	}
	wg.Wait()
	o.wait(t, recs)
	for _, r := range recs {
		_, err := o.reported(r)
		require.NoError(t, err, "record %s", r.Key)
	}
	for p := int32(0); p < 4; p++ {
		requireInOrder(t, f, "t", p, recs)
	}
	assert.Greater(t, drops.Load(), int32(10), "responses were lost")
}

// Without idempotence, the same lost responses write duplicates: the check
// above is not vacuous.
func TestLostResponsesDuplicateWithoutIdempotence(t *testing.T) {
	f := newFakeCluster(t, 1)
	f.CreateTopic("t", 1)
	var drops atomic.Int32
	f.setRespond(func(r *wiretest.Request, res wiretest.Response) wiretest.Response {
		if drops.Add(1) == 1 {
			return wiretest.Drop()
		}
		return res
	})
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) { c.Idempotent = false })
	r := &Record{Topic: "t", Key: []byte("once")}
	require.NoError(t, e.Produce(context.Background(), r, true))
	o.wait(t, []*Record{r})
	_, err := o.reported(r)
	require.NoError(t, err)
	assert.Len(t, f.log("t", 0), 2, "written twice")
	assert.Zero(t, f.Count(-1, protocol.InitProducerId))
}

// When the broker forgets the producer (UNKNOWN_PRODUCER_ID for the batch
// it should expect next), the partition's chain restarts under a fresh
// producer ID at sequence 0 and nothing is lost, duplicated or reordered.
func TestUnknownProducerRestartsChain(t *testing.T) {
	f := newFakeCluster(t, 1)
	f.CreateTopic("t", 1)
	var forgot atomic.Bool
	var firstPID atomic.Int64
	f.setBefore(func(_ *wiretest.Request, _ partitionKey, b *fakeBatch) (int16, bool) {
		firstPID.CompareAndSwap(0, b.producerID)
		if b.seq > 0 && b.producerID == firstPID.Load() && forgot.CompareAndSwap(false, true) {
			return int16(kafka.UnknownProducerId), true
		}
		return 0, false
	})
	o := newOutcomes()
	e := newEngine(t, f, o, nil)
	var recs []*Record
	for i := 0; i < 30; i++ { // one batch at a time: sequences 0, 1, 2, ...
		r := &Record{Topic: "t", Key: []byte(fmt.Sprint(i))}
		require.NoError(t, e.Produce(context.Background(), r, true))
		recs = append(recs, r)
		o.wait(t, []*Record{r})
	}
	for _, r := range recs {
		_, err := o.reported(r)
		require.NoError(t, err)
	}
	requireInOrder(t, f, "t", 0, recs)
	require.True(t, forgot.Load())
	assert.Equal(t, 2, f.Count(-1, protocol.InitProducerId), "a fresh producer ID for the new chain")
	log := f.log("t", 0)
	assert.NotEqual(t, log[0].producerID, log[len(log)-1].producerID)
	assert.Zero(t, seqOfFirstWith(log, log[len(log)-1].producerID), "the new chain starts at sequence 0")
}

func seqOfFirstWith(log []fakeRecord, pid int64) int32 {
	for _, r := range log {
		if r.producerID == pid {
			return r.seq
		}
	}
	return -1
}

// A batch rejected as too large is split: its records are sent one by one,
// only the oversize one fails (with ErrMessageTooLarge and the broker's
// code), the others arrive in order, and the sequence chain stays valid.
func TestMessageTooLargeSplitsTheBatch(t *testing.T) {
	for _, idem := range []bool{true, false} {
		t.Run(fmt.Sprint("idempotent=", idem), func(t *testing.T) {
			f := newFakeCluster(t, 1)
			f.CreateTopic("t", 1)
			f.setBefore(func(_ *wiretest.Request, _ partitionKey, b *fakeBatch) (int16, bool) {
				for _, r := range b.recs {
					if string(r.key) == "big" {
						return int16(kafka.MessageSizeTooLarge), true
					}
				}
				return 0, false
			})
			o := newOutcomes()
			e := newEngine(t, f, o, func(c *Config) { c.Idempotent = idem; c.Acks = -1 })
			var recs []*Record
			for _, k := range []string{"a", "b", "big", "c", "d"} {
				r := &Record{Topic: "t", Key: []byte(k)}
				require.NoError(t, e.Produce(context.Background(), r, false))
				recs = append(recs, r)
			}
			require.NoError(t, e.Flush(context.Background()))
			var delivered []*Record
			for _, r := range recs {
				ok, err := o.reported(r)
				require.True(t, ok)
				if string(r.Key) == "big" {
					require.ErrorIs(t, err, ErrMessageTooLarge)
					require.ErrorIs(t, err, kafka.MessageSizeTooLarge)
					continue
				}
				require.NoError(t, err, "record %s", r.Key)
				delivered = append(delivered, r)
			}
			requireInOrder(t, f, "t", 0, delivered)
			// The producer keeps working on the same chain or a new one.
			more := produceN(t, e, "t", "more", 3, true)
			o.wait(t, more)
			requireInOrder(t, f, "t", 0, append(delivered, more...))
		})
	}
}

// Close keeps a failing partition's retry backoff: the requests it sends
// while closing are bounded by the time it took divided by the backoff.
func TestCloseHonoursRetryBackoff(t *testing.T) {
	f := newFakeCluster(t, 1)
	f.CreateTopic("t", 1)
	f.setBefore(func(*wiretest.Request, partitionKey, *fakeBatch) (int16, bool) {
		return int16(kafka.NotEnoughReplicas), true // retriable, forever
	})
	o := newOutcomes()
	const backoff = 50 * time.Millisecond
	e := newEngine(t, f, o, func(c *Config) { c.RetryBackoff, c.MaxRetryBackoff = backoff, backoff })
	r := &Record{Topic: "t", Value: []byte("x")}
	require.NoError(t, e.Produce(context.Background(), r, true))
	require.Eventually(t, func() bool { return f.Count(0, protocol.Produce) >= 2 }, 10*time.Second, time.Millisecond)

	before := f.Count(0, protocol.Produce)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, e.Close(ctx), context.DeadlineExceeded)
	took := time.Since(start)
	sent := f.Count(0, protocol.Produce) - before
	_, err := o.reported(r)
	require.ErrorIs(t, err, ErrClosed)
	limit := int(took/backoff) + 1
	t.Logf("%d requests during a close of %v with a %v backoff (limit %d)", sent, took, backoff, limit)
	assert.LessOrEqual(t, sent, limit, "requests while closing")
	assert.Positive(t, sent, "the partition was still retried while closing")
}

// Flush waits for the records buffered before it was called, not for those
// produced after.
func TestFlushWaitsOnlyForEarlierRecords(t *testing.T) {
	f := newFakeCluster(t, 2)
	f.CreateTopic("t", 2) // partition p on broker p
	gate := make(chan struct{})
	f.setRespond(func(r *wiretest.Request, res wiretest.Response) wiretest.Response {
		if r.Broker == 1 {
			return res.Until(gate)
		}
		return res
	})
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) { c.ManualPartitions = true; c.Linger = time.Hour })
	early := produceTo(t, e, "t", 0, 10)
	late := make(chan error, 1)
	go func() { late <- e.Flush(context.Background()) }()
	require.Eventually(t, func() bool { // Flush has taken its generation
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.gen > 0
	}, 10*time.Second, time.Millisecond)
	stuck := produceTo(t, e, "t", 1, 1) // after Flush started, held by broker 1
	require.NoError(t, <-late)
	for _, r := range early {
		ok, err := o.reported(r)
		require.True(t, ok)
		require.NoError(t, err)
	}
	ok, _ := o.reported(stuck[0])
	assert.False(t, ok, "a record produced after Flush started is not waited for")
	close(gate)
	require.NoError(t, e.Flush(context.Background()))
}

func produceTo(t *testing.T, e *Engine, topic string, partition int32, n int) []*Record {
	t.Helper()
	recs := make([]*Record, n)
	for i := range recs {
		recs[i] = &Record{Topic: topic, Partition: partition, Key: []byte(fmt.Sprintf("%d-%d", partition, i))}
		require.NoError(t, e.Produce(context.Background(), recs[i], false))
	}
	return recs
}

// A topic the cluster does not know fails its records with
// UNKNOWN_TOPIC_OR_PARTITION once metadata has said so for a moment, well
// before the delivery timeout; Produce itself returns at once.
func TestMissingTopicFails(t *testing.T) {
	f := newFakeCluster(t, 1)
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) { c.DeliveryTimeout = time.Hour })
	r := &Record{Topic: "nope", Value: []byte("x")}
	require.NoError(t, e.Produce(context.Background(), r, true))
	o.wait(t, []*Record{r})
	_, err := o.reported(r)
	require.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
	assert.Contains(t, err.Error(), `"nope" does not exist`)
	assert.NotContains(t, err.Error(), "delivery timeout")
	assert.GreaterOrEqual(t, f.Count(-1, protocol.Metadata), 2, "confirmed by a second answer")
	assert.Zero(t, f.Count(-1, protocol.Produce))

	// A topic created meanwhile is used at once.
	f.CreateTopic("nope", 1)
	r2 := &Record{Topic: "nope", Value: []byte("y")}
	require.NoError(t, e.Produce(context.Background(), r2, true))
	o.wait(t, []*Record{r2})
	_, err = o.reported(r2)
	require.NoError(t, err)
}

// A cluster nobody listens on fails records at the delivery timeout, with
// the connection error as the last error; Produce returns at once.
func TestUnreachableClusterFailsAtDeliveryTimeout(t *testing.T) {
	f := newFakeCluster(t, 1)
	f.Stop(0)
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) { c.DeliveryTimeout = 300 * time.Millisecond })
	r := &Record{Topic: "t", Value: []byte("x")}
	require.NoError(t, e.Produce(context.Background(), r, true))
	o.wait(t, []*Record{r})
	_, err := o.reported(r)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "delivery timeout after 300ms")
	assert.Contains(t, err.Error(), "connection refused")
}

// A record in flight on a broker that never answers fails at its delivery
// timeout, saying it may have been written.
func TestInFlightRecordExpiresAtDeliveryTimeout(t *testing.T) {
	f := newFakeCluster(t, 1)
	f.CreateTopic("t", 1)
	gate := make(chan struct{})
	defer close(gate)
	f.setRespond(func(_ *wiretest.Request, res wiretest.Response) wiretest.Response { return res.Until(gate) })
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) { c.DeliveryTimeout = 300 * time.Millisecond })
	r := &Record{Topic: "t", Value: []byte("x")}
	require.NoError(t, e.Produce(context.Background(), r, true))
	o.wait(t, []*Record{r})
	_, err := o.reported(r)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "delivery timeout")
	assert.Contains(t, err.Error(), "may have been written")
}

// A cluster that refuses a producer ID fails the records with an error that
// says how to go on, keeping the broker's code visible.
func TestProducerIDRefused(t *testing.T) {
	f := newFakeCluster(t, 1)
	f.CreateTopic("t", 1)
	f.setInitPID(func(*wiretest.Request) int16 { return int16(kafka.ClusterAuthorizationFailed) })
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) { c.DeliveryTimeout = time.Hour })
	r := &Record{Topic: "t", Value: []byte("x")}
	require.NoError(t, e.Produce(context.Background(), r, true))
	o.wait(t, []*Record{r})
	_, err := o.reported(r)
	require.ErrorIs(t, err, kafka.ClusterAuthorizationFailed)
	assert.Contains(t, err.Error(), "WithIdempotence(false)")
	assert.Zero(t, f.Count(-1, protocol.Produce))

	f.setInitPID(nil) // granted later: the next record gets an ID
	r2 := &Record{Topic: "t", Value: []byte("y")}
	require.NoError(t, e.Produce(context.Background(), r2, true))
	o.wait(t, []*Record{r2})
	_, err = o.reported(r2)
	require.NoError(t, err)
}

// Requests stay within MaxRequestBytes, measured on the wire: many busy
// partitions on one broker go out in several requests, each as full as
// the limit allows once the compression ratio is known.
func TestRequestsBoundedByMaxRequestBytes(t *testing.T) {
	for _, codec := range []Compression{CompressionNone, CompressionSnappy} {
		t.Run(fmt.Sprint("codec-", codec), func(t *testing.T) {
			f := newFakeCluster(t, 1)
			f.CreateTopic("t", 20)
			const maxReq = 64 << 10
			var mu sync.Mutex
			var sizes []int
			f.setRespond(func(r *wiretest.Request, res wiretest.Response) wiretest.Response {
				mu.Lock()
				sizes = append(sizes, r.Size)
				mu.Unlock()
				return res
			})
			o := newOutcomes()
			e := newEngine(t, f, o, func(c *Config) {
				c.ManualPartitions, c.MaxRequestBytes, c.Linger, c.Compression = true, maxReq, time.Hour, codec
			})
			var recs []*Record
			for p := int32(0); p < 20; p++ {
				for i := 0; i < 10; i++ { // ~10.7 KB per partition, 214 KB in all before compression
					r := &Record{Topic: "t", Partition: p, Value: []byte(fmt.Sprintf("%01000d", i*int(p)))}
					require.NoError(t, e.Produce(context.Background(), r, false))
					recs = append(recs, r)
				}
			}
			require.NoError(t, e.Flush(context.Background()))
			for _, r := range recs {
				_, err := o.reported(r)
				require.NoError(t, err)
			}
			for p := int32(0); p < 20; p++ {
				requireInOrder(t, f, "t", p, recs)
			}
			mu.Lock()
			defer mu.Unlock()
			t.Logf("request sizes: %v", sizes)
			for _, n := range sizes {
				assert.LessOrEqual(t, n, maxReq, "request sizes: %v", sizes)
			}
			if codec == CompressionNone {
				assert.GreaterOrEqual(t, len(sizes), 4, "several requests: %v", sizes)
			} else {
				assert.Less(t, len(sizes), 4, "compressed batches fill fewer requests: %v", sizes)
			}
		})
	}
}

// Nil-key records stick to one partition until its batch leaves, then move
// to the next (KIP-794): consecutive batches go to different partitions and
// each batch holds records of one partition only.
func TestNilKeysStickPerBatch(t *testing.T) {
	f := newFakeCluster(t, 1)
	f.CreateTopic("t", 3)
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) { c.Linger = time.Hour })
	var parts []int32
	for round := 0; round < 6; round++ {
		var recs []*Record
		for i := 0; i < 5; i++ {
			r := &Record{Topic: "t", Value: []byte(fmt.Sprint(round, i))}
			require.NoError(t, e.Produce(context.Background(), r, false))
			recs = append(recs, r)
		}
		require.NoError(t, e.Flush(context.Background()))
		for _, r := range recs {
			require.Equal(t, recs[0].Partition, r.Partition, "one batch, one partition")
		}
		parts = append(parts, recs[0].Partition)
	}
	assert.Equal(t, []int32{0, 1, 2, 0, 1, 2}, parts)
}

// A burst of nil-key records buffered faster than batches leave (while
// metadata is fetched, or behind requests in flight) moves on once a
// batch's worth went to the sticky partition, by records or by bytes, as
// the Java client does: before, the sticky partition moved only when a
// batch left, and a cold producer's first 10,000 records all went to
// partition 0.
func TestNilKeysMoveOnAfterAFullBatch(t *testing.T) {
	for _, tc := range []struct {
		name       string
		records    int // BatchRecords
		bytes      int // BatchBytes
		value      int // value size
		perPartRun int
	}{
		{"by records", 50, 1 << 20, 10, 50},
		{"by bytes", 1000, 10 * (100 + recordOverhead), 100, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Engine{cfg: Config{BatchRecords: tc.records, BatchBytes: tc.bytes}}
			tp := &topic{name: "t", sticky: -1}
			for i := range 3 {
				tp.parts = append(tp.parts, &partition{t: tp, id: int32(i)})
				tp.ids = append(tp.ids, i)
			}
			var got []int
			for range 6 * tc.perPartRun {
				r := &Record{Topic: "t", Value: make([]byte, tc.value)}
				r.size = r.Size()
				got = append(got, e.choose(tp, r))
			}
			for i, p := range got {
				require.Equal(t, (i/tc.perPartRun)%3, p, "record %d", i)
			}
		})
	}
}

// With idempotence a broker has several requests in flight on one
// connection: a partition's next full batches do not wait for the previous
// response once one succeeded, up to MaxInFlight.
func TestPipelinesUpToMaxInFlight(t *testing.T) {
	f := newFakeCluster(t, 1)
	f.CreateTopic("t", 1)
	gate := make(chan struct{})
	var holding atomic.Bool
	f.setRespond(func(_ *wiretest.Request, res wiretest.Response) wiretest.Response {
		if holding.Load() {
			return res.Until(gate)
		}
		return res
	})
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) { c.BatchRecords = 1 }) // every record is a full batch
	first := produceN(t, e, "t", "first", 1, true)
	o.wait(t, first) // a success: the partition may pipeline
	holding.Store(true)
	before := f.Count(0, protocol.Produce)
	var recs []*Record
	for i := 0; i < DefaultMaxInFlight+2; i++ {
		r := &Record{Topic: "t", Key: []byte(fmt.Sprint(i))}
		require.NoError(t, e.Produce(context.Background(), r, true))
		recs = append(recs, r)
		if i < DefaultMaxInFlight {
			require.Eventually(t, func() bool { return f.Count(0, protocol.Produce)-before == i+1 }, 10*time.Second, time.Millisecond,
				"request %d written while the earlier ones wait for their responses", i+1)
		}
	}
	e.mu.Lock()
	p := e.topics["t"].parts[0]
	inflight, queued := p.inflight, len(p.queue)
	e.mu.Unlock()
	assert.Equal(t, DefaultMaxInFlight, inflight, "batches in flight")
	assert.Equal(t, 2, queued, "the records beyond the limit wait")
	assert.Equal(t, 1, o.count(), "nothing answered yet")
	close(gate)
	o.wait(t, recs)
	requireInOrder(t, f, "t", 0, append(first, recs...))
	assert.Equal(t, 2, f.Accepted(0), "one produce connection and one control connection")
}

// behindHeldRequest returns an engine (manual partitions, and mod) on one
// broker with topic "t" of 3 partitions whose produce responses wait until
// gate is closed, once the request of a first record to partition 0 is in
// flight.
func behindHeldRequest(t *testing.T, mod func(*Config)) (f *fakeCluster, o *outcomes, e *Engine, gate chan struct{}, first *Record) {
	t.Helper()
	f = newFakeCluster(t, 1)
	f.CreateTopic("t", 3)
	gate = make(chan struct{})
	f.setRespond(func(_ *wiretest.Request, res wiretest.Response) wiretest.Response { return res.Until(gate) })
	o = newOutcomes()
	e = newEngine(t, f, o, func(c *Config) {
		c.ManualPartitions = true
		if mod != nil {
			mod(c)
		}
	})
	first = &Record{Topic: "t", Partition: 0, Key: []byte("first")}
	require.NoError(t, e.Produce(context.Background(), first, true))
	require.Eventually(t, func() bool { return f.Count(0, protocol.Produce) == 1 }, 10*time.Second, time.Millisecond)
	return f, o, e, gate, first
}

// Behind a request in flight, records that do not fill a batch wait for it
// and leave together in the next request, whatever their partition,
// instead of one small request each.
func TestGathersBehindRequestInFlight(t *testing.T) {
	f, o, e, gate, first := behindHeldRequest(t, nil)
	var later []*Record
	for i := 0; i < 30; i++ {
		r := &Record{Topic: "t", Partition: int32(i % 3), Key: []byte(fmt.Sprint("later-", i))}
		require.NoError(t, e.Produce(context.Background(), r, true))
		later = append(later, r)
	}
	close(gate)
	all := append([]*Record{first}, later...)
	o.wait(t, all)
	for p := int32(0); p < 3; p++ {
		requireInOrder(t, f, "t", p, all)
	}
	assert.Equal(t, 2, f.Count(0, protocol.Produce), "the first record's request, then one with the 30 that waited")
}

// While a request is in flight, the records behind it leave in a second
// request once a full request's worth waits. No response comes while the
// first is held, so the record that completes the second must wake the
// sink itself.
func TestPipelinesOnceAFullRequestWaits(t *testing.T) {
	f, o, e, gate, first := behindHeldRequest(t, func(c *Config) { c.MaxRequestBytes = 64 << 10 })
	all := []*Record{first}
	value := make([]byte, 1000)
	for i := 0; i < 100; i++ { // ~107 KB estimated, uncompressed: more than one request
		r := &Record{Topic: "t", Partition: int32(i % 3), Key: []byte(fmt.Sprint("later-", i)), Value: value}
		require.NoError(t, e.Produce(context.Background(), r, false))
		all = append(all, r)
	}
	require.Eventually(t, func() bool { return f.Count(0, protocol.Produce) == 2 }, 10*time.Second, time.Millisecond,
		"a full request's worth left behind the one in flight")
	close(gate)
	o.wait(t, all)
	for p := int32(0); p < 3; p++ {
		requireInOrder(t, f, "t", p, all)
	}
}

// A batch that expires in flight and turns out not written leaves a gap:
// the next batch's OUT_OF_ORDER_SEQUENCE_NUMBER breaks the chain, which
// restarts under a fresh producer ID, and nothing after the gap is lost.
func TestExpiredBatchGapRestartsChain(t *testing.T) {
	f := newFakeCluster(t, 1)
	f.CreateTopic("t", 1)
	gate := make(chan struct{})
	var mu sync.Mutex
	held := map[[2]int]bool{} // (connection, correlation id) of the requests answered late
	f.setBefore(func(r *wiretest.Request, _ partitionKey, b *fakeBatch) (int16, bool) {
		if string(b.recs[0].key) == "lost" {
			mu.Lock()
			held[[2]int{r.Conn, int(r.CorrelationID)}] = true
			mu.Unlock()
			return int16(kafka.NotEnoughReplicas), true // not written
		}
		return 0, false
	})
	f.setRespond(func(r *wiretest.Request, res wiretest.Response) wiretest.Response {
		mu.Lock()
		defer mu.Unlock()
		if held[[2]int{r.Conn, int(r.CorrelationID)}] {
			return res.Until(gate) // answered only after the record expired
		}
		return res
	})
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) { c.DeliveryTimeout = 500 * time.Millisecond })
	first := &Record{Topic: "t", Key: []byte("first")}
	require.NoError(t, e.Produce(context.Background(), first, true))
	o.wait(t, []*Record{first})
	lost := &Record{Topic: "t", Key: []byte("lost")}
	require.NoError(t, e.Produce(context.Background(), lost, true))
	o.wait(t, []*Record{lost})
	_, err := o.reported(lost)
	require.ErrorContains(t, err, "may have been written")
	after := &Record{Topic: "t", Key: []byte("after")}
	require.NoError(t, e.Produce(context.Background(), after, true))
	close(gate)
	o.wait(t, []*Record{after})
	_, err = o.reported(after)
	require.NoError(t, err)
	requireInOrder(t, f, "t", 0, []*Record{first, after})
	assert.Equal(t, 2, f.Count(-1, protocol.InitProducerId), "the chain restarted under a fresh producer ID")
}

// A leader that appends a batch and loses the partition before the batch
// is replicated answers NOT_LEADER_OR_FOLLOWER, KAFKA_STORAGE_ERROR or
// UNKNOWN_TOPIC_OR_PARTITION (acks=all): the batch may be in the log. If it
// then expires, its sequence numbers must not be reused: a later batch
// under the same sequence would be taken for its duplicate and
// acknowledged without being written (a loss the chaos suite's broker
// restart found).
func TestErrorAfterAppendNeverGivesSequenceBack(t *testing.T) {
	for _, code := range []kafka.Error{kafka.NotLeaderForPartition, kafka.KafkaStorageError, kafka.UnknownTopicOrPartition} {
		t.Run(code.Title(), func(t *testing.T) {
			f := newFakeCluster(t, 1)
			f.CreateTopic("t", 1)
			f.setAfter(func(_ *wiretest.Request, _ partitionKey, b *fakeBatch) int16 {
				if string(b.recs[0].key) == "appended" {
					return int16(code)
				}
				return 0
			})
			o := newOutcomes()
			e := newEngine(t, f, o, func(c *Config) {
				c.DeliveryTimeout = 300 * time.Millisecond
				c.RetryBackoff, c.MaxRetryBackoff = time.Second, time.Second // it expires before any retry
			})
			appended := &Record{Topic: "t", Key: []byte("appended")}
			require.NoError(t, e.Produce(context.Background(), appended, true))
			o.wait(t, []*Record{appended})
			_, err := o.reported(appended)
			require.ErrorContains(t, err, "may have been written")
			require.Eventually(t, func() bool { // the partition's backoff is over: the next record leaves at once
				e.mu.Lock()
				defer e.mu.Unlock()
				return time.Now().After(e.topics["t"].parts[0].retryAt)
			}, 5*time.Second, 10*time.Millisecond)

			after := &Record{Topic: "t", Key: []byte("after")}
			require.NoError(t, e.Produce(context.Background(), after, true))
			o.wait(t, []*Record{after})
			_, err = o.reported(after)
			require.NoError(t, err)
			var keys []string
			for _, r := range f.log("t", 0) {
				keys = append(keys, string(r.key))
			}
			require.Equal(t, []string{"appended", "after"}, keys, "an acknowledged record must be in the log")
			assert.EqualValues(t, 1, after.Offset)
		})
	}
}

// Close gives up on a batch in flight at its timeout: the record fails with
// ErrClosed, saying it may have been written.
func TestCloseFailsInFlightRecords(t *testing.T) {
	f := newFakeCluster(t, 1)
	f.CreateTopic("t", 1)
	gate := make(chan struct{})
	defer close(gate)
	f.setRespond(func(_ *wiretest.Request, res wiretest.Response) wiretest.Response { return res.Until(gate) })
	o := newOutcomes()
	e := newEngine(t, f, o, nil)
	r := &Record{Topic: "t", Value: []byte("x")}
	require.NoError(t, e.Produce(context.Background(), r, true))
	require.Eventually(t, func() bool { return f.Count(0, protocol.Produce) == 1 }, 10*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, e.Close(ctx), context.DeadlineExceeded)
	ok, err := o.reported(r)
	require.True(t, ok, "reported by the time Close returned")
	require.ErrorIs(t, err, ErrClosed)
	assert.Contains(t, err.Error(), "may have been written")
	require.ErrorIs(t, e.Produce(context.Background(), &Record{Topic: "t"}, true), ErrClosed)
}

// With acks 0 nothing waits for a response: records are reported once
// written, with unknown offsets, and no producer ID is asked for.
func TestAcksNone(t *testing.T) {
	f := newFakeCluster(t, 1)
	f.CreateTopic("t", 2)
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) { c.Acks, c.Idempotent = 0, false })
	recs := produceN(t, e, "t", "k", 20, true)
	o.wait(t, recs)
	for _, r := range recs {
		_, err := o.reported(r)
		require.NoError(t, err)
		assert.EqualValues(t, -1, r.Offset)
	}
	require.Eventually(t, func() bool { return len(f.log("t", 0))+len(f.log("t", 1)) == 20 }, 10*time.Second, time.Millisecond)
	assert.Zero(t, f.Count(-1, protocol.InitProducerId))
}

// Metadata that fails with an error no retry can fix (Config.Fatal: an
// authentication failure) fails the waiting records at once.
func TestFatalMetadataErrorFailsAtOnce(t *testing.T) {
	f := newFakeCluster(t, 1)
	f.CreateTopic("t", 1)
	f.Handle(protocol.Metadata, func(*wiretest.Request) wiretest.Response { return wiretest.Drop() })
	o := newOutcomes()
	e := newEngine(t, f, o, func(c *Config) {
		c.DeliveryTimeout = time.Hour
		c.Fatal = func(err error) bool { return errors.Is(err, wire.ErrConnClosed) }
	})
	r := &Record{Topic: "t", Value: []byte("x")}
	require.NoError(t, e.Produce(context.Background(), r, true))
	o.wait(t, []*Record{r})
	_, err := o.reported(r)
	require.ErrorIs(t, err, wire.ErrConnClosed)
	assert.Contains(t, err.Error(), `metadata for topic "t"`)
}
