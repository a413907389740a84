package wire_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/mqkit/mq/internal/wire/wiretest"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/heartbeat"
)

// BenchmarkRoundTrip measures request/response round trips against a fake
// broker on loopback: wire.Conn one at a time, pipelined (a window of
// requests in flight from one goroutine, and many goroutines sharing one
// connection), and kafka-go's Transport for comparison (one request at a
// time per connection; under parallel load it opens more connections).
// The fake answers at once, so its CPU is what bounds the figures.
//
//	go test -run '^$' -bench RoundTrip -benchtime 2s ./internal/wire/
func BenchmarkRoundTrip(b *testing.B) { benchRoundTrip(b, 0) }

// BenchmarkRoundTripLatency is BenchmarkRoundTrip with a broker that takes
// 1 ms to answer each request (network round trip plus broker time), where
// keeping several requests in flight on one connection pays off.
func BenchmarkRoundTripLatency(b *testing.B) { benchRoundTrip(b, time.Millisecond) }

func benchRoundTrip(b *testing.B, latency time.Duration) {
	cl := wiretest.NewCluster(b, 1)
	cl.Handle(protocol.Heartbeat, func(*wiretest.Request) wiretest.Response {
		return wiretest.Reply(&heartbeat.Response{}).After(latency)
	})
	// conns reports how many connections a sub-benchmark opened.
	conns := func(b *testing.B) {
		before := cl.Accepted(0)
		b.Cleanup(func() { b.ReportMetric(float64(cl.Accepted(0)-before), "conns") })
	}
	req := func() protocol.Message { return &heartbeat.Request{GroupID: "g", MemberID: "m"} }
	ctx := context.Background()

	dial := func(b *testing.B) *wire.Conn {
		conns(b)
		c, err := (&wire.Dialer{}).DialConn(ctx, cl.Addr(0))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		return c
	}

	b.Run("wire/sequential", func(b *testing.B) {
		c := dial(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := c.RoundTrip(ctx, req()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wire/window16", func(b *testing.B) {
		c := dial(b)
		const window = 16
		ring := make([]*wire.Pending, 0, window)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if len(ring) == window {
				if _, err := ring[0].Wait(ctx); err != nil {
					b.Fatal(err)
				}
				ring = ring[1:]
			}
			p, err := c.Send(ctx, req())
			if err != nil {
				b.Fatal(err)
			}
			ring = append(ring, p)
		}
		for _, p := range ring {
			if _, err := p.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wire/parallel", func(b *testing.B) {
		c := dial(b)
		b.ReportAllocs()
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.RoundTrip(ctx, req()); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})

	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	transport := func(b *testing.B) *kafka.Transport {
		conns(b)
		tr := &kafka.Transport{}
		b.Cleanup(tr.CloseIdleConnections)
		a, err := net.ResolveTCPAddr("tcp", cl.Addr(0))
		if err != nil {
			b.Fatal(err)
		}
		*addr = *a
		return tr
	}
	b.Run("kafka.Transport/sequential", func(b *testing.B) {
		tr := transport(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := tr.RoundTrip(ctx, addr, req()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kafka.Transport/parallel", func(b *testing.B) {
		tr := transport(b)
		b.ReportAllocs()
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := tr.RoundTrip(ctx, addr, req()); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
