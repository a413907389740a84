package mqtest_test

import (
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/mqkit/mq/mqtest"
)

// replicas returns the replica count of every partition of topic, from c's
// metadata cache (CreateTopic waits until that cache knows the topic).
func replicas(t *testing.T, c *mqtest.Cluster, topic string) []int {
	t.Helper()
	md, err := c.Client().Metadata(ctxT(t), &kafka.MetadataRequest{Topics: []string{topic}})
	require.NoError(t, err)
	require.Len(t, md.Topics, 1)
	var out []int
	for _, p := range md.Topics[0].Partitions {
		out = append(out, len(p.Replicas))
	}
	return out
}

func minISR(t *testing.T, c *mqtest.Cluster, topic string) (string, bool) {
	t.Helper()
	resp, err := c.Client().DescribeConfigs(ctxT(t), &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"min.insync.replicas"},
	}}})
	require.NoError(t, err)
	require.Len(t, resp.Resources, 1)
	require.NoError(t, resp.Resources[0].Error)
	for _, e := range resp.Resources[0].ConfigEntries {
		if e.ConfigName == "min.insync.replicas" {
			return e.ConfigValue, true
		}
	}
	return "", false
}

func TestCreateTopicReplicationFromEnv(t *testing.T) {
	clearEnv(t)
	emb := mqtest.New(t, mqtest.WithKfakeOptions(kfake.NumBrokers(3)))
	ext := mqtest.New(t, mqtest.WithBrokers(emb.Addrs()...))

	plain := ext.NewTopic(t, 2)
	assert.Equal(t, []int{1, 1}, replicas(t, ext, plain), "no variables: replication factor 1")

	t.Setenv(mqtest.EnvReplicationFactor, "3")
	t.Setenv(mqtest.EnvMinInsyncReplicas, "2")
	topic := ext.NewTopic(t, 2)
	assert.Equal(t, []int{3, 3}, replicas(t, ext, topic))
	v, ok := minISR(t, ext, topic)
	require.True(t, ok, "min.insync.replicas not described")
	assert.Equal(t, "2", v)

	// The embedded mode's broker is a single one: the variables do not apply.
	single := mqtest.New(t)
	own := single.NewTopic(t, 1)
	assert.Equal(t, []int{1}, replicas(t, single, own))
}

func TestCreateTopicReplicationBadEnv(t *testing.T) {
	clearEnv(t)
	emb := mqtest.New(t, mqtest.WithKfakeOptions(kfake.NumBrokers(3)))
	ext := mqtest.New(t, mqtest.WithBrokers(emb.Addrs()...))
	for _, tc := range []struct{ rf, isr, want string }{
		{"three", "", mqtest.EnvReplicationFactor},
		{"0", "", mqtest.EnvReplicationFactor},
		{"3", "-1", mqtest.EnvMinInsyncReplicas},
		{"2", "3", "is above"},
	} {
		t.Setenv(mqtest.EnvReplicationFactor, tc.rf)
		t.Setenv(mqtest.EnvMinInsyncReplicas, tc.isr)
		err := ext.CreateTopic(ctxT(t), mqtest.UniqueName("bad-env"), 1)
		require.Error(t, err, "rf %q, min ISR %q", tc.rf, tc.isr)
		assert.Contains(t, err.Error(), tc.want)
	}
}
