package mqs3

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/require"
)

// BenchmarkBackup1KiB measures messages/s through a consumer of 1 KiB
// messages on 6 partitions whose only handler does nothing ("noop") or backs
// the message up to SeaweedFS (one object per message, the per-message
// form; "lanes-8" with 8 lanes per partition). Run with a fixed count, e.g.
// -benchtime=10000x; it needs KAFKA_BROKERS and MQ_S3_ENDPOINT.
func BenchmarkBackup1KiB(b *testing.B) {
	addrs := brokers(b)
	endpoint := seaweedEndpoint(b)
	for _, tc := range []struct {
		name  string
		s3    bool
		gzip  bool
		lanes int
	}{
		{name: "noop"},
		{name: "s3-per-message", s3: true},
		{name: "s3-per-message-gzip", s3: true, gzip: true},
		{name: "s3-per-message-lanes-8", s3: true, lanes: 8},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const partitions = 6
			a := newAdmin(b, addrs)
			topic := uniqueName("bench")
			a.createTopic(topic, partitions)
			produce(b, addrs, topic, testMessages(b.N, 1024))

			var handled atomic.Int64
			var h mq.Handler[[]byte] = mq.HandlerFunc[[]byte](func(context.Context, mq.Message[[]byte]) error { return nil })
			if tc.s3 {
				c := testClient(b, endpoint)
				bk, err := New(c, newBucket(b, c), WithGzip(tc.gzip))
				require.NoError(b, err)
				h = Handler[[]byte](bk)
			}
			opts := []mq.ConsumerOption{mq.WithCodec[[]byte](mq.BytesCodec{})}
			if tc.lanes > 0 {
				opts = append(opts, mq.WithLanes(tc.lanes))
			}
			cons, err := mq.NewKafkaConsumer[[]byte](addrs, topic, uniqueName("bench"), opts...)
			require.NoError(b, err)
			require.NoError(b, cons.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[[]byte]) error {
				err := h.Handle(ctx, m)
				if err == nil {
					handled.Add(1)
				}
				return err
			}))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			b.ResetTimer()
			start := time.Now()
			go func() { done <- cons.Run(ctx) }()
			for handled.Load() < int64(b.N) {
				select {
				case err := <-done:
					b.Fatalf("consumer stopped: %v", err)
				case <-time.After(time.Millisecond):
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			require.NoError(b, <-done)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
		})
	}
}

// BenchmarkStore1KiB measures Backup.Store alone on SeaweedFS, 1 KiB
// records in runs of 1, 100 and 1000 per call (one object each): what the
// batch form can reach once a consumer hands it batches. Needs
// MQ_S3_ENDPOINT.
func BenchmarkStore1KiB(b *testing.B) {
	c := testClient(b, seaweedEndpoint(b))
	for _, run := range []int{1, 100, 1000} {
		for _, gz := range []bool{false, true} {
			name := fmt.Sprintf("run-%d", run)
			if gz {
				name += "-gzip"
			}
			b.Run(name, func(b *testing.B) {
				bk, err := New(c, newBucket(b, c), WithGzip(gz))
				require.NoError(b, err)
				msgs := testMessages(b.N, 1024)
				recs := make([]Record, len(msgs))
				for i, m := range msgs {
					recs[i] = Record{Topic: "bench", Partition: 0, Offset: int64(i), Time: m.Time, Key: m.Key, Value: m.Value, Headers: m.Headers}
				}
				b.SetBytes(1024)
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < len(recs); i += run {
					if _, err := bk.Store(context.Background(), recs[i:min(i+run, len(recs))]); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			})
		}
	}
}
