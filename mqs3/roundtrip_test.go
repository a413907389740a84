package mqs3

import (
	"context"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/require"
)

// startBackupConsumer runs a consumer of topic in group that backs every
// message up with b, and returns a function that stops it and returns Run's
// error.
func startBackupConsumer(t testing.TB, addrs []string, topic, group string, b *Backup, opts ...mq.ConsumerOption) (stop func() error) {
	t.Helper()
	opts = append([]mq.ConsumerOption{mq.WithCodec[[]byte](mq.BytesCodec{}), mq.WithCommitInterval(200 * time.Millisecond),
		mq.WithLogger(testLogger(t))}, opts...)
	c, err := mq.NewKafkaConsumer[[]byte](addrs, topic, group, opts...)
	require.NoError(t, err)
	require.NoError(t, c.RegisterHandler(Handler[[]byte](b), mq.WithHandlerName("s3-backup")))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

// waitCommitted waits until the group's committed offsets reach the ends.
func waitCommitted(t testing.TB, a *admin, group, topic string, ends map[int]int64, timeout time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		c := a.committed(group, topic, len(ends))
		for p, end := range ends {
			if end > 0 && c[p] < end {
				return false
			}
		}
		return true
	}, timeout, 200*time.Millisecond, "group %s did not commit everything", group)
}

// TestRoundTrip backs a topic up to S3 through a consumer, deletes the
// topic, restores it and compares every record. MQ_S3_ROUNDTRIP_N sets the
// message count (default 3000; the full-size check uses 100000).
func TestRoundTrip(t *testing.T) {
	addrs := brokers(t)
	c := testClient(t, seaweedEndpoint(t))
	n := envInt(t, "MQ_S3_ROUNDTRIP_N", 3000)
	const partitions = 12
	bucket := newBucket(t, c)
	a := newAdmin(t, addrs)
	topic, group := uniqueName("roundtrip"), uniqueName("backup")
	a.createTopic(topic, partitions)

	start := time.Now()
	produce(t, addrs, topic, testMessages(n, 200))
	ends := a.endOffsets(topic, partitions)
	var total int64
	for _, e := range ends {
		total += e
	}
	require.Equal(t, int64(n), total)
	originals := readAll(t, addrs, topic, partitions, ends)
	t.Logf("produced and read back %d messages in %v", n, time.Since(start))

	start = time.Now()
	b, err := New(c, bucket, WithPrefix("rt"), WithGzip(true), WithLogger(testLogger(t)))
	require.NoError(t, err)
	stop := startBackupConsumer(t, addrs, topic, group, b)
	waitCommitted(t, a, group, topic, ends, 10*time.Minute+time.Duration(n/50)*time.Second)
	require.NoError(t, stop())
	st := b.Stats()
	t.Logf("backed up %d messages in %v (%.0f msg/s): %+v", n, time.Since(start), float64(n)/time.Since(start).Seconds(), st)

	// Every offset of every partition is in exactly one object.
	counts := offsetCounts(t, c, bucket, "rt")
	for p := range partitions {
		require.Len(t, counts[p], int(ends[p]), "partition %d", p)
		for o := range ends[p] {
			require.Equal(t, 1, counts[p][o], "partition %d offset %d", p, o)
		}
	}

	a.deleteTopic(topic)
	a.createTopic(topic, partitions)
	start = time.Now()
	rs, err := Restore(context.Background(), c, bucket, "rt", addrs, topic)
	require.NoError(t, err)
	require.Equal(t, int64(n), rs.Records)
	require.Zero(t, rs.Duplicates)
	t.Logf("restored %d messages from %d objects in %v", rs.Records, rs.Objects, time.Since(start))

	restoredEnds := a.endOffsets(topic, partitions)
	require.Equal(t, ends, restoredEnds, "every partition gets back its record count")
	restored := readAll(t, addrs, topic, partitions, restoredEnds)
	for p := range partitions {
		require.Len(t, restored[p], len(originals[p]))
		for i := range originals[p] {
			if d := sameRecord(originals[p][i], restored[p][i]); d != "" {
				t.Fatalf("partition %d record %d: %s", p, i, d)
			}
		}
	}
}
