package integration

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// When the dead-letter write fails, nothing is dropped or committed past the
// message: the write is retried until the broker takes it. Uses kfake's fault
// injection, so it needs the embedded broker.
func TestDeadLetterWriteFailureIsRetried(t *testing.T) {
	kf := cluster.Kfake()
	if kf == nil {
		t.Skip("needs the embedded broker's fault injection (kfake)")
	}
	topic := cluster.NewTopic(t, 1)
	r := mq.DeadLetterRecoverer("")
	createRecoveryTopics(t, topic, r, 1)
	produceChat(t, newProducer(t, topic), 0, 10)
	dlt := topic + ".dlt"

	var rejected atomic.Int32
	kf.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		if len(pr.Topics) != 1 || pr.Topics[0].Topic != dlt || rejected.Load() >= 3 {
			return nil, nil, false
		}
		rejected.Add(1)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, tp := range pr.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = tp.Topic
			for _, p := range tp.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code // not retriable by the producer
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})

	group := "g-" + topic
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t, mq.WithRecoverer(r))...)
	require.NoError(t, err)
	rec := newRecorder()
	require.NoError(t, c.RegisterHandler(failOn(rec, mq.Permanent(errors.New("bad")), 4)))
	run := start(c)
	require.Eventually(t, func() bool { return c.Stats().DeadLettered == 1 && rec.count() == 9 }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, run.stop(t))
	assert.EqualValues(t, 3, rejected.Load(), "the first writes were rejected")
	got, err := cluster.ReadAll(ctxT(t), dlt, 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "4", hdr(got[0], mq.HeaderOriginalOffset))
	end, err := cluster.EndOffsets(ctxT(t), dlt)
	require.NoError(t, err)
	assert.EqualValues(t, 1, sum(end), "written exactly once")
	committed, err := cluster.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.EqualValues(t, 10, committed[0])
}
