package mqotel

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Option configures an [Observer] created by [New].
type Option func(*config)

type config struct {
	mp           metric.MeterProvider
	tp           trace.TracerProvider
	prop         propagation.TextMapPropagator
	handlerSpans bool
	linked       bool
	buckets      []float64
}

func defaultConfig() config {
	return config{
		mp:      otel.GetMeterProvider(),
		tp:      otel.GetTracerProvider(),
		prop:    propagation.TraceContext{},
		buckets: DefaultDurationBuckets,
	}
}

// DefaultDurationBuckets are the explicit histogram bucket boundaries, in
// seconds, advised for the duration histograms. They are OpenTelemetry's
// recommendation for messaging durations.
var DefaultDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// WithMeterProvider sets the meter provider the instruments are created
// with. The default is the global one ([otel.GetMeterProvider]), which
// forwards to a provider set with otel.SetMeterProvider also after [New]. A
// nil provider is ignored. Pass a
// [go.opentelemetry.io/otel/metric/noop.MeterProvider] to turn metrics off
// at no cost.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp != nil {
			c.mp = mp
		}
	}
}

// WithTracerProvider sets the tracer provider spans are started with. The
// default is the global one ([otel.GetTracerProvider]), which forwards to a
// provider set with otel.SetTracerProvider also after [New]. A nil provider
// is ignored. Pass a
// [go.opentelemetry.io/otel/trace/noop.TracerProvider] to turn tracing, and
// trace context propagation, off at no cost.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	}
}

// WithPropagator sets how trace context is written to and read from message
// headers. The default is W3C Trace Context ([propagation.TraceContext]),
// not the global propagator, so that tracing works without setting one; use
// propagation.NewCompositeTextMapPropagator(propagation.TraceContext{},
// propagation.Baggage{}) to carry baggage too. A nil propagator is ignored.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) {
		if p != nil {
			c.prop = p
		}
	}
}

// WithHandlerSpans makes every handler call a child span of the message's
// "process" span, named "handle <handler>", instead of an event on it (the
// default). The handler runs before its span is created (the observer is
// told afterwards), so spans the handler starts itself are children of the
// "process" span, not of its "handle" span.
func WithHandlerSpans() Option {
	return func(c *config) { c.handlerSpans = true }
}

// WithLinkedProcessSpans starts every "process" span as the root of a new
// trace with a link to the producer's span, instead of continuing the
// producer's trace as its child (the default). Links suit consumers whose
// processing should not be accounted to the producer's trace.
func WithLinkedProcessSpans() Option {
	return func(c *config) { c.linked = true }
}

// WithDurationBuckets sets the explicit bucket boundaries, in seconds,
// advised for the duration histograms instead of [DefaultDurationBuckets].
// Views configured on the meter provider take precedence.
func WithDurationBuckets(bounds ...float64) Option {
	return func(c *config) {
		if len(bounds) > 0 {
			c.buckets = append([]float64(nil), bounds...)
		}
	}
}
