package mqotel_test

import (
	"context"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqotel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// BenchmarkObserver measures what the observer adds per message: one send
// (SendStarted, SendFinished) and one consumed message through one handler
// (ProcessStarted, HandlerFinished, ProcessFinished).
//
//   - nop: mq.NopObserver, the baseline of the interface calls;
//   - noop: noop meter and tracer providers (everything off);
//   - global: the default global providers with nothing installed;
//   - metrics: the metrics SDK, tracing off;
//   - sdk: the metrics SDK and a tracing SDK sampling every span (spans
//     dropped on end, no exporter).
func BenchmarkObserver(b *testing.B) {
	mr := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(mr))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	b.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
	cases := []struct {
		name string
		obs  mq.Observer
	}{
		{"nop", mq.NopObserver{}},
		{"noop", mqotel.New(mqotel.WithMeterProvider(metricnoop.NewMeterProvider()),
			mqotel.WithTracerProvider(tracenoop.NewTracerProvider()))},
		{"global", mqotel.New()},
		{"metrics", mqotel.New(mqotel.WithMeterProvider(mp), mqotel.WithTracerProvider(tracenoop.NewTracerProvider()))},
		{"sdk", mqotel.New(mqotel.WithMeterProvider(mp), mqotel.WithTracerProvider(tp))},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			o := c.obs
			ctx := context.Background()
			user := []mq.Header{{Key: "app", Value: []byte("v")}}
			b.ReportAllocs()
			for b.Loop() {
				sctx, hs := o.SendStarted(ctx, "orders", user)
				o.SendFinished(sctx, "orders", 1, 42, time.Millisecond, nil)
				info := mq.MessageInfo{Topic: "orders", Partition: 1, Offset: 42, Headers: hs, Group: "g"}
				pctx := o.ProcessStarted(ctx, info)
				o.HandlerFinished(pctx, info, "persist", 1, time.Millisecond, nil)
				o.ProcessFinished(pctx, info, mq.OutcomeHandled, time.Millisecond, nil)
			}
		})
	}
}
