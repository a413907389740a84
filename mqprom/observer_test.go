package mqprom_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every hook updates exactly the expected series.
func TestHooks(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	o, err := mqprom.New(reg, mqprom.WithDurationBuckets(0.3, 1))
	require.NoError(t, err)
	ctx := context.Background()

	for range 3 {
		sctx, hs := o.SendStarted(ctx, "orders", nil)
		assert.Nil(t, hs)
		o.SendFinished(sctx, "orders", 0, 1, 250*time.Millisecond, nil)
	}
	sctx, _ := o.SendStarted(ctx, "orders", nil)
	o.SendFinished(sctx, "orders", 1, -1, 500*time.Millisecond, mq.ErrClosed)

	ok := mq.MessageInfo{Topic: "orders", Partition: 1, Offset: 10, Group: "billing"}
	pctx := o.ProcessStarted(ctx, ok)
	o.HandlerFinished(pctx, ok, "persist", 1, 2*time.Millisecond, errors.New("busy"))
	o.HandlerFinished(pctx, ok, "persist", 2, 2*time.Millisecond, nil)
	o.ProcessFinished(pctx, ok, mq.OutcomeHandled, 250*time.Millisecond, nil)
	bad := mq.MessageInfo{Topic: "orders", Partition: 0, Offset: 4, Group: "billing"}
	pctx = o.ProcessStarted(ctx, bad)
	o.HandlerFinished(pctx, bad, "persist", 1, 2*time.Millisecond, mq.Permanent(errors.New("invalid")))
	o.ProcessFinished(pctx, bad, mq.OutcomeDeadLettered, 2*time.Second, errors.New("invalid"))
	o.Committed("billing", "orders", 1, 11)
	o.Rebalanced("billing", 1, map[string][]int{"orders": {0, 1}})

	expected := `
# HELP mq_messages_sent_total Messages handed to producers for sending.
# TYPE mq_messages_sent_total counter
mq_messages_sent_total{topic="orders"} 4
# HELP mq_messages_delivered_total Messages the broker acknowledged.
# TYPE mq_messages_delivered_total counter
mq_messages_delivered_total{topic="orders"} 3
# HELP mq_messages_send_failed_total Messages producers could not deliver.
# TYPE mq_messages_send_failed_total counter
mq_messages_send_failed_total{topic="orders"} 1
# HELP mq_send_duration_seconds Time from send to acknowledgement or failure.
# TYPE mq_send_duration_seconds histogram
mq_send_duration_seconds_bucket{topic="orders",le="0.3"} 3
mq_send_duration_seconds_bucket{topic="orders",le="1"} 4
mq_send_duration_seconds_bucket{topic="orders",le="+Inf"} 4
mq_send_duration_seconds_sum{topic="orders"} 1.25
mq_send_duration_seconds_count{topic="orders"} 4
# HELP mq_messages_consumed_total Messages consumers passed to their handlers.
# TYPE mq_messages_consumed_total counter
mq_messages_consumed_total{group="billing",partition="0",topic="orders"} 1
mq_messages_consumed_total{group="billing",partition="1",topic="orders"} 1
# HELP mq_messages_processed_total Messages consumers finished with, by outcome.
# TYPE mq_messages_processed_total counter
mq_messages_processed_total{group="billing",outcome="abandoned",topic="orders"} 0
mq_messages_processed_total{group="billing",outcome="dead_lettered",topic="orders"} 1
mq_messages_processed_total{group="billing",outcome="failed",topic="orders"} 0
mq_messages_processed_total{group="billing",outcome="handled",topic="orders"} 1
mq_messages_processed_total{group="billing",outcome="retry_topic",topic="orders"} 0
mq_messages_processed_total{group="billing",outcome="skipped",topic="orders"} 0
# HELP mq_process_duration_seconds Time consumers spent on a message, retries and recovery included.
# TYPE mq_process_duration_seconds histogram
mq_process_duration_seconds_bucket{group="billing",topic="orders",le="0.3"} 1
mq_process_duration_seconds_bucket{group="billing",topic="orders",le="1"} 1
mq_process_duration_seconds_bucket{group="billing",topic="orders",le="+Inf"} 2
mq_process_duration_seconds_sum{group="billing",topic="orders"} 2.25
mq_process_duration_seconds_count{group="billing",topic="orders"} 2
# HELP mq_handler_calls_total Handler calls.
# TYPE mq_handler_calls_total counter
mq_handler_calls_total{group="billing",handler="persist",topic="orders"} 3
# HELP mq_handler_errors_total Handler calls that returned an error.
# TYPE mq_handler_errors_total counter
mq_handler_errors_total{group="billing",handler="persist",topic="orders"} 2
# HELP mq_handler_retries_total Handler calls that were retries.
# TYPE mq_handler_retries_total counter
mq_handler_retries_total{group="billing",handler="persist",topic="orders"} 1
# HELP mq_commits_total Offset commits.
# TYPE mq_commits_total counter
mq_commits_total{group="billing",partition="0",topic="orders"} 0
mq_commits_total{group="billing",partition="1",topic="orders"} 1
# HELP mq_rebalances_total Consumer group generations joined.
# TYPE mq_rebalances_total counter
mq_rebalances_total{group="billing"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(expected),
		"mq_messages_sent_total", "mq_messages_delivered_total", "mq_messages_send_failed_total",
		"mq_send_duration_seconds", "mq_messages_consumed_total", "mq_messages_processed_total",
		"mq_process_duration_seconds", "mq_handler_calls_total", "mq_handler_errors_total",
		"mq_handler_retries_total", "mq_commits_total", "mq_rebalances_total"))
	assert.Equal(t, 1, testutil.CollectAndCount(o, "mq_handler_duration_seconds"))

	problems, err := testutil.CollectAndLint(o)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestNewOptionsAndRegistration(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	_, err := mqprom.New(reg)
	require.NoError(t, err)
	_, err = mqprom.New(reg)
	var are prometheus.AlreadyRegisteredError
	require.ErrorAs(t, err, &are, "same metrics twice on one registry")

	o, err := mqprom.New(reg, mqprom.WithNamespace("billing"), mqprom.WithConstLabels(prometheus.Labels{"app": "api"}))
	require.NoError(t, err)
	o.Rebalanced("g", 1, nil)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP billing_rebalances_total Consumer group generations joined.
# TYPE billing_rebalances_total counter
billing_rebalances_total{app="api",group="g"} 1
`), "billing_rebalances_total"))

	unregistered, err := mqprom.New(nil)
	require.NoError(t, err)
	unregistered.Rebalanced("g", 1, nil)
	assert.Equal(t, 1, testutil.CollectAndCount(unregistered, "mq_rebalances_total"))
	require.NoError(t, prometheus.NewPedanticRegistry().Register(unregistered), "registered by the caller")
}

func TestInvalidUTF8LabelsDoNotPanic(t *testing.T) {
	o, err := mqprom.New(prometheus.NewPedanticRegistry())
	require.NoError(t, err)
	info := mq.MessageInfo{Topic: "orders", Group: "g\xff"}
	ctx := o.ProcessStarted(context.Background(), info)
	o.HandlerFinished(ctx, info, "h\xfe", 1, time.Millisecond, nil)
	o.ProcessFinished(ctx, info, mq.OutcomeHandled, time.Millisecond, nil)
	o.Rebalanced("g\xff", 1, nil)
	assert.Equal(t, 1, testutil.CollectAndCount(o, "mq_handler_calls_total"))
}

type fakeConsumer struct{ st mq.ConsumerStats }

func (f *fakeConsumer) Stats() mq.ConsumerStats { return f.st }

type fakeProducer struct {
	topic    string
	buffered int64
}

func (f *fakeProducer) Topic() string           { return f.topic }
func (f *fakeProducer) Stats() mq.ProducerStats { return mq.ProducerStats{Buffered: f.buffered} }

func TestStatsGauges(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	o, err := mqprom.New(reg)
	require.NoError(t, err)
	unC1 := o.ObserveConsumer("g", &fakeConsumer{mq.ConsumerStats{Partitions: []mq.PartitionStats{
		{Topic: "orders", Partition: 0, Lag: 5, InFlight: 2},
		{Topic: "orders", Partition: 1, Lag: 0},
		{Topic: "orders.retry.1", Partition: 0, Lag: 1},
	}}})
	unC2 := o.ObserveConsumer("g", &fakeConsumer{mq.ConsumerStats{Partitions: []mq.PartitionStats{
		{Topic: "orders", Partition: 1, Lag: 3, InFlight: 1}, // mid-rebalance overlap
	}}})
	unP1 := o.ObserveProducer(&fakeProducer{"orders", 4})
	unP2 := o.ObserveProducer(&fakeProducer{"orders", 6})
	o.ObserveConsumer("g", nil)()
	o.ObserveProducer(nil)()

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP mq_consumer_lag Partition lag: high-water mark minus committed offset.
# TYPE mq_consumer_lag gauge
mq_consumer_lag{group="g",partition="0",topic="orders"} 5
mq_consumer_lag{group="g",partition="1",topic="orders"} 3
mq_consumer_lag{group="g",partition="0",topic="orders.retry.1"} 1
# HELP mq_consumer_in_flight Fetched messages of the partition not yet fully handled.
# TYPE mq_consumer_in_flight gauge
mq_consumer_in_flight{group="g",partition="0",topic="orders"} 2
mq_consumer_in_flight{group="g",partition="1",topic="orders"} 1
mq_consumer_in_flight{group="g",partition="0",topic="orders.retry.1"} 0
# HELP mq_producer_buffered Messages buffered or in flight in producers of the topic.
# TYPE mq_producer_buffered gauge
mq_producer_buffered{topic="orders"} 10
`), "mq_consumer_lag", "mq_consumer_in_flight", "mq_producer_buffered"))

	unC2()
	unP1()
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP mq_consumer_lag Partition lag: high-water mark minus committed offset.
# TYPE mq_consumer_lag gauge
mq_consumer_lag{group="g",partition="0",topic="orders"} 5
mq_consumer_lag{group="g",partition="1",topic="orders"} 0
mq_consumer_lag{group="g",partition="0",topic="orders.retry.1"} 1
# HELP mq_producer_buffered Messages buffered or in flight in producers of the topic.
# TYPE mq_producer_buffered gauge
mq_producer_buffered{topic="orders"} 6
`), "mq_consumer_lag", "mq_producer_buffered"))

	unC1()
	unP2()
	assert.Zero(t, testutil.CollectAndCount(o, "mq_consumer_lag", "mq_consumer_in_flight", "mq_producer_buffered"))
}
