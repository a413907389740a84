package mqtest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/mqkit/mq/mqtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clearEnv makes the mode selection independent of the developer's shell.
func clearEnv(t *testing.T) {
	t.Setenv(mqtest.EnvMode, "")
	t.Setenv(mqtest.EnvBrokers, "")
	t.Setenv(mqtest.EnvReplicationFactor, "")
	t.Setenv(mqtest.EnvMinInsyncReplicas, "")
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEmbeddedStarts(t *testing.T) {
	clearEnv(t)
	c := mqtest.New(t)

	assert.Equal(t, mqtest.ModeEmbedded, c.Mode())
	require.Len(t, c.Addrs(), 1)
	assert.True(t, strings.HasPrefix(c.Addrs()[0], "127.0.0.1:"), "addr %q", c.Addrs()[0])
	require.NotNil(t, c.Kfake())
	require.NotNil(t, c.Client())

	md, err := c.Client().Metadata(ctxT(t), &kafka.MetadataRequest{})
	require.NoError(t, err)
	assert.Len(t, md.Brokers, 1)
}

func TestProduceEndOffsetsReadAll(t *testing.T) {
	clearEnv(t)
	c := mqtest.New(t)
	ctx := ctxT(t)
	topic := c.NewTopic(t, 3)

	var msgs []kafka.Message
	for i := range 10 {
		msgs = append(msgs, kafka.Message{
			Partition: i % 3,
			Key:       []byte(fmt.Sprintf("key-%d", i)),
			Value:     []byte(fmt.Sprintf("value-%d", i)),
			Headers:   []kafka.Header{{Key: "h", Value: []byte(fmt.Sprint(i))}},
		})
	}
	msgs[9].Value = []byte{0xff, 0x00, 0xfe} // poison bytes survive untouched
	require.NoError(t, c.Produce(ctx, topic, msgs...))

	ends, err := c.EndOffsets(ctx, topic)
	require.NoError(t, err)
	assert.Equal(t, map[int]int64{0: 4, 1: 3, 2: 3}, ends)
	var sum int64
	for _, o := range ends {
		sum += o
	}
	assert.EqualValues(t, 10, sum)

	got, err := c.ReadAll(ctx, topic, 10)
	require.NoError(t, err)
	require.Len(t, got, 10)
	want := make(map[string]kafka.Message, len(msgs))
	for _, m := range msgs {
		want[string(m.Key)] = m
	}
	for i, m := range got {
		w, ok := want[string(m.Key)]
		require.True(t, ok, "unexpected key %q", m.Key)
		assert.Equal(t, topic, m.Topic)
		assert.Equal(t, w.Partition, m.Partition, "partition of %s", m.Key)
		assert.Equal(t, w.Value, m.Value, "value of %s", m.Key)
		require.Len(t, m.Headers, 1, "headers of %s", m.Key)
		assert.Equal(t, w.Headers[0].Key, m.Headers[0].Key)
		assert.Equal(t, w.Headers[0].Value, m.Headers[0].Value)
		if i > 0 && got[i-1].Partition == m.Partition {
			assert.Equal(t, got[i-1].Offset+1, m.Offset, "offsets in partition %d", m.Partition)
		}
	}
	// Order within a partition is the produce order.
	var p0 []string
	for _, m := range got {
		if m.Partition == 0 {
			p0 = append(p0, string(m.Key))
		}
	}
	assert.Equal(t, []string{"key-0", "key-3", "key-6", "key-9"}, p0)
}

func TestReadAllStopsAtContext(t *testing.T) {
	clearEnv(t)
	c := mqtest.New(t)
	topic := c.NewTopic(t, 2)
	require.NoError(t, c.Produce(ctxT(t), topic, kafka.Message{Value: []byte("only")}))

	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	got, err := c.ReadAll(ctx, topic, 5)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Len(t, got, 1)
	assert.Equal(t, []byte("only"), got[0].Value)
}

func TestCommittedOffsetsUnknownGroup(t *testing.T) {
	clearEnv(t)
	c := mqtest.New(t)
	topic := c.NewTopic(t, 3)

	got, err := c.CommittedOffsets(ctxT(t), mqtest.UniqueName("group"), topic)
	require.NoError(t, err)
	assert.Equal(t, map[int]int64{0: -1, 1: -1, 2: -1}, got)
}

func TestCommittedOffsetsAfterCommit(t *testing.T) {
	clearEnv(t)
	c := mqtest.New(t)
	ctx := ctxT(t)
	topic := c.NewTopic(t, 2)
	group := mqtest.UniqueName("group")

	// A simple (memberless) commit, as admin tools do it.
	resp, err := c.Client().OffsetCommit(ctx, &kafka.OffsetCommitRequest{
		GroupID:      group,
		GenerationID: -1,
		Topics:       map[string][]kafka.OffsetCommit{topic: {{Partition: 1, Offset: 7}}},
	})
	require.NoError(t, err)
	for _, ps := range resp.Topics {
		for _, p := range ps {
			require.NoError(t, p.Error)
		}
	}

	got, err := c.CommittedOffsets(ctx, group, topic)
	require.NoError(t, err)
	assert.Equal(t, map[int]int64{0: -1, 1: 7}, got)
}

func TestCreateTopicIdempotent(t *testing.T) {
	clearEnv(t)
	c := mqtest.New(t, mqtest.WithDefaultPartitions(4))
	ctx := ctxT(t)
	topic := mqtest.UniqueName(t.Name())

	start := time.Now()
	require.NoError(t, c.CreateTopic(ctx, topic, 0)) // default partitions
	t.Logf("CreateTopic took %s", time.Since(start))
	require.NoError(t, c.CreateTopic(ctx, topic, 4))

	err := c.CreateTopic(ctx, topic, 2)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exists with 4 partitions, want 2")

	ends, err := c.EndOffsets(ctx, topic)
	require.NoError(t, err)
	assert.Equal(t, map[int]int64{0: 0, 1: 0, 2: 0, 3: 0}, ends)

	require.NoError(t, c.DeleteTopic(ctx, topic))
	require.NoError(t, c.DeleteTopic(ctx, topic), "deleting twice")
}

func TestMissingTopic(t *testing.T) {
	clearEnv(t)
	c := mqtest.New(t)
	ctx := ctxT(t)
	missing := mqtest.UniqueName("missing")

	_, err := c.EndOffsets(ctx, missing)
	require.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
	_, err = c.ReadAll(ctx, missing, 1)
	require.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
	err = c.Produce(ctx, missing, kafka.Message{Value: []byte("x")})
	require.ErrorIs(t, err, kafka.UnknownTopicOrPartition)

	// Asking about the topic must not have auto-created it.
	_, err = c.EndOffsets(ctx, missing)
	require.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
}

func TestProduceRejectsBadPartition(t *testing.T) {
	clearEnv(t)
	c := mqtest.New(t)
	topic := c.NewTopic(t, 1)
	err := c.Produce(ctxT(t), topic, kafka.Message{Partition: 3, Value: []byte("x")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "partition 3 does not exist")
}

// A topic created by another client must become usable even though the
// helper client's metadata cache has not seen it yet.
func TestTopicCreatedElsewhere(t *testing.T) {
	clearEnv(t)
	c := mqtest.New(t)
	ctx := ctxT(t)
	c.NewTopic(t, 1) // warm the helper client's metadata cache
	topic := mqtest.UniqueName(t.Name())

	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	other := &kafka.Client{Addr: kafka.TCP(c.Addrs()...), Transport: tr}
	_, err := other.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 2, ReplicationFactor: 1}},
	})
	require.NoError(t, err)

	start := time.Now()
	require.NoError(t, c.Produce(ctx, topic, kafka.Message{Partition: 1, Value: []byte("x")}))
	t.Logf("topic created elsewhere usable after %s", time.Since(start))
	ends, err := c.EndOffsets(ctx, topic)
	require.NoError(t, err)
	assert.Equal(t, map[int]int64{0: 0, 1: 1}, ends)
}

func TestNewTopicNames(t *testing.T) {
	clearEnv(t)
	c := mqtest.New(t)
	t.Run("sub test/with spaces & symbols", func(t *testing.T) {
		a := c.NewTopic(t, 1)
		b := c.NewTopic(t, 1)
		assert.NotEqual(t, a, b)
		assert.True(t, strings.HasPrefix(a, "TestNewTopicNames-sub_test-with_spaces_-_symbols-"), a)
	})
}

func TestUniqueName(t *testing.T) {
	tests := []struct {
		prefix, wantPrefix string
	}{
		{"orders", "orders-"},
		{"", "mqtest-"},
		{"a/b c:d", "a-b-c-d-"},
		{"ok._-", "ok._--"},
		{strings.Repeat("x", 500), strings.Repeat("x", 200) + "-"},
	}
	for _, tt := range tests {
		got := mqtest.UniqueName(tt.prefix)
		assert.True(t, strings.HasPrefix(got, tt.wantPrefix), "UniqueName(%q) = %q", tt.prefix, got)
		assert.Len(t, got, len(tt.wantPrefix)+12, "UniqueName(%q) = %q", tt.prefix, got)
		assert.LessOrEqual(t, len(got), 249)
	}
	assert.NotEqual(t, mqtest.UniqueName("x"), mqtest.UniqueName("x"))
}

func TestExternalWithoutBrokers(t *testing.T) {
	clearEnv(t)
	for name, opts := range map[string][]mqtest.Option{
		"option": {mqtest.WithMode(mqtest.ModeExternal)},
		"env":    nil,
	} {
		t.Run(name, func(t *testing.T) {
			if opts == nil {
				t.Setenv(mqtest.EnvMode, "external")
			}
			c, err := mqtest.NewCluster(ctxT(t), opts...)
			require.ErrorIs(t, err, mqtest.ErrNoBrokers)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), "KAFKA_BROKERS")
		})
	}
}

func TestExternalUnreachable(t *testing.T) {
	clearEnv(t)
	// Take a free port and close it again, so nothing listens there.
	kf := mqtest.New(t)
	addr := kf.Addrs()[0]
	require.NoError(t, kf.Close())

	t.Setenv(mqtest.EnvBrokers, addr) // selects external mode
	// A connect timeout far beyond the test's own: failing at all shows the
	// refusal ended the check, not the timeout.
	c, err := mqtest.NewCluster(ctxT(t), mqtest.WithConnectTimeout(time.Hour))
	require.Error(t, err)
	assert.Nil(t, c)
	assert.Contains(t, err.Error(), addr)
	assert.Contains(t, err.Error(), "cannot use external Kafka brokers")
	assert.Contains(t, err.Error(), "connection refused")
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
}

// An address that answers but is not Kafka must fail fast and cleanly:
// handed to kafka-go, such a reply leaves a goroutine spinning.
func TestExternalNotKafka(t *testing.T) {
	clearEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { // an HTTP-ish server that answers anything with a 400
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Write([]byte("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n"))
			_ = conn.Close()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	addr := ln.Addr().String()

	// A connect timeout far beyond the test's own: the first reply decides.
	c, err := mqtest.NewCluster(ctxT(t), mqtest.WithBrokers(addr), mqtest.WithConnectTimeout(time.Hour))
	require.Error(t, err)
	assert.Nil(t, c)
	assert.Contains(t, err.Error(), addr+" does not answer like a Kafka broker")
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
}

func TestExternalAgainstEmbedded(t *testing.T) {
	clearEnv(t)
	emb := mqtest.New(t)

	ext := mqtest.New(t, mqtest.WithBrokers(emb.Addrs()...))
	assert.Equal(t, mqtest.ModeExternal, ext.Mode())
	assert.Nil(t, ext.Kfake())
	assert.Equal(t, emb.Addrs(), ext.Addrs())

	topic := ext.NewTopic(t, 1) // deleted again by t.Cleanup
	require.NoError(t, ext.Produce(ctxT(t), topic, kafka.Message{Value: []byte("v")}))
	got, err := emb.ReadAll(ctxT(t), topic, 1)
	require.NoError(t, err)
	assert.Equal(t, []byte("v"), got[0].Value)
}

// Without mqtest/container linked in, container mode is not available and
// the error says which module provides it; it never falls back.
func TestContainerModeNeedsItsModule(t *testing.T) {
	clearEnv(t)
	for name, set := range map[string]func(t *testing.T) []mqtest.Option{
		"option": func(*testing.T) []mqtest.Option { return []mqtest.Option{mqtest.WithMode(mqtest.ModeContainer)} },
		"env": func(t *testing.T) []mqtest.Option {
			t.Setenv(mqtest.EnvMode, "container")
			return nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := mqtest.NewCluster(ctxT(t), set(t)...)
			require.ErrorIs(t, err, mqtest.ErrModeNotAvailable)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), "github.com/mqkit/mq/mqtest/container")
		})
	}
}

// A registered provider serves its mode, gets NewCluster's options, and the
// cluster it attaches calls its release function once, on Close.
func TestProviderAndAttach(t *testing.T) {
	clearEnv(t)
	backing := mqtest.New(t) // the "started" broker
	var released int
	var gotOpts int
	mqtest.RegisterProvider(mqtest.ModeContainer, func(ctx context.Context, opts ...mqtest.Option) (*mqtest.Cluster, error) {
		gotOpts = len(opts)
		return mqtest.Attach(ctx, mqtest.ModeContainer, backing.Addrs(), func() error { released++; return nil }, opts...)
	})
	t.Cleanup(func() { mqtest.RegisterProvider(mqtest.ModeContainer, nil) })

	t.Setenv(mqtest.EnvMode, "container")
	c, err := mqtest.NewCluster(ctxT(t), mqtest.WithDefaultPartitions(3))
	require.NoError(t, err)
	assert.Equal(t, 1, gotOpts)
	assert.Equal(t, mqtest.ModeContainer, c.Mode())
	assert.Equal(t, backing.Addrs(), c.Addrs())
	assert.Nil(t, c.Kfake())
	require.NoError(t, c.CreateTopic(ctxT(t), "attached", 0))
	ends, err := backing.EndOffsets(ctxT(t), "attached")
	require.NoError(t, err)
	assert.Len(t, ends, 3, "WithDefaultPartitions reached the attached cluster")

	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	assert.Equal(t, 1, released)

	_, err = mqtest.Attach(ctxT(t), mqtest.ModeContainer, nil, func() error { released++; return nil })
	require.ErrorIs(t, err, mqtest.ErrNoBrokers)
	assert.Equal(t, 2, released, "a failed Attach releases what was started")
}

func TestUnknownMode(t *testing.T) {
	clearEnv(t)
	t.Setenv(mqtest.EnvMode, "docker")
	_, err := mqtest.NewCluster(ctxT(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"docker"`)
	assert.Contains(t, err.Error(), mqtest.EnvMode)

	_, err = mqtest.NewCluster(ctxT(t), mqtest.WithMode("nope"))
	require.Error(t, err)
}

func TestModeSelection(t *testing.T) {
	clearEnv(t)
	emb := mqtest.New(t)

	t.Run("env embedded beats KAFKA_BROKERS", func(t *testing.T) {
		t.Setenv(mqtest.EnvMode, "Embedded")
		t.Setenv(mqtest.EnvBrokers, "127.0.0.1:1")
		c := mqtest.New(t)
		assert.Equal(t, mqtest.ModeEmbedded, c.Mode())
	})
	t.Run("KAFKA_BROKERS selects external", func(t *testing.T) {
		t.Setenv(mqtest.EnvBrokers, " "+strings.Join(emb.Addrs(), " , ")+" ,")
		c := mqtest.New(t)
		assert.Equal(t, mqtest.ModeExternal, c.Mode())
		assert.Equal(t, emb.Addrs(), c.Addrs())
	})
	t.Run("WithMode beats env", func(t *testing.T) {
		t.Setenv(mqtest.EnvMode, "container")
		c := mqtest.New(t, mqtest.WithMode(mqtest.ModeEmbedded))
		assert.Equal(t, mqtest.ModeEmbedded, c.Mode())
	})
}

func TestCloseIdempotent(t *testing.T) {
	clearEnv(t)
	c, err := mqtest.NewCluster(ctxT(t))
	require.NoError(t, err)
	topic := mqtest.UniqueName("t")
	require.NoError(t, c.CreateTopic(ctxT(t), topic, 1))

	require.NoError(t, c.Close())
	require.NoError(t, c.Close())

	_, err = c.EndOffsets(ctxT(t), topic)
	require.ErrorIs(t, err, mqtest.ErrClosed)
	require.ErrorIs(t, c.Produce(ctxT(t), topic, kafka.Message{}), mqtest.ErrClosed)
	require.True(t, errors.Is(c.CreateTopic(ctxT(t), "x", 1), mqtest.ErrClosed))
}

func TestProduceReturnsBrokerErrors(t *testing.T) {
	clearEnv(t)
	c := mqtest.New(t, mqtest.WithKfakeOptions()) // accepted, no-op
	topic := c.NewTopic(t, 1)

	// Fault injection through the fake: reject the next produce request.
	rejectNextProduce(c, kerr.TopicAuthorizationFailed)
	err := c.Produce(ctxT(t), topic, kafka.Message{Value: []byte("x")})
	require.ErrorIs(t, err, kafka.TopicAuthorizationFailed)

	// The control function ran once; the next produce succeeds.
	require.NoError(t, c.Produce(ctxT(t), topic, kafka.Message{Value: []byte("y")}))
	got, err := c.ReadAll(ctxT(t), topic, 1)
	require.NoError(t, err)
	assert.Equal(t, []byte("y"), got[0].Value)
}

// A temporary error makes Produce retry, and the retry carries the same keys
// and values (a retry that reused the first attempt's consumed record readers
// once wrote empty records: it made TestRedrive flaky on real brokers).
func TestProduceRetrySendsTheSameRecords(t *testing.T) {
	clearEnv(t)
	c := mqtest.New(t)
	topic := c.NewTopic(t, 2)
	rejectNextProduce(c, kerr.NotLeaderForPartition)
	msgs := []kafka.Message{
		{Partition: 0, Key: []byte("k0"), Value: []byte("v0"), Headers: []kafka.Header{{Key: "h", Value: []byte("0")}}},
		{Partition: 1, Key: []byte("k1"), Value: []byte("v1")},
		{Partition: 0, Key: []byte("k2"), Value: []byte("v2")},
	}
	require.NoError(t, c.Produce(ctxT(t), topic, msgs...))
	got, err := c.ReadAll(ctxT(t), topic, 3)
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i, want := range []kafka.Message{msgs[0], msgs[2], msgs[1]} { // sorted by partition, offset
		assert.Equal(t, want.Partition, got[i].Partition)
		assert.Equal(t, string(want.Key), string(got[i].Key))
		assert.Equal(t, string(want.Value), string(got[i].Value))
		assert.Equal(t, len(want.Headers), len(got[i].Headers))
	}
}

// rejectNextProduce makes the embedded broker answer the next produce request
// with code for every partition in it.
func rejectNextProduce(c *mqtest.Cluster, code *kerr.Error) {
	c.Kfake().ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		preq := req.(*kmsg.ProduceRequest)
		resp := preq.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range preq.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = code.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}
