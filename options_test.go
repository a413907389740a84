package mq_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/mqkit/mq"
)

// brokers is a well-formed broker list for tests that never get as far as
// contacting a broker (constructors only validate); tests that must show
// that nothing is contacted use a silentBroker.
var brokers = []string{"127.0.0.1:1"}

const (
	topic = "chat-messages"
	group = "chat-persister"
)

// validRetry is a retry policy at the edges of what is allowed.
var validRetry = mq.RetryPolicy{MaxAttempts: 1, InitialBackoff: 0, MaxBackoff: 0, Multiplier: 1, Jitter: 1}

// newProducer calls NewProducer, failing the test if it panics.
func newProducer[T any](t *testing.T, brokers []string, topic string, opts ...mq.ProducerOption) (p *mq.Producer[T], err error) {
	t.Helper()
	require.NotPanics(t, func() { p, err = mq.NewProducer[T](brokers, topic, opts...) })
	if err != nil {
		assert.Nil(t, p, "a failed constructor returns no producer")
	}
	return p, err
}

// newConsumer calls NewKafkaConsumer, failing the test if it panics.
func newConsumer[T any](t *testing.T, brokers []string, topic, group string, opts ...mq.ConsumerOption) (c *mq.KafkaConsumer[T], err error) {
	t.Helper()
	require.NotPanics(t, func() { c, err = mq.NewKafkaConsumer[T](brokers, topic, group, opts...) })
	if err != nil {
		assert.Nil(t, c, "a failed constructor returns no consumer")
	}
	return c, err
}

func closeProducer[T any](t *testing.T, p *mq.Producer[T]) {
	t.Helper()
	require.NoError(t, p.Close())
}

func TestNewProducerRejectsInvalidArguments(t *testing.T) {
	tests := []struct {
		name    string
		brokers []string
		topic   string
		want    string // must appear in the error message
	}{
		{name: "nil brokers", brokers: nil, topic: topic, want: "no brokers"},
		{name: "empty brokers", brokers: []string{}, topic: topic, want: "no brokers"},
		{name: "broker without port", brokers: []string{"localhost"}, topic: topic, want: `broker address "localhost"`},
		{name: "empty broker address", brokers: []string{"localhost:9092", ""}, topic: topic, want: `broker address ""`},
		{name: "broker with too many colons", brokers: []string{"a:1:2"}, topic: topic, want: `broker address "a:1:2"`},
		{name: "empty topic", brokers: brokers, topic: "", want: "topic must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newProducer[int](t, tt.brokers, tt.topic)
			require.ErrorIs(t, err, mq.ErrInvalidOption)
			assert.Nil(t, p)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "mq: invalid option: "), "error %q", err)
		})
	}
}

func TestNewProducerRejectsInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []mq.ProducerOption
		want string // must appear in the error message
	}{
		{name: "zero batch size", opts: opts(mq.WithBatchSize(0)), want: "batch size 0"},
		{name: "negative batch size", opts: opts(mq.WithBatchSize(-5)), want: "batch size -5"},
		{name: "zero batch bytes", opts: opts(mq.WithBatchBytes(0)), want: "batch bytes 0"},
		{name: "negative batch bytes", opts: opts(mq.WithBatchBytes(-1)), want: "batch bytes -1"},
		{name: "negative batch timeout", opts: opts(mq.WithBatchTimeout(-time.Millisecond)), want: "batch timeout -1ms"},
		{name: "unknown compression", opts: opts(mq.WithCompression(mq.Compression(9))), want: "unknown compression 9"},
		{name: "negative compression", opts: opts(mq.WithCompression(mq.Compression(-1))), want: "unknown compression -1"},
		{name: "invalid acks", opts: opts(mq.WithRequiredAcks(mq.Acks(2))), want: "required acks 2"},
		{name: "invalid negative acks", opts: opts(mq.WithRequiredAcks(mq.Acks(-2))), want: "required acks -2"},
		{name: "zero max buffered", opts: opts(mq.WithMaxBufferedRecords(0)), want: "max buffered records 0"},
		{name: "zero delivery timeout", opts: opts(mq.WithDeliveryTimeout(0)), want: "delivery timeout 0s"},
		{name: "negative delivery timeout", opts: opts(mq.WithDeliveryTimeout(-time.Second)), want: "delivery timeout -1s"},
		{name: "zero write timeout", opts: opts(mq.WithWriteTimeout(0)), want: "write timeout 0s"},
		{name: "zero close timeout", opts: opts(mq.WithCloseTimeout(0)), want: "close timeout 0s"},
		{name: "negative retry backoff", opts: opts(mq.WithRetryBackoff(-time.Millisecond)), want: "retry backoff -1ms"},
		{name: "zero dial timeout", opts: opts(mq.WithDialTimeout(0)), want: "dial timeout 0s"},
		{name: "empty client ID", opts: opts(mq.WithClientID("")), want: "client ID"},
		{name: "codec of another type", opts: opts(mq.WithCodec[string](mq.StringCodec{})), want: "codec mq.StringCodec does not encode values of type int"},
		{name: "JSON codec of another type", opts: opts(mq.WithCodec(mq.JSONCodec[string]{})), want: "codec mq.JSONCodec[string]"},
		{
			name: "delivery handler of another type",
			opts: opts(mq.WithDeliveryHandler(func(mq.Message[string], error) {})),
			want: "delivery handler func(mq.Message[string], error) does not take messages of type int",
		},
		{name: "last option wins", opts: opts(mq.WithBatchSize(10), mq.WithBatchSize(0)), want: "batch size 0"},
		{name: "zero max request size", opts: opts(mq.WithMaxRequestSize(0)), want: "max request size 0"},
		{name: "idempotence with leader acks", opts: opts(mq.WithIdempotence(true), mq.WithRequiredAcks(mq.AcksLeader)), want: "idempotence needs WithRequiredAcks(AcksAll)"},
		{name: "idempotence with no acks", opts: opts(mq.WithRequiredAcks(mq.AcksNone), mq.WithIdempotence(true)), want: "idempotence needs WithRequiredAcks(AcksAll)"},
		{name: "write timeout beyond int32 milliseconds", opts: opts(mq.WithWriteTimeout(1000 * time.Hour)), want: "write timeout 1000h0m0s is too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newProducer[int](t, brokers, topic, tt.opts...)
			require.ErrorIs(t, err, mq.ErrInvalidOption)
			assert.Nil(t, p)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "mq: invalid option: "), "error %q", err)
		})
	}
}

func TestNewKafkaConsumerRejectsInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []mq.ConsumerOption
		want string
	}{
		{name: "invalid start offset", opts: copts(mq.WithStartOffset(mq.StartOffset(5))), want: "start offset 5"},
		{name: "zero min bytes", opts: copts(mq.WithFetchMinBytes(0)), want: "min bytes 0"},
		{name: "zero max bytes", opts: copts(mq.WithFetchMaxBytes(0)), want: "max bytes 0"},
		{name: "max bytes above int32", opts: copts(mq.WithFetchMaxBytes(1 << 31)), want: "max bytes 2147483648"},
		{name: "zero max wait", opts: copts(mq.WithFetchMaxWait(0)), want: "max wait 0s"},
		{name: "max wait below a millisecond", opts: copts(mq.WithFetchMaxWait(time.Microsecond)), want: "max wait 1µs"},
		{name: "zero fetch buffer", opts: copts(mq.WithFetchBufferBytes(0)), want: "fetch buffer bytes 0"},
		{name: "unknown isolation level", opts: copts(mq.WithIsolationLevel(mq.IsolationLevel(2))), want: "isolation level 2"},
		{name: "empty extra topic", opts: copts(mq.WithTopics("")), want: "topic must not be empty"},
		{name: "topic is a retry topic of another", opts: copts(mq.WithTopics(topic+".retry.1"),
			mq.WithRecoverer(mq.RetryTopicRecoverer([]time.Duration{time.Second}, ""))), want: "is also a recovery topic"},
		{name: "zero heartbeat", opts: copts(mq.WithHeartbeatInterval(0)), want: "heartbeat interval 0s"},
		{name: "session equals heartbeat", opts: copts(mq.WithSessionTimeout(time.Second), mq.WithHeartbeatInterval(time.Second)), want: "session timeout 1s must be above the heartbeat interval 1s"},
		{name: "session below heartbeat", opts: copts(mq.WithSessionTimeout(time.Second), mq.WithHeartbeatInterval(3*time.Second)), want: "session timeout 1s"},
		{name: "zero rebalance timeout", opts: copts(mq.WithRebalanceTimeout(0)), want: "rebalance timeout 0s"},
		{name: "zero commit interval", opts: copts(mq.WithCommitInterval(0)), want: "commit interval 0s"},
		{name: "zero shutdown timeout", opts: copts(mq.WithShutdownTimeout(0)), want: "shutdown timeout 0s"},
		{name: "zero dial timeout", opts: copts(mq.WithDialTimeout(0)), want: "dial timeout 0s"},
		{name: "empty client ID", opts: copts(mq.WithClientID("")), want: "client ID"},
		{name: "codec of another type", opts: copts(mq.WithCodec[string](mq.StringCodec{})), want: "codec mq.StringCodec does not encode values of type int"},
		{name: "retry zero attempts", opts: copts(mq.WithRetryPolicy(retry(func(p *mq.RetryPolicy) { p.MaxAttempts = 0 }))), want: "max attempts 0"},
		{name: "retry negative initial backoff", opts: copts(mq.WithRetryPolicy(retry(func(p *mq.RetryPolicy) { p.InitialBackoff = -1 }))), want: "backoffs must be >= 0"},
		{name: "retry negative max backoff", opts: copts(mq.WithRetryPolicy(retry(func(p *mq.RetryPolicy) { p.MaxBackoff = -1 }))), want: "backoffs must be >= 0"},
		{name: "retry max below initial", opts: copts(mq.WithRetryPolicy(retry(func(p *mq.RetryPolicy) { p.InitialBackoff, p.MaxBackoff = time.Second, time.Millisecond }))), want: "max backoff 1ms is below initial backoff 1s"},
		{name: "retry multiplier below one", opts: copts(mq.WithRetryPolicy(retry(func(p *mq.RetryPolicy) { p.Multiplier = 0.5 }))), want: "multiplier 0.5"},
		{name: "retry zero multiplier", opts: copts(mq.WithRetryPolicy(mq.RetryPolicy{MaxAttempts: 3})), want: "multiplier 0"},
		{name: "retry jitter above one", opts: copts(mq.WithRetryPolicy(retry(func(p *mq.RetryPolicy) { p.Jitter = 1.5 }))), want: "jitter 1.5"},
		{name: "retry negative jitter", opts: copts(mq.WithRetryPolicy(retry(func(p *mq.RetryPolicy) { p.Jitter = -0.1 }))), want: "jitter -0.1"},
		{name: "last option wins", opts: copts(mq.WithFetchBufferBytes(10), mq.WithFetchBufferBytes(0)), want: "fetch buffer bytes 0"},
		{name: "unknown group protocol", opts: copts(mq.WithGroupProtocol("sticky")), want: `unknown group protocol "sticky"`},
		{name: "group protocol twice", opts: copts(mq.WithGroupProtocol(mq.GroupProtocolRange, mq.GroupProtocolRange)), want: `group protocol "range" named twice`},
		{name: "no group protocol", opts: copts(mq.WithGroupProtocol()), want: "at least one protocol"},
		{name: "group protocols and balancers", opts: copts(mq.WithGroupProtocol(mq.GroupProtocolRange),
			mq.WithGroupBalancers(kafka.RangeGroupBalancer{})), want: "exclude each other"},
		{name: "nil group balancer", opts: copts(mq.WithGroupBalancers(nil)), want: "nil group balancer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newConsumer[int](t, brokers, topic, group, tt.opts...)
			require.ErrorIs(t, err, mq.ErrInvalidOption)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "mq: invalid option: "), "error %q", err)
		})
	}
}

func TestNewKafkaConsumerRejectsInvalidArguments(t *testing.T) {
	tests := []struct {
		name    string
		brokers []string
		topic   string
		group   string
		want    string
	}{
		{name: "no brokers", brokers: nil, topic: topic, group: group, want: "no brokers"},
		{name: "malformed broker", brokers: []string{"kafka-1"}, topic: topic, group: group, want: `broker address "kafka-1"`},
		{name: "empty topic", brokers: brokers, topic: "", group: group, want: "topic must not be empty"},
		{name: "empty group", brokers: brokers, topic: topic, group: "", want: "consumer group must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newConsumer[int](t, tt.brokers, tt.topic, tt.group)
			require.ErrorIs(t, err, mq.ErrInvalidOption)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestNewProducerAcceptsValidConfigs(t *testing.T) {
	var delivered int
	tests := []struct {
		name string
		opts []mq.ProducerOption
	}{
		{name: "defaults"},
		{name: "nil options are ignored", opts: []mq.ProducerOption{nil, mq.WithBatchSize(5), nil}},
		{name: "nil option interface values", opts: []mq.ProducerOption{mq.ProducerOption(nil), mq.Option(nil)}},
		{name: "last option wins", opts: opts(mq.WithBatchSize(0), mq.WithBatchSize(10))},
		{name: "edges", opts: opts(
			mq.WithBatchSize(1),
			mq.WithBatchBytes(1),
			mq.WithBatchTimeout(0),
			mq.WithMaxBufferedRecords(1),
			mq.WithDeliveryTimeout(time.Nanosecond),
			mq.WithWriteTimeout(time.Nanosecond),
			mq.WithCloseTimeout(time.Nanosecond),
			mq.WithRetryBackoff(0),
			mq.WithDialTimeout(time.Nanosecond),
		)},
		{name: "everything set", opts: opts(
			mq.WithLogger(zap.NewNop()),
			mq.WithClientID("chat-api"),
			mq.WithCodec[int](mq.JSONCodec[int]{DisallowUnknownFields: true}),
			mq.WithDialTimeout(3*time.Second),
			mq.WithBatchSize(500),
			mq.WithBatchBytes(512<<10),
			mq.WithBatchTimeout(5*time.Millisecond),
			mq.WithCompression(mq.CompressionZstd),
			mq.WithAsync(true),
			mq.WithDeliveryHandler(func(mq.Message[int], error) { delivered++ }),
			mq.WithRequiredAcks(mq.AcksLeader),
			mq.WithBalancer(&kafka.Hash{}),
			mq.WithMaxBufferedRecords(100),
			mq.WithDeliveryTimeout(time.Minute),
			mq.WithWriteTimeout(5*time.Second),
			mq.WithRetryBackoff(50*time.Millisecond),
			mq.WithCloseTimeout(time.Second),
			mq.WithTransport(&kafka.Transport{}),
		)},
		{name: "nil logger, balancer and transport", opts: opts(mq.WithLogger(nil), mq.WithBalancer(nil), mq.WithTransport(nil))},
		{name: "nil typed codec falls back to JSON", opts: opts(mq.WithCodec[int](nil))},
		{name: "nil typed delivery handler", opts: opts(mq.WithDeliveryHandler[int](nil))},
		{name: "codec func adapter", opts: opts(mq.WithCodec[int](mq.CodecFuncs[int]{}))},
		{name: "pointer codec", opts: opts(mq.WithCodec[int](&mq.JSONCodec[int]{}))},
		{name: "no acks", opts: opts(mq.WithRequiredAcks(mq.AcksNone))},
		{name: "leader acks turn idempotence off", opts: opts(mq.WithRequiredAcks(mq.AcksLeader))},
		{name: "idempotence off", opts: opts(mq.WithIdempotence(false))},
		{name: "idempotence off with leader acks", opts: opts(mq.WithIdempotence(false), mq.WithRequiredAcks(mq.AcksLeader))},
		{name: "max request size and manual partitioning", opts: opts(mq.WithMaxRequestSize(4<<20), mq.WithManualPartitioning(true))},
		{name: "all acks", opts: opts(mq.WithRequiredAcks(mq.AcksAll))},
		{name: "gzip", opts: opts(mq.WithCompression(mq.CompressionGzip))},
		{name: "snappy", opts: opts(mq.WithCompression(mq.CompressionSnappy))},
		{name: "lz4", opts: opts(mq.WithCompression(mq.CompressionLz4))},
		{name: "none", opts: opts(mq.WithCompression(mq.CompressionNone))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newProducer[int](t, brokers, topic, tt.opts...)
			require.NoError(t, err)
			require.NotNil(t, p)
			assert.Equal(t, topic, p.Topic())
			closeProducer(t, p)
		})
	}
	assert.Zero(t, delivered, "nothing was sent")
}

func TestNewProducerAcceptsSeveralBrokers(t *testing.T) {
	p, err := newProducer[string](t, []string{"kafka-1:9092", "10.0.0.2:9093", "[::1]:9094"}, topic)
	require.NoError(t, err)
	closeProducer(t, p)
}

func TestNewKafkaConsumerAcceptsValidConfigs(t *testing.T) {
	tests := []struct {
		name string
		opts []mq.ConsumerOption
	}{
		{name: "defaults"},
		{name: "nil options are ignored", opts: []mq.ConsumerOption{nil, mq.WithFetchBufferBytes(5), nil}},
		{name: "last option wins", opts: copts(mq.WithFetchBufferBytes(0), mq.WithFetchBufferBytes(10))},
		{name: "edges", opts: copts(
			mq.WithFetchMinBytes(1),
			mq.WithFetchMaxBytes(1),
			mq.WithFetchMaxWait(time.Millisecond),
			mq.WithFetchBufferBytes(1),
			mq.WithHeartbeatInterval(time.Second),
			mq.WithSessionTimeout(time.Second+time.Nanosecond),
			mq.WithRebalanceTimeout(time.Nanosecond),
			mq.WithCommitInterval(time.Nanosecond),
			mq.WithShutdownTimeout(time.Nanosecond),
			mq.WithRetryPolicy(validRetry),
		)},
		{name: "everything set", opts: copts(
			mq.WithLogger(zap.NewNop()),
			mq.WithClientID("chat-persister"),
			mq.WithCodec[int](mq.JSONCodec[int]{}),
			mq.WithDialTimeout(time.Second),
			mq.WithStartOffset(mq.StartLatest),
			mq.WithFetchMinBytes(1024),
			mq.WithFetchMaxBytes(4<<20),
			mq.WithFetchMaxWait(100*time.Millisecond),
			mq.WithFetchBufferBytes(64<<20),
			mq.WithIsolationLevel(mq.ReadUncommitted),
			mq.WithTopics("other", topic, "other"),
			mq.WithSessionTimeout(30*time.Second),
			mq.WithHeartbeatInterval(3*time.Second),
			mq.WithRebalanceTimeout(time.Minute),
			mq.WithCommitInterval(500*time.Millisecond),
			mq.WithRetryPolicy(mq.DefaultRetryPolicy),
			mq.WithShutdownTimeout(10*time.Second),
			mq.WithGroupBalancers(kafka.RoundRobinGroupBalancer{}, kafka.RangeGroupBalancer{}),
			mq.WithGroupInstanceID("pod-0"),
			mq.WithClientRack("eu-west-1a"),
			mq.WithMissingTopicsFatal(),
			mq.WithOnAssigned(func(map[string][]int) {}),
			mq.WithOnRevoked(func(map[string][]int) {}),
			mq.WithDialer(&kafka.Dialer{Timeout: time.Second}),
		)},
		{name: "earliest", opts: copts(mq.WithStartOffset(mq.StartEarliest))},
		{name: "cooperative", opts: copts(mq.WithGroupProtocol(mq.GroupProtocolCooperativeSticky))},
		{name: "every group protocol", opts: copts(mq.WithGroupProtocol(mq.GroupProtocolCooperativeSticky,
			mq.GroupProtocolRoundRobin, mq.GroupProtocolRange))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newConsumer[int](t, brokers, topic, group, tt.opts...)
			require.NoError(t, err)
			require.NotNil(t, c)
			require.NoError(t, c.Close())
		})
	}
}

func TestDefaultRetryPolicyIsValid(t *testing.T) {
	c, err := newConsumer[int](t, brokers, topic, group, mq.WithRetryPolicy(mq.DefaultRetryPolicy))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	assert.Equal(t, 5, mq.DefaultRetryPolicy.MaxAttempts)
}

func TestCompressionString(t *testing.T) {
	for c, want := range map[mq.Compression]string{
		mq.CompressionNone:   "none",
		mq.CompressionGzip:   "gzip",
		mq.CompressionSnappy: "snappy",
		mq.CompressionLz4:    "lz4",
		mq.CompressionZstd:   "zstd",
		mq.Compression(42):   "compression(42)",
	} {
		assert.Equal(t, want, c.String())
	}
}

// ----- consumer lifecycle without a broker -----

func nopHandler() mq.Handler[int] {
	return mq.HandlerFunc[int](func(context.Context, mq.Message[int]) error { return nil })
}

func TestRegisterHandler(t *testing.T) {
	c, err := newConsumer[int](t, brokers, topic, group)
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close()) }()

	require.ErrorIs(t, c.RegisterHandler(nil), mq.ErrNilHandler)
	require.NoError(t, c.RegisterHandler(nopHandler()))
	require.NoError(t, c.RegisterHandler(nopHandler(), mq.WithHandlerName("backup"), nil))
	require.NoError(t, c.RegisterHandler(nopHandler(), mq.WithHandlerRetryPolicy(validRetry)))
}

func TestRegisterHandlerRejectsInvalidRetryPolicy(t *testing.T) {
	bad := []struct {
		name   string
		policy mq.RetryPolicy
		want   string
	}{
		{"zero attempts", retry(func(p *mq.RetryPolicy) { p.MaxAttempts = 0 }), "max attempts 0"},
		{"negative attempts", retry(func(p *mq.RetryPolicy) { p.MaxAttempts = -1 }), "max attempts -1"},
		{"negative backoff", retry(func(p *mq.RetryPolicy) { p.InitialBackoff = -time.Second }), "backoffs must be >= 0"},
		{"max below initial", retry(func(p *mq.RetryPolicy) { p.MaxBackoff = time.Millisecond }), "is below initial backoff"},
		{"multiplier below one", retry(func(p *mq.RetryPolicy) { p.Multiplier = 0.99 }), "multiplier 0.99"},
		{"jitter above one", retry(func(p *mq.RetryPolicy) { p.Jitter = 1.01 }), "jitter 1.01"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newConsumer[int](t, brokers, topic, group)
			require.NoError(t, err)
			defer func() { require.NoError(t, c.Close()) }()

			err = c.RegisterHandler(nopHandler(), mq.WithHandlerName("persist"), mq.WithHandlerRetryPolicy(tt.policy))
			require.ErrorIs(t, err, mq.ErrInvalidOption)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), `"persist"`, "the error names the handler")

			// The rejected handler was not registered.
			require.ErrorIs(t, c.Run(context.Background()), mq.ErrNoHandlers)
		})
	}
}

func TestRunWithoutHandlers(t *testing.T) {
	b := newSilentBroker(t)
	c, err := newConsumer[int](t, b.addrs(), topic, group)
	require.NoError(t, err)
	require.ErrorIs(t, c.Run(context.Background()), mq.ErrNoHandlers)
	assert.Zero(t, b.accepted(), "Run without handlers returns before connecting")
	require.NoError(t, c.Close())
}

func TestConsumerCloseBeforeRun(t *testing.T) {
	b := newSilentBroker(t)
	c, err := newConsumer[int](t, b.addrs(), topic, group)
	require.NoError(t, err)
	require.NoError(t, c.RegisterHandler(nopHandler()))

	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "Close is idempotent")
	assert.Zero(t, b.accepted(), "closing a consumer that never ran contacts no broker")

	require.ErrorIs(t, c.Run(context.Background()), mq.ErrClosed)
	require.ErrorIs(t, c.Run(context.Background()), mq.ErrClosed)
	require.ErrorIs(t, c.RegisterHandler(nopHandler()), mq.ErrClosed)
}

func TestConsumerCloseConcurrently(t *testing.T) {
	c, err := newConsumer[int](t, brokers, topic, group)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, c.Close())
		}()
	}
	wg.Wait()
	require.ErrorIs(t, c.Run(context.Background()), mq.ErrClosed)
}

// ----- producer without a broker -----

func TestProducerCloseUnused(t *testing.T) {
	b := newSilentBroker(t)
	p, err := newProducer[int](t, b.addrs(), topic)
	require.NoError(t, err)
	require.NoError(t, p.Flush(context.Background()), "nothing buffered")
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "Close is idempotent")
	assert.Zero(t, b.accepted(), "flushing and closing an unused producer contacts no broker")
}

// silentBroker is a TCP listener that counts connections and never answers:
// a test that must not contact a broker can check that nobody dialled it.
type silentBroker struct {
	ln net.Listener
	n  atomic.Int64
}

func newSilentBroker(t *testing.T) *silentBroker {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &silentBroker{ln: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			b.n.Add(1)
			_ = conn.Close()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return b
}

func (b *silentBroker) addrs() []string { return []string{b.ln.Addr().String()} }
func (b *silentBroker) accepted() int64 { return b.n.Load() }

func TestProducerSendAfterClose(t *testing.T) {
	for _, async := range []bool{false, true} {
		name := map[bool]string{false: "sync", true: "async"}[async]
		t.Run(name, func(t *testing.T) {
			p, err := newProducer[int](t, brokers, topic, mq.WithAsync(async))
			require.NoError(t, err)
			require.NoError(t, p.Close())
			ctx := context.Background()

			_, err = p.Send(ctx, []byte("k"), 1)
			require.ErrorIs(t, err, mq.ErrClosed)

			_, err = p.SendMessage(ctx, mq.Message[int]{Value: 1})
			require.ErrorIs(t, err, mq.ErrClosed)

			called := false
			err = p.SendAsync(ctx, mq.Message[int]{Value: 1}, func(mq.Message[int], error) { called = true })
			require.ErrorIs(t, err, mq.ErrClosed)
			assert.False(t, called, "done is not called when SendAsync fails")

			_, err = p.SendMessages(ctx, mq.Message[int]{Value: 1}, mq.Message[int]{Value: 2})
			require.ErrorIs(t, err, mq.ErrClosed)
			if !async {
				var be *mq.BatchError
				require.ErrorAs(t, err, &be)
				require.Len(t, be.Errors, 2)
				for _, e := range be.Errors {
					assert.ErrorIs(t, e, mq.ErrClosed)
				}
			}
		})
	}
}

func TestProducerSendWithEndedContext(t *testing.T) {
	p, err := newProducer[int](t, brokers, topic)
	require.NoError(t, err)
	defer closeProducer(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.Send(ctx, nil, 1)
	require.ErrorIs(t, err, context.Canceled)
	err = p.SendAsync(ctx, mq.Message[int]{Value: 1}, nil)
	require.ErrorIs(t, err, context.Canceled)
}

func TestProducerEncodeError(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(map[bool]string{false: "sync", true: "async"}[async], func(t *testing.T) {
			p, err := newProducer[any](t, brokers, topic, mq.WithAsync(async))
			require.NoError(t, err)
			defer closeProducer(t, p)
			ctx := context.Background()

			_, err = p.SendMessage(ctx, mq.Message[any]{Value: make(chan int)})
			require.Error(t, err)
			var jerr *json.UnsupportedTypeError
			require.ErrorAs(t, err, &jerr)
			assert.Contains(t, err.Error(), "mq: encode")

			err = p.SendAsync(ctx, mq.Message[any]{Value: func() {}}, func(mq.Message[any], error) {
				t.Error("done must not be called for a message that was not buffered")
			})
			require.ErrorAs(t, err, &jerr)

			_, err = p.SendMessages(ctx, mq.Message[any]{Value: 1}, mq.Message[any]{Value: make(chan int)})
			require.ErrorAs(t, err, &jerr)
			assert.Contains(t, err.Error(), "message 1")
		})
	}
}

func TestProducerCodecErrorIsReturned(t *testing.T) {
	boom := errors.New("boom")
	codec := mq.CodecFuncs[string]{
		EncodeFunc: func(string) ([]byte, error) { return nil, boom },
		DecodeFunc: func([]byte) (string, error) { return "", nil },
	}
	p, err := newProducer[string](t, brokers, topic, mq.WithCodec[string](codec))
	require.NoError(t, err)
	defer closeProducer(t, p)
	_, err = p.Send(context.Background(), nil, "hello")
	require.ErrorIs(t, err, boom)
}

func TestProducerRejectsMessageOverBatchBytes(t *testing.T) {
	const limit = 200
	p, err := newProducer[string](t, brokers, topic, mq.WithCodec[string](mq.StringCodec{}), mq.WithBatchBytes(limit))
	require.NoError(t, err)
	defer closeProducer(t, p)
	ctx := context.Background()
	big := strings.Repeat("x", limit)

	_, err = p.Send(ctx, []byte("conversation-1"), big)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exceeds the batch bytes limit of 200")

	// Key and headers count too.
	_, err = p.SendMessage(ctx, mq.Message[string]{Key: []byte(strings.Repeat("k", limit)), Value: "hi"})
	assert.ErrorContains(t, err, "exceeds the batch bytes limit")
	_, err = p.SendMessage(ctx, mq.Message[string]{Value: "hi", Headers: []mq.Header{{Key: "trace", Value: []byte(big)}}})
	assert.ErrorContains(t, err, "exceeds the batch bytes limit")

	err = p.SendAsync(ctx, mq.Message[string]{Value: big}, func(mq.Message[string], error) {
		t.Error("done must not be called for a rejected message")
	})
	assert.ErrorContains(t, err, "exceeds the batch bytes limit")

	_, err = p.SendMessages(ctx, mq.Message[string]{Value: "small"}, mq.Message[string]{Value: big})
	assert.ErrorContains(t, err, "message 1")
	assert.ErrorContains(t, err, "exceeds the batch bytes limit")
}

// ----- helpers -----

func opts(o ...mq.ProducerOption) []mq.ProducerOption  { return o }
func copts(o ...mq.ConsumerOption) []mq.ConsumerOption { return o }

// retry returns a valid policy changed by fn.
func retry(fn func(*mq.RetryPolicy)) mq.RetryPolicy {
	p := mq.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond, MaxBackoff: time.Second, Multiplier: 2, Jitter: 0.1}
	fn(&p)
	return p
}

// ----- validation edge cases -----

func TestRetryPolicyRejectsNaN(t *testing.T) {
	for _, p := range []mq.RetryPolicy{
		retry(func(p *mq.RetryPolicy) { p.Multiplier = math.NaN() }),
		retry(func(p *mq.RetryPolicy) { p.Jitter = math.NaN() }),
	} {
		_, err := newConsumer[int](t, brokers, topic, group, mq.WithRetryPolicy(p))
		require.ErrorIs(t, err, mq.ErrInvalidOption)
	}
}

func TestBrokerAddressPortIsValidated(t *testing.T) {
	for _, addr := range []string{"kafka:", "kafka:http9092", "kafka:99999"} {
		_, err := newProducer[int](t, []string{addr}, topic)
		require.ErrorIs(t, err, mq.ErrInvalidOption, addr)
		_, err = newConsumer[int](t, []string{addr}, topic, group)
		require.ErrorIs(t, err, mq.ErrInvalidOption, addr)
	}
}

func TestConsumerRejectsTimeoutsKafkaGoCannotEncode(t *testing.T) {
	huge := time.Duration(math.MaxInt32) * time.Millisecond
	for _, o := range [][]mq.ConsumerOption{
		copts(mq.WithSessionTimeout(huge)),
		copts(mq.WithRebalanceTimeout(huge)),
		copts(mq.WithHeartbeatInterval(huge), mq.WithSessionTimeout(2*huge)),
	} {
		_, err := newConsumer[int](t, brokers, topic, group, o...)
		require.ErrorIs(t, err, mq.ErrInvalidOption)
	}
}

func TestProducerSendMessagesWithNoMessages(t *testing.T) {
	p, err := newProducer[int](t, brokers, topic)
	require.NoError(t, err)
	defer closeProducer(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	res, err := p.SendMessages(ctx)
	require.NoError(t, err)
	assert.Empty(t, res)
}
