package mqtest_test

import (
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

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

// A broker that does not know a new topic yet (it learns of it from the
// controller after the others): CreateTopic waits until it does.
func TestCreateTopicWaitsForEveryBroker(t *testing.T) {
	clearEnv(t)
	emb := mqtest.New(t, mqtest.WithKfakeOptions(kfake.NumBrokers(3)))
	kf := emb.Kfake()
	var brokers []kmsg.MetadataResponseBroker
	for i, a := range kf.ListenAddrs() {
		host, port, err := net.SplitHostPort(a)
		require.NoError(t, err)
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host = int32(i), host
		p, err := strconv.Atoi(port)
		require.NoError(t, err)
		b.Port = int32(p)
		brokers = append(brokers, b)
	}
	const refusals = 5
	var mu sync.Mutex
	topic, refused := mqtest.UniqueName("lagging-broker"), 0
	kf.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		mreq := req.(*kmsg.MetadataRequest)
		mu.Lock()
		defer mu.Unlock()
		if kf.CurrentNode() != 2 || refused >= refusals || len(mreq.Topics) != 1 || *mreq.Topics[0].Topic != topic {
			return nil, nil, false
		}
		refused++
		resp := mreq.ResponseKind().(*kmsg.MetadataResponse)
		resp.Brokers = brokers // a lagging broker knows the others
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = kmsg.StringPtr(topic)
		rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})
	require.NoError(t, emb.CreateTopic(ctxT(t), topic, 2))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, refusals, refused, "CreateTopic returned while broker 2 still answered UNKNOWN_TOPIC_OR_PARTITION")
}
