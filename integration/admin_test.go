package integration

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqtest"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topic administration (mq.CreateTopics, DeleteTopics, DescribeTopic) on the
// test broker (kfake, or the one of KAFKA_BROKERS) and on dedicated kfake
// clusters where a test needs several brokers or injected broker errors.

// adminTopic returns a fresh topic name that is deleted after the test.
func adminTopic(t *testing.T, brokers []string) string {
	t.Helper()
	name := mqtest.UniqueName(t.Name())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		assert.NoError(t, mq.DeleteTopics(ctx, brokers, []string{name}))
	})
	return name
}

// Creating a topic twice succeeds; creating it with another partition count
// fails with a *PartitionCountError; the topic is usable as soon as
// CreateTopics returns (a producer and a consumer created afterwards find
// it); DescribeTopic reports partitions and the configs set; DeleteTopics
// removes it, and deleting again is no error.
func TestCreateTopicsIdempotent(t *testing.T) {
	brokers := cluster.Addrs()
	ctx := ctxT(t)
	topic := adminTopic(t, brokers)
	spec := mq.TopicSpec{Name: topic, Partitions: 3, ReplicationFactor: 1,
		Configs: map[string]string{"retention.ms": "3600000", "cleanup.policy": "delete"}}
	require.NoError(t, mq.CreateTopics(ctx, brokers, []mq.TopicSpec{spec}))
	require.NoError(t, mq.CreateTopics(ctx, brokers, []mq.TopicSpec{spec}), "an existing topic with the same partitions is success")

	d, err := mq.DescribeTopic(ctx, brokers, topic)
	require.NoError(t, err)
	assert.Equal(t, topic, d.Name)
	require.Len(t, d.Partitions, 3)
	for i, p := range d.Partitions {
		assert.Equal(t, i, p.ID)
		assert.GreaterOrEqual(t, p.Leader, 0, "partition %d has a leader", i)
		assert.Len(t, p.Replicas, 1)
	}
	assert.Equal(t, 1, d.ReplicationFactor)
	assert.Equal(t, "3600000", d.Configs["retention.ms"])
	assert.Equal(t, "delete", d.Configs["cleanup.policy"])

	conflict := spec
	conflict.Partitions = 5
	err = mq.CreateTopics(ctx, brokers, []mq.TopicSpec{conflict})
	var pce *mq.PartitionCountError
	require.ErrorAs(t, err, &pce)
	assert.Equal(t, mq.PartitionCountError{Topic: topic, Partitions: 3, Requested: 5}, *pce)
	assert.Contains(t, err.Error(), "already exists with 3 partition(s), not the 5 requested")

	// Usable at once: a new producer and consumer (own transports) find it.
	produceChat(t, newProducer(t, topic), 0, 10)
	c, err := mq.NewKafkaConsumer[ChatMessage](brokers, topic, mqtest.UniqueName("g"), fastConsumer(t)...)
	require.NoError(t, err)
	rec := newRecorder()
	require.NoError(t, c.RegisterHandler(rec))
	r := start(c)
	require.Eventually(t, func() bool { return rec.unique() == 10 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))

	require.NoError(t, mq.DeleteTopics(ctx, brokers, []string{topic}))
	_, err = mq.DescribeTopic(ctx, brokers, topic)
	var terr *mq.TopicError
	require.ErrorAs(t, err, &terr)
	assert.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
	require.NoError(t, mq.DeleteTopics(ctx, brokers, []string{topic}), "deleting a missing topic is no error")
	// Deleted everywhere when DeleteTopics returns: it can be created again.
	require.NoError(t, mq.CreateTopics(ctx, brokers, []mq.TopicSpec{conflict}))
	d, err = mq.DescribeTopic(ctx, brokers, topic)
	require.NoError(t, err)
	assert.Len(t, d.Partitions, 5)
}

// A replication factor above the broker count fails with a message that
// says so; the other topics of the call are still created.
func TestCreateTopicsReplicationFactorAboveBrokers(t *testing.T) {
	brokers := cluster.Addrs()
	ctx := ctxT(t)
	md, err := cluster.Client().Metadata(ctx, &kafka.MetadataRequest{})
	require.NoError(t, err)
	n := len(md.Brokers)
	bad, good := adminTopic(t, brokers), adminTopic(t, brokers)
	err = mq.CreateTopics(ctx, brokers, []mq.TopicSpec{
		{Name: bad, Partitions: 1, ReplicationFactor: n + 1},
		{Name: good, Partitions: 2, ReplicationFactor: 1},
	})
	var rfe *mq.ReplicationFactorError
	require.ErrorAs(t, err, &rfe)
	assert.Equal(t, bad, rfe.Topic)
	assert.Equal(t, n+1, rfe.ReplicationFactor)
	assert.Equal(t, n, rfe.Brokers)
	assert.Contains(t, err.Error(), "replication factor")
	assert.Contains(t, err.Error(), "broker(s) of the cluster")
	d, err := mq.DescribeTopic(ctx, brokers, good)
	require.NoError(t, err, "the valid topic of the same call is created")
	assert.Len(t, d.Partitions, 2)
	_, err = mq.DescribeTopic(ctx, brokers, bad)
	assert.ErrorIs(t, err, kafka.UnknownTopicOrPartition)
}

// The broker validates configs: an invalid value fails with a *TopicError
// carrying the broker's INVALID_CONFIG message. kfake accepts any config, so
// this needs a real broker.
func TestRealBrokerCreateTopicsInvalidConfig(t *testing.T) {
	requireRealBroker(t)
	brokers := cluster.Addrs()
	topic := adminTopic(t, brokers)
	err := mq.CreateTopics(ctxT(t), brokers, []mq.TopicSpec{{Name: topic, Partitions: 1, ReplicationFactor: 1,
		Configs: map[string]string{"retention.ms": "soon"}}})
	var terr *mq.TopicError
	require.ErrorAs(t, err, &terr)
	assert.Equal(t, "create", terr.Op)
	assert.ErrorIs(t, err, kafka.InvalidConfiguration)
	assert.Contains(t, err.Error(), "retention.ms", "the broker's message names the config")
	t.Logf("error: %v", err)
}

// On a three-broker cluster CreateTopics waits until every broker knows the
// topic's leaders, and the broker's own INVALID_REPLICATION_FACTOR and
// INVALID_CONFIG answers map to typed errors with the broker's message
// (injected here, since the pre-check and kfake's leniency keep them from
// happening naturally).
func TestCreateTopicsThreeBrokersAndBrokerErrors(t *testing.T) {
	kf, err := kfake.NewCluster(kfake.NumBrokers(3))
	require.NoError(t, err)
	t.Cleanup(kf.Close)
	brokers := kf.ListenAddrs()
	ctx := ctxT(t)

	require.NoError(t, mq.CreateTopics(ctx, brokers, []mq.TopicSpec{{Name: "orders", Partitions: 6, ReplicationFactor: 3}}))
	for _, addr := range brokers { // every broker answers with the topic, led
		cl := &kafka.Client{Addr: kafka.TCP(addr), Transport: &kafka.Transport{}}
		md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"orders"}})
		require.NoError(t, err)
		require.Len(t, md.Topics, 1)
		assert.Len(t, md.Topics[0].Partitions, 6)
		cl.Transport.(*kafka.Transport).CloseIdleConnections()
	}
	d, err := mq.DescribeTopic(ctx, brokers, "orders")
	require.NoError(t, err)
	assert.Equal(t, 3, d.ReplicationFactor)

	err = mq.CreateTopics(ctx, brokers, []mq.TopicSpec{{Name: "too-many-replicas", Partitions: 1, ReplicationFactor: 4}})
	var rfe *mq.ReplicationFactorError
	require.ErrorAs(t, err, &rfe)
	assert.Equal(t, 3, rfe.Brokers)
	assert.NoError(t, rfe.Err, "caught before asking the broker")

	inject := func(code int16, msg string) {
		kf.ControlKey(int16(kmsg.CreateTopics), func(req kmsg.Request) (kmsg.Response, error, bool) {
			ct := req.(*kmsg.CreateTopicsRequest)
			resp := ct.ResponseKind().(*kmsg.CreateTopicsResponse)
			for _, rt := range ct.Topics {
				st := kmsg.NewCreateTopicsResponseTopic()
				st.Topic, st.ErrorCode, st.ErrorMessage = rt.Topic, code, &msg
				resp.Topics = append(resp.Topics, st)
			}
			return resp, nil, true
		})
	}
	inject(kerr.InvalidReplicationFactor.Code, "Unable to replicate the partition 3 time(s): only 2 broker(s) are registered.")
	err = mq.CreateTopics(ctx, brokers, []mq.TopicSpec{{Name: "fenced", Partitions: 1, ReplicationFactor: 3}})
	require.ErrorAs(t, err, &rfe)
	assert.ErrorIs(t, err, kafka.InvalidReplicationFactor)
	assert.Contains(t, err.Error(), "only 2 broker(s) are registered", "the broker's message is kept")

	inject(kerr.InvalidConfig.Code, "Invalid value soon for configuration retention.ms: Not a number of type LONG")
	err = mq.CreateTopics(ctx, brokers, []mq.TopicSpec{{Name: "bad-config", Partitions: 1,
		Configs: map[string]string{"retention.ms": "soon"}}})
	var terr *mq.TopicError
	require.ErrorAs(t, err, &terr)
	assert.Equal(t, "bad-config", terr.Topic)
	assert.ErrorIs(t, err, kafka.InvalidConfiguration)
	assert.Contains(t, err.Error(), "Not a number of type LONG")
}

// Recoverer.TopicSpecs gives the retry and dead-letter topics the main
// topic's settings; once created, a consumer with that recoverer starts (Run
// checks they exist) and uses them.
func TestCreateRecovererTopics(t *testing.T) {
	brokers := cluster.Addrs()
	ctx := ctxT(t)
	topic := adminTopic(t, brokers)
	r := mq.RetryTopicRecoverer([]time.Duration{10 * time.Millisecond}, "")
	specs := r.TopicSpecs(mq.TopicSpec{Name: topic, Partitions: 2, ReplicationFactor: 1,
		Configs: map[string]string{"retention.ms": "86400000"}})
	require.Len(t, specs, 3)
	for _, s := range specs[1:] {
		t.Cleanup(func() { _ = mq.DeleteTopics(context.Background(), brokers, []string{s.Name}) })
	}
	require.NoError(t, mq.CreateTopics(ctx, brokers, specs))
	for _, name := range []string{topic, topic + ".retry.1", topic + ".dlt"} {
		d, err := mq.DescribeTopic(ctx, brokers, name)
		require.NoError(t, err, name)
		assert.Len(t, d.Partitions, 2, name)
		assert.Equal(t, "86400000", d.Configs["retention.ms"], name)
	}

	produceChat(t, newProducer(t, topic), 0, 10)
	c, err := mq.NewKafkaConsumer[ChatMessage](brokers, topic, mqtest.UniqueName("g"), fastConsumer(t, mq.WithRecoverer(r))...)
	require.NoError(t, err)
	rec := newRecorder()
	var failures atomic.Int32
	require.NoError(t, c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[ChatMessage]) error {
		if m.Value.ID == 4 && failures.Add(1) <= 3 { // the blocking attempts of fastConsumer's policy
			return errors.New("not yet")
		}
		return rec.Handle(ctx, m)
	}))
	run := start(c)
	require.Eventually(t, func() bool { return rec.unique() == 10 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, run.stop(t))
	assert.EqualValues(t, 1, c.Stats().RetryPublished, "message 4 went through the created retry topic")
}

// Admin functions validate their input before dialing.
func TestAdminRejectsInvalidInput(t *testing.T) {
	ctx := ctxT(t)
	brokers := cluster.Addrs()
	for name, err := range map[string]error{
		"no brokers":      mq.CreateTopics(ctx, nil, []mq.TopicSpec{{Name: "x", Partitions: 1}}),
		"no name":         mq.CreateTopics(ctx, brokers, []mq.TopicSpec{{Partitions: 1}}),
		"no partitions":   mq.CreateTopics(ctx, brokers, []mq.TopicSpec{{Name: "x"}}),
		"negative rf":     mq.CreateTopics(ctx, brokers, []mq.TopicSpec{{Name: "x", Partitions: 1, ReplicationFactor: -1}}),
		"listed twice":    mq.CreateTopics(ctx, brokers, []mq.TopicSpec{{Name: "x", Partitions: 1}, {Name: "x", Partitions: 1}}),
		"empty client ID": mq.CreateTopics(ctx, brokers, []mq.TopicSpec{{Name: "x", Partitions: 1}}, mq.WithClientID("")),
		"delete no name":  mq.DeleteTopics(ctx, brokers, []string{""}),
	} {
		assert.ErrorIs(t, err, mq.ErrInvalidOption, name)
	}
	_, err := mq.DescribeTopic(ctx, brokers, "")
	assert.ErrorIs(t, err, mq.ErrInvalidOption)
}

// Admin functions take the common security options: against a broker that
// requires SASL they work with the right credentials, and the wrong ones
// fail without the password in the error.
func TestAdminWithSASL(t *testing.T) {
	const user, password = "admin", "admin-secret-7f3a"
	kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("PLAIN", user, password))
	require.NoError(t, err)
	t.Cleanup(kf.Close)
	brokers := kf.ListenAddrs()
	ctx := ctxT(t)
	auth := []mq.AdminOption{mq.WithSASL(mq.SASLPlain(user, password)), mq.WithClientID("admin-test")}

	require.NoError(t, mq.CreateTopics(ctx, brokers, []mq.TopicSpec{{Name: "secured", Partitions: 2}}, auth...))
	d, err := mq.DescribeTopic(ctx, brokers, "secured", auth...)
	require.NoError(t, err)
	assert.Len(t, d.Partitions, 2)
	plan, err := mq.ResetOffsets(ctx, brokers, "g", "secured", mq.ResetToEarliest(), auth...)
	require.NoError(t, err)
	assert.Len(t, plan, 2)
	offs, err := mq.GroupOffsets(ctx, brokers, "g", "secured", auth...)
	require.NoError(t, err)
	assert.EqualValues(t, 0, offs[0].Committed)
	require.NoError(t, mq.DeleteTopics(ctx, brokers, []string{"secured"}, auth...))

	// kfake drops the connection on a failed login (a real broker answers
	// SASL_AUTHENTICATION_FAILED, which mq wraps with ErrAuthentication), so
	// only the failure and the absence of the password are checked here.
	err = mq.CreateTopics(ctx, brokers, []mq.TopicSpec{{Name: "denied", Partitions: 1}},
		mq.WithSASL(mq.SASLPlain(user, "wrong-password-91c2")))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "wrong-password-91c2")
	_, err = mq.DescribeTopic(ctx, brokers, "denied", auth...)
	assert.ErrorIs(t, err, kafka.UnknownTopicOrPartition, "nothing was created")
}
