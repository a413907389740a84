package mqprom

import "github.com/prometheus/client_golang/prometheus"

// Option configures an [Observer] created by [New].
type Option func(*config)

type config struct {
	namespace   string
	constLabels prometheus.Labels
	buckets     []float64
}

func defaultConfig() config {
	return config{namespace: "mq", buckets: DefaultDurationBuckets}
}

// DefaultDurationBuckets are the bucket upper bounds, in seconds, of the
// duration histograms: 1 ms to 10 s.
var DefaultDurationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// WithNamespace sets the prefix of every metric name instead of "mq"
// ("" for none): WithNamespace("billing") names the counter of sent
// messages billing_messages_sent_total.
func WithNamespace(ns string) Option {
	return func(c *config) { c.namespace = ns }
}

// WithConstLabels adds labels with fixed values to every metric, for
// example to tell several observers in one process apart.
func WithConstLabels(labels prometheus.Labels) Option {
	return func(c *config) {
		c.constLabels = make(prometheus.Labels, len(labels))
		for k, v := range labels {
			c.constLabels[k] = v
		}
	}
}

// WithDurationBuckets sets the bucket upper bounds, in seconds, of the
// duration histograms instead of [DefaultDurationBuckets].
func WithDurationBuckets(bounds ...float64) Option {
	return func(c *config) {
		if len(bounds) > 0 {
			c.buckets = append([]float64(nil), bounds...)
		}
	}
}
