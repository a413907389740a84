package mqs3

import (
	"context"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A consumer with BatchHandler stores one object per batch: every offset
// in exactly one object, far fewer objects than messages, and everything
// committed. Needs KAFKA_BROKERS; S3 is gofakes3.
func TestBatchHandlerOnAConsumer(t *testing.T) {
	addrs := brokers(t)
	c := testClient(t, fakeEndpoint(t))
	const n, partitions = 600, 3
	bucket := newBucket(t, c)
	a := newAdmin(t, addrs)
	topic, group := uniqueName("batch"), uniqueName("backup")
	a.createTopic(topic, partitions)
	produce(t, addrs, topic, testMessages(n, 200))
	ends := a.endOffsets(topic, partitions)

	b, err := New(c, bucket, WithPrefix("batch"), WithLogger(testLogger(t)))
	require.NoError(t, err)
	consumer, err := mq.NewKafkaConsumer[[]byte](addrs, topic, group, mq.WithCodec[[]byte](mq.BytesCodec{}),
		mq.WithCommitInterval(200*time.Millisecond), mq.WithLogger(testLogger(t)),
		mq.WithBatchMaxMessages(100), mq.WithBatchLinger(50*time.Millisecond))
	require.NoError(t, err)
	require.NoError(t, consumer.RegisterBatchHandler(BatchHandler[[]byte](b), mq.WithHandlerName("s3-backup")))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- consumer.Run(ctx) }()
	waitCommitted(t, a, group, topic, ends, time.Minute)
	cancel()
	require.NoError(t, <-done)

	counts := offsetCounts(t, c, bucket, "batch")
	for p := range partitions {
		require.Len(t, counts[p], int(ends[p]), "partition %d", p)
		for o := range ends[p] {
			require.Equal(t, 1, counts[p][o], "partition %d offset %d", p, o)
		}
	}
	objs := listAll(t, c, bucket, "batch")
	assert.Less(t, len(objs), n/10, "one object per batch, not per message")
	t.Logf("%d messages in %d objects", n, len(objs))
}
