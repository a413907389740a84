package mqprom_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

type event struct {
	ID int `json:"id"`
}

// consumerOptions make group tests quick on a local broker.
func consumerOptions(t testing.TB, extra ...mq.ConsumerOption) []mq.ConsumerOption {
	return append([]mq.ConsumerOption{
		mq.WithLogger(zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))),
		mq.WithHeartbeatInterval(100 * time.Millisecond),
		mq.WithSessionTimeout(2 * time.Second),
		mq.WithRebalanceTimeout(5 * time.Second),
		mq.WithCommitInterval(100 * time.Millisecond),
		mq.WithFetchMaxWait(100 * time.Millisecond),
		mq.WithShutdownTimeout(5 * time.Second),
		mq.WithRetryPolicy(mq.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Multiplier: 2}),
	}, extra...)
}

// A known workload through a real producer and consumer: 20 messages on two
// partitions; handler "persist" fails permanently on message 3 (skipped by
// SkipRecoverer), handler "audit" fails once on message 5 and succeeds on
// its retry. Every series is checked exactly, and the lag goes to 0.
func TestWorkload(t *testing.T) {
	const n = 20
	reg := prometheus.NewPedanticRegistry()
	o, err := mqprom.New(reg)
	require.NoError(t, err)
	topic := cluster.NewTopic(t, 2)
	group := "g-" + topic
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	p, err := mq.NewProducer[event](cluster.Addrs(), topic, mq.WithObserver(o))
	require.NoError(t, err)
	defer func() { _ = p.Close() }()
	defer o.ObserveProducer(p)()
	msgs := make([]mq.Message[event], n)
	for i := range msgs {
		msgs[i] = mq.Message[event]{Key: []byte(strconv.Itoa(i)), Value: event{ID: i}}
	}
	_, err = p.SendMessages(ctx, msgs...)
	require.NoError(t, err)
	ends, err := cluster.EndOffsets(ctx, topic)
	require.NoError(t, err)
	require.Len(t, ends, 2)

	c, err := mq.NewKafkaConsumer[event](cluster.Addrs(), topic, group,
		consumerOptions(t, mq.WithObserver(o), mq.WithRecoverer(mq.SkipRecoverer()))...)
	require.NoError(t, err)
	defer o.ObserveConsumer(group, c)()
	var mu sync.Mutex
	auditFailed := false
	require.NoError(t, c.RegisterHandlerFunc(func(_ context.Context, m mq.Message[event]) error {
		if m.Value.ID == 3 {
			return mq.Permanent(errors.New("invalid order"))
		}
		return nil
	}, mq.WithHandlerName("persist")))
	require.NoError(t, c.RegisterHandlerFunc(func(_ context.Context, m mq.Message[event]) error {
		mu.Lock()
		defer mu.Unlock()
		if m.Value.ID == 5 && !auditFailed {
			auditFailed = true
			return errors.New("audit log busy")
		}
		return nil
	}, mq.WithHandlerName("audit")))

	runErr := make(chan error, 1)
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { runErr <- c.Run(runCtx) }()

	lagZero := fmt.Sprintf(`
# HELP mq_consumer_lag Partition lag: high-water mark minus committed offset.
# TYPE mq_consumer_lag gauge
mq_consumer_lag{group=%[1]q,partition="0",topic=%[2]q} 0
mq_consumer_lag{group=%[1]q,partition="1",topic=%[2]q} 0
# HELP mq_consumer_in_flight Fetched messages of the partition not yet fully handled.
# TYPE mq_consumer_in_flight gauge
mq_consumer_in_flight{group=%[1]q,partition="0",topic=%[2]q} 0
mq_consumer_in_flight{group=%[1]q,partition="1",topic=%[2]q} 0
# HELP mq_producer_buffered Messages buffered or in flight in producers of the topic.
# TYPE mq_producer_buffered gauge
mq_producer_buffered{topic=%[2]q} 0
`, group, topic)
	var lastErr error
	require.Eventually(t, func() bool {
		lastErr = testutil.CollectAndCompare(o, strings.NewReader(lagZero),
			"mq_consumer_lag", "mq_consumer_in_flight", "mq_producer_buffered")
		return lastErr == nil && c.Stats().Consumed == n
	}, 30*time.Second, 20*time.Millisecond, "last difference: %v", lastErr)
	stop()
	require.NoError(t, <-runErr)

	expected := fmt.Sprintf(`
# HELP mq_messages_sent_total Messages handed to producers for sending.
# TYPE mq_messages_sent_total counter
mq_messages_sent_total{topic=%[2]q} 20
# HELP mq_messages_delivered_total Messages the broker acknowledged.
# TYPE mq_messages_delivered_total counter
mq_messages_delivered_total{topic=%[2]q} 20
# HELP mq_messages_send_failed_total Messages producers could not deliver.
# TYPE mq_messages_send_failed_total counter
mq_messages_send_failed_total{topic=%[2]q} 0
# HELP mq_messages_consumed_total Messages consumers passed to their handlers.
# TYPE mq_messages_consumed_total counter
mq_messages_consumed_total{group=%[1]q,partition="0",topic=%[2]q} %[3]d
mq_messages_consumed_total{group=%[1]q,partition="1",topic=%[2]q} %[4]d
# HELP mq_messages_processed_total Messages consumers finished with, by outcome.
# TYPE mq_messages_processed_total counter
mq_messages_processed_total{group=%[1]q,outcome="abandoned",topic=%[2]q} 0
mq_messages_processed_total{group=%[1]q,outcome="dead_lettered",topic=%[2]q} 0
mq_messages_processed_total{group=%[1]q,outcome="failed",topic=%[2]q} 0
mq_messages_processed_total{group=%[1]q,outcome="handled",topic=%[2]q} 19
mq_messages_processed_total{group=%[1]q,outcome="retry_topic",topic=%[2]q} 0
mq_messages_processed_total{group=%[1]q,outcome="skipped",topic=%[2]q} 1
# HELP mq_handler_calls_total Handler calls.
# TYPE mq_handler_calls_total counter
mq_handler_calls_total{group=%[1]q,handler="audit",topic=%[2]q} 21
mq_handler_calls_total{group=%[1]q,handler="persist",topic=%[2]q} 20
# HELP mq_handler_errors_total Handler calls that returned an error.
# TYPE mq_handler_errors_total counter
mq_handler_errors_total{group=%[1]q,handler="audit",topic=%[2]q} 1
mq_handler_errors_total{group=%[1]q,handler="persist",topic=%[2]q} 1
# HELP mq_handler_retries_total Handler calls that were retries.
# TYPE mq_handler_retries_total counter
mq_handler_retries_total{group=%[1]q,handler="audit",topic=%[2]q} 1
mq_handler_retries_total{group=%[1]q,handler="persist",topic=%[2]q} 0
# HELP mq_rebalances_total Consumer group generations joined.
# TYPE mq_rebalances_total counter
mq_rebalances_total{group=%[1]q} 1
`, group, topic, ends[0], ends[1])
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(expected),
		"mq_messages_sent_total", "mq_messages_delivered_total", "mq_messages_send_failed_total",
		"mq_messages_consumed_total", "mq_messages_processed_total", "mq_handler_calls_total",
		"mq_handler_errors_total", "mq_handler_retries_total", "mq_rebalances_total"))

	// Histogram counts match the counters.
	mfs, err := reg.Gather()
	require.NoError(t, err)
	counts := map[string]uint64{}
	commits := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "mq_commits_total" {
				for _, l := range m.GetLabel() {
					if l.GetName() == "partition" {
						commits[l.GetValue()] = m.GetCounter().GetValue()
					}
				}
			}
			if h := m.GetHistogram(); h != nil {
				key := mf.GetName()
				for _, l := range m.GetLabel() {
					if l.GetName() == "handler" {
						key += "/" + l.GetValue()
					}
				}
				counts[key] += h.GetSampleCount()
			}
		}
	}
	assert.Equal(t, map[string]uint64{
		"mq_send_duration_seconds":            n,
		"mq_process_duration_seconds":         n,
		"mq_handler_duration_seconds/persist": n,
		"mq_handler_duration_seconds/audit":   n + 1,
	}, counts)

	// Commits were counted on both partitions.
	require.Len(t, commits, 2)
	assert.GreaterOrEqual(t, commits["0"], 1.0)
	assert.GreaterOrEqual(t, commits["1"], 1.0)

	// After Run returned, the consumer has no partitions: no lag series.
	assert.Zero(t, testutil.CollectAndCount(o, "mq_consumer_lag"))
	assert.EqualValues(t, 1, c.Stats().Skipped)
}
