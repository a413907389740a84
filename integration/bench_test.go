package integration

import (
	"context"
	"encoding/json"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
)

// Producer benchmarks, side by side with kafka-go's Writer configured as the
// original chat service did (BatchSize 100, BatchTimeout 10ms, Snappy, sync).
// Run: go test ./integration -run '^$' -bench Produce -benchtime 3s
// (KAFKA_BROKERS=host:port for a real broker).

const benchPartitions = 12

var benchBody = strings.Repeat("x", 200)

func benchTopic(b *testing.B) string {
	b.Helper()
	return cluster.NewTopic(b, benchPartitions)
}

func chatWriter(b *testing.B, topic string) *kafka.Writer {
	tr := &kafka.Transport{} // fresh metadata: the topic was just created
	w := &kafka.Writer{
		Addr:         kafka.TCP(cluster.Addrs()...),
		Topic:        topic,
		BatchSize:    100,
		BatchTimeout: 10 * time.Millisecond,
		Compression:  kafka.Snappy,
		RequiredAcks: kafka.RequireAll,
		Balancer:     kafka.Murmur2Balancer{},
		Transport:    tr,
	}
	b.Cleanup(func() {
		_ = w.Close()
		tr.CloseIdleConnections()
	})
	return w
}

func reportLatencies(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) == 0 {
		return
	}
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

// One goroutine, one message per synchronous send: latency.
func BenchmarkProduceSyncOne(b *testing.B) {
	b.Run("mq", func(b *testing.B) {
		p, err := mq.NewProducer[ChatMessage](cluster.Addrs(), benchTopic(b),
			mq.WithCompression(mq.CompressionSnappy))
		require.NoError(b, err)
		defer p.Close()
		ctx := context.Background()
		_, err = p.Send(ctx, []byte("warm"), ChatMessage{})
		require.NoError(b, err)
		lat := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			if _, err := p.Send(ctx, []byte(convID(i)), ChatMessage{ID: i, Body: benchBody}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		reportLatencies(b, lat)
	})
	b.Run("kafka-go-chat", func(b *testing.B) {
		w := chatWriter(b, benchTopic(b))
		ctx := context.Background()
		lat := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			v, _ := json.Marshal(ChatMessage{ID: i, Body: benchBody})
			if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(convID(i)), Value: v}); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		reportLatencies(b, lat)
	})
}

// 64 goroutines, each sending one message at a time synchronously: throughput.
func BenchmarkProduceSync64(b *testing.B) {
	par := 64 / runtime.GOMAXPROCS(0)
	if par < 1 {
		par = 1
	}
	run := func(b *testing.B, send func(ctx context.Context, i int) error) {
		b.SetParallelism(par)
		b.ReportAllocs()
		start := time.Now()
		b.ResetTimer()
		var next int64
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				i := int(atomicAdd(&next))
				if err := send(ctx, i); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	}
	b.Run("mq", func(b *testing.B) {
		p, err := mq.NewProducer[ChatMessage](cluster.Addrs(), benchTopic(b), mq.WithCompression(mq.CompressionSnappy))
		require.NoError(b, err)
		defer p.Close()
		run(b, func(ctx context.Context, i int) error {
			_, err := p.Send(ctx, []byte("conv-"+strconv.Itoa(i%64)), ChatMessage{ID: i, Body: benchBody})
			return err
		})
	})
	b.Run("kafka-go-chat", func(b *testing.B) {
		w := chatWriter(b, benchTopic(b))
		run(b, func(ctx context.Context, i int) error {
			v, _ := json.Marshal(ChatMessage{ID: i, Body: benchBody})
			return w.WriteMessages(ctx, kafka.Message{Key: []byte("conv-" + strconv.Itoa(i%64)), Value: v})
		})
	})
}

// Asynchronous sends from one goroutine, flushed at the end: throughput.
func BenchmarkProduceAsync(b *testing.B) {
	b.Run("mq", func(b *testing.B) {
		p, err := mq.NewProducer[ChatMessage](cluster.Addrs(), benchTopic(b),
			mq.WithAsync(true), mq.WithCompression(mq.CompressionSnappy),
			mq.WithDeliveryHandler(func(_ mq.Message[ChatMessage], err error) {
				if err != nil {
					b.Error(err)
				}
			}))
		require.NoError(b, err)
		ctx := context.Background()
		b.ReportAllocs()
		start := time.Now()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := p.Send(ctx, []byte(convID(i)), ChatMessage{ID: i, Body: benchBody}); err != nil {
				b.Fatal(err)
			}
		}
		require.NoError(b, p.Flush(ctx))
		b.StopTimer()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		require.NoError(b, p.Close())
	})
}
