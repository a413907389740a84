package container_test

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tcexec "github.com/testcontainers/testcontainers-go/exec"

	"github.com/mqkit/mq/mqtest"
	"github.com/mqkit/mq/mqtest/container"
)

// TestContainerModeAgainstDocker runs the helpers against a real broker in
// a container. It needs Docker and a Kafka image, so it runs only when
// MQ_TEST_BROKER=container, e.g.
//
//	MQ_TEST_BROKER=container KAFKA_TEST_IMAGE=local/kafka:4.4.0 \
//	TESTCONTAINERS_RYUK_DISABLED=true go test ./mqtest/ -run Container
//
// Everywhere else it skips and says why.
func TestContainerModeAgainstDocker(t *testing.T) {
	if os.Getenv(mqtest.EnvMode) != string(mqtest.ModeContainer) {
		t.Skipf("container-mode test: needs Docker and a Kafka image; set %s=%s (and %s, e.g. local/kafka:4.4.0 from scripts/kafka-image/build.sh) to run it",
			mqtest.EnvMode, mqtest.ModeContainer, mqtest.EnvContainerImage)
	}
	start := time.Now()
	c := mqtest.New(t) // mode from MQ_TEST_BROKER, provided by this package
	t.Logf("container broker %v ready in %s (image %q)", c.Addrs(), time.Since(start).Round(time.Millisecond), os.Getenv(mqtest.EnvContainerImage))
	require.Equal(t, mqtest.ModeContainer, c.Mode())
	require.Len(t, c.Addrs(), 1)
	require.Nil(t, c.Kfake())
	require.NotNil(t, container.Container(c))

	t.Run("Metadata", func(t *testing.T) {
		md, err := c.Client().Metadata(ctxT(t), &kafka.MetadataRequest{})
		require.NoError(t, err)
		require.Len(t, md.Brokers, 1)
		assert.Equal(t, c.Addrs()[0], md.Brokers[0].Host+":"+itoa(md.Brokers[0].Port), "advertised listener = mapped address")
	})

	t.Run("CreateTopicIdempotent", func(t *testing.T) {
		ctx := ctxT(t)
		topic := mqtest.UniqueName(t.Name())
		require.NoError(t, c.CreateTopic(ctx, topic, 4))
		require.NoError(t, c.CreateTopic(ctx, topic, 4))
		err := c.CreateTopic(ctx, topic, 2)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "exists with 4 partitions, want 2")
		ends, err := c.EndOffsets(ctx, topic)
		require.NoError(t, err)
		assert.Equal(t, map[int]int64{0: 0, 1: 0, 2: 0, 3: 0}, ends)
		require.NoError(t, c.DeleteTopic(ctx, topic))
		require.NoError(t, c.DeleteTopic(ctx, topic), "deleting twice")
	})

	t.Run("ProduceEndOffsetsReadAll", func(t *testing.T) {
		ctx := ctxT(t)
		topic := c.NewTopic(t, 3)
		var msgs []kafka.Message
		for i := range 9 {
			msgs = append(msgs, kafka.Message{
				Partition: i % 3,
				Key:       []byte("key-" + itoa(i)),
				Value:     []byte("value-" + itoa(i)),
				Headers:   []kafka.Header{{Key: "h", Value: []byte(itoa(i))}},
			})
		}
		msgs[8].Value = []byte{0xff, 0x00, 0xfe} // raw bytes survive untouched
		require.NoError(t, c.Produce(ctx, topic, msgs...))

		ends, err := c.EndOffsets(ctx, topic)
		require.NoError(t, err)
		assert.Equal(t, map[int]int64{0: 3, 1: 3, 2: 3}, ends)

		got, err := c.ReadAll(ctx, topic, 9)
		require.NoError(t, err)
		require.Len(t, got, 9)
		for i, m := range got {
			w := msgs[(i%3)*3+i/3] // sorted by partition, then offset
			assert.Equal(t, topic, m.Topic)
			assert.Equal(t, w.Partition, m.Partition)
			assert.Equal(t, int64(i%3), m.Offset)
			assert.Equal(t, w.Key, m.Key)
			assert.Equal(t, w.Value, m.Value)
			require.Len(t, m.Headers, 1)
			assert.Equal(t, w.Headers[0], m.Headers[0])
		}
	})

	t.Run("CommittedOffsets", func(t *testing.T) {
		ctx := ctxT(t)
		topic := c.NewTopic(t, 2)
		group := mqtest.UniqueName("group")

		got, err := c.CommittedOffsets(ctx, group, topic)
		require.NoError(t, err)
		assert.Equal(t, map[int]int64{0: -1, 1: -1}, got, "unknown group")

		require.NoError(t, c.Produce(ctx, topic, kafka.Message{Partition: 1, Value: []byte("x")}))
		// A simple (memberless) commit, as admin tools do it.
		resp, err := c.Client().OffsetCommit(ctx, &kafka.OffsetCommitRequest{
			GroupID:      group,
			GenerationID: -1,
			Topics:       map[string][]kafka.OffsetCommit{topic: {{Partition: 1, Offset: 1}}},
		})
		require.NoError(t, err)
		for _, ps := range resp.Topics {
			for _, p := range ps {
				require.NoError(t, p.Error)
			}
		}
		got, err = c.CommittedOffsets(ctx, group, topic)
		require.NoError(t, err)
		assert.Equal(t, map[int]int64{0: -1, 1: 1}, got)
	})

	t.Run("MissingTopicNotAutoCreated", func(t *testing.T) {
		ctx := ctxT(t)
		missing := mqtest.UniqueName("missing")
		_, err := c.EndOffsets(ctx, missing)
		require.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
		err = c.Produce(ctx, missing, kafka.Message{Value: []byte("x")})
		require.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
		_, err = c.ReadAll(ctx, missing, 1)
		require.ErrorIs(t, err, kafka.UnknownTopicOrPartition)

		// A client that asks for auto-creation does not get it either
		// (mqtest sets auto.create.topics.enable=false).
		conn, err := kafka.DialContext(ctx, "tcp", c.Addrs()[0])
		require.NoError(t, err)
		_, _ = conn.ReadPartitions(missing)
		require.NoError(t, conn.Close())
		_, err = c.EndOffsets(ctx, missing)
		require.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
	})

	t.Run("ExecKafkaTopics", func(t *testing.T) {
		ctx := ctxT(t)
		topic := c.NewTopic(t, 1)
		code, out, err := container.Container(c).Exec(ctx,
			[]string{"kafka-topics", "--bootstrap-server", "localhost:9092", "--list"}, tcexec.Multiplexed())
		require.NoError(t, err)
		b, err := io.ReadAll(out)
		require.NoError(t, err)
		require.Equal(t, 0, code, "output: %s", b)
		assert.Contains(t, strings.Fields(string(b)), topic)
	})

	t.Run("CloseRemovesContainer", func(t *testing.T) {
		ctr := container.Container(c)
		require.NoError(t, c.Close())
		require.NoError(t, c.Close(), "idempotent")
		_, err := ctr.State(context.Background())
		require.Error(t, err, "container still exists")
		assert.Nil(t, container.Container(c), "forgotten after Close")
		_, err = c.EndOffsets(ctxT(t), "x")
		require.ErrorIs(t, err, mqtest.ErrClosed)
	})
}

// An explicitly chosen container mode that cannot start fails with a clear
// error, with or without Docker, and never falls back to another mode.
func TestContainerImageOption(t *testing.T) {
	clearEnv(t)
	t.Setenv(mqtest.EnvContainerImage, "mqtest.invalid/from-env:1")
	const image = "mqtest.invalid/from-option:1"
	c, err := container.NewCluster(ctxT(t), container.WithImage(image))
	require.ErrorIs(t, err, mqtest.ErrModeNotAvailable)
	assert.Nil(t, c)
	if strings.Contains(err.Error(), "not present locally") { // Docker is running
		assert.Contains(t, err.Error(), image)
		assert.NotContains(t, err.Error(), "from-env")
		assert.Contains(t, err.Error(), "scripts/kafka-image/build.sh")
	} else {
		assert.Contains(t, err.Error(), "Docker daemon")
	}
	t.Logf("error: %v", err)
}

func itoa(i int) string { return strconv.Itoa(i) }
