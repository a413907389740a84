package mq

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// HealthReport is the consumer's view of its own health.
type HealthReport struct {
	// Ready: Run is running and the member holds an assignment from the
	// current group generation (an empty one makes it a hot standby). A
	// cooperative member (GroupProtocolCooperativeSticky) stays ready
	// through a rebalance while it keeps consuming partitions.
	Ready bool `json:"ready"`
	// Live: Run is running and no partition is stuck (see Stuck).
	Live bool `json:"live"`
	// Reason explains a false Ready or Live.
	Reason string `json:"reason,omitempty"`
	// Stuck lists partitions with work in flight (or lag) but no completed
	// message for longer than the stuck threshold ([WithStuckThreshold]):
	// typically a handler that hangs or keeps failing. Paused partitions
	// ([KafkaConsumer.Pause]) are never stuck.
	Stuck      []PartitionStats `json:"stuck,omitempty"`
	Partitions []PartitionStats `json:"partitions"`
}

// Health reports readiness and liveness; see [HealthReport].
func (c *KafkaConsumer[T]) Health() HealthReport {
	r := HealthReport{Partitions: c.partitionStats()}
	running := c.isRunning()
	missing := c.missing.Load()
	switch {
	case !running:
		r.Reason = "not running"
		return r
	case missing != nil:
		r.Reason = fmt.Sprintf("waiting for missing topics %q (consumers never create topics)", *missing)
		r.Live = true
	case !c.joined.Load():
		r.Reason = "not in a group generation (joining or rebalancing)"
		r.Live = true
	default:
		r.Ready, r.Live = true, true
	}
	now := time.Now()
	for _, p := range r.Partitions {
		idle := p.InFlight == 0 && p.Lag == 0
		if !idle && !p.Paused && now.Sub(p.LastProgress) > c.cfg.stuckThreshold {
			r.Stuck = append(r.Stuck, p)
		}
	}
	if len(r.Stuck) > 0 {
		r.Live = false
		r.Reason = fmt.Sprintf("%d partition(s) made no progress for more than %v", len(r.Stuck), c.cfg.stuckThreshold)
	}
	return r
}

// Ready returns nil when the consumer is running and holds a group
// assignment, or an error saying why not.
func (c *KafkaConsumer[T]) Ready() error {
	if r := c.Health(); !r.Ready {
		return errors.New("mq: not ready: " + r.Reason)
	}
	return nil
}

// Live returns nil when the consumer is running and no partition is stuck,
// or an error saying why not.
func (c *KafkaConsumer[T]) Live() error {
	if r := c.Health(); !r.Live {
		return errors.New("mq: not live: " + r.Reason)
	}
	return nil
}

// HealthHandler serves the health report as JSON: "/readyz" answers 200 when
// [KafkaConsumer.Ready] holds and 503 otherwise, "/livez" the same for
// [KafkaConsumer.Live], and any other path the full report (200).
func (c *KafkaConsumer[T]) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r := c.Health()
		status := http.StatusOK
		switch {
		case strings.HasSuffix(req.URL.Path, "/readyz") && !r.Ready, strings.HasSuffix(req.URL.Path, "/livez") && !r.Live:
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(r)
	})
}
