package integration

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/require"
)

// Consumer throughput with a no-op handler and commits on: b.N messages are
// produced first (not timed), then consumed by one group member.
// Run: go test ./integration -run '^$' -bench Consume -benchtime 200000x
func BenchmarkConsumeNoop(b *testing.B) {
	benchConsume(b, 1, 0)
}

// Consumer throughput with a handler that waits 1 ms (I/O-like), 12
// partitions: one message at a time per partition, then 8 key lanes.
// Run: go test ./integration -run '^$' -bench ConsumeSlow -benchtime 20000x
func BenchmarkConsumeSlowHandler(b *testing.B) {
	b.Run("lanes=1", func(b *testing.B) { benchConsume(b, 1, time.Millisecond) })
	b.Run("lanes=8", func(b *testing.B) { benchConsume(b, 8, time.Millisecond) })
}

func benchConsume(b *testing.B, lanes int, wait time.Duration) {
	topic := cluster.NewTopic(b, benchPartitions)
	p, err := mq.NewProducer[ChatMessage](cluster.Addrs(), topic, mq.WithAsync(true), mq.WithCompression(mq.CompressionSnappy))
	require.NoError(b, err)
	for i := 0; i < b.N; i++ {
		_, err := p.Send(context.Background(), []byte("conv-"+strconv.Itoa(i%1000)), ChatMessage{ID: i, Body: benchBody})
		require.NoError(b, err)
	}
	require.NoError(b, p.Close())

	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, "bench-"+topic,
		mq.WithCommitInterval(time.Second), mq.WithFetchMaxWait(100*time.Millisecond), mq.WithLanes(lanes))
	require.NoError(b, err)
	done := make(chan struct{})
	var n int64
	var first sync.Once
	var start time.Time
	require.NoError(b, c.RegisterHandlerFunc(func(context.Context, mq.Message[ChatMessage]) error {
		first.Do(func() { start = time.Now() }) // the clock starts once the group is joined
		if wait > 0 {
			time.Sleep(wait)
		}
		if atomicAdd(&n) == int64(b.N) {
			close(done)
		}
		return nil
	}))
	b.ReportAllocs()
	b.ResetTimer()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatal("timeout")
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	require.NoError(b, <-errc)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
