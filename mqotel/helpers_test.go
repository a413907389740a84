package mqotel_test

import (
	"context"
	"testing"

	"github.com/mqkit/mq/mqotel"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// env is an Observer wired to in-memory SDK providers.
type env struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	obs    *mqotel.Observer
}

func newEnv(t testing.TB, opts ...mqotel.Option) *env {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
	opts = append([]mqotel.Option{mqotel.WithMeterProvider(mp), mqotel.WithTracerProvider(tp)}, opts...)
	return &env{reader: reader, spans: rec, obs: mqotel.New(opts...)}
}

func (e *env) collect(t testing.TB) metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, e.reader.Collect(context.Background(), &rm))
	m := metrics{}
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, mqotel.ScopeName, sm.Scope.Name)
		for _, md := range sm.Metrics {
			m[md.Name] = md
		}
	}
	return m
}

// metrics are the collected metrics by name.
type metrics map[string]metricdata.Metrics

func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		v, ok := set.Value(kv.Key)
		if kv.Value.Type() == attribute.EMPTY { // key must be absent
			if ok {
				return false
			}
			continue
		}
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// absent matches data points without key.
func absent(key attribute.Key) attribute.KeyValue { return attribute.KeyValue{Key: key} }

// sum adds the values of the counter's data points whose attributes include
// want.
func (m metrics) sum(t testing.TB, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	md, ok := m[name]
	if !ok {
		return 0
	}
	s, ok := md.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is a %T", name, md.Data)
	require.True(t, s.IsMonotonic)
	var total int64
	for _, dp := range s.DataPoints {
		if matches(dp.Attributes, want) {
			total += dp.Value
		}
	}
	return total
}

// count adds the counts of the histogram's data points whose attributes
// include want.
func (m metrics) count(t testing.TB, name string, want ...attribute.KeyValue) uint64 {
	t.Helper()
	md, ok := m[name]
	if !ok {
		return 0
	}
	h, ok := md.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "%s is a %T", name, md.Data)
	var total uint64
	for _, dp := range h.DataPoints {
		if matches(dp.Attributes, want) {
			total += dp.Count
		}
	}
	return total
}

// gauge returns the gauge's data points.
func (m metrics) gauge(t testing.TB, name string) []metricdata.DataPoint[int64] {
	t.Helper()
	md, ok := m[name]
	if !ok {
		return nil
	}
	g, ok := md.Data.(metricdata.Gauge[int64])
	require.True(t, ok, "%s is a %T", name, md.Data)
	return g.DataPoints
}
