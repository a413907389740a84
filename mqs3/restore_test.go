package mqs3

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
)

func TestPlanPartition(t *testing.T) {
	pp := planPartition(3, []Object{obj(20, 29), obj(0, 9), obj(10, 19), obj(12, 15), obj(25, 34), obj(0, 9)})
	require.Equal(t, []Object{obj(0, 9), obj(10, 19), obj(20, 29), obj(25, 34)}, pp.Objects)
	require.Equal(t, []Object{obj(0, 9), obj(12, 15)}, pp.Redundant)
	require.Equal(t, 1, pp.Overlapping)
	require.Equal(t, int64(0), pp.First())
	require.Equal(t, int64(34), pp.Last())
}

// putRaw stores recs under key as a plain object, bypassing Backup, to make
// layouts Backup never leaves (partial overlaps).
func putRaw(t *testing.T, c *s3.Client, bucket, key string, recs []Record) {
	b := &Backup{}
	var lines [][]byte
	for _, r := range recs {
		l, err := r.MarshalJSON()
		require.NoError(t, err)
		lines = append(lines, append(l, '\n'))
	}
	body, err := b.body(lines)
	require.NoError(t, err)
	_, err = c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	require.NoError(t, err)
}

func TestRestoreDryRunPlansAndDeduplicates(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.name, func(t *testing.T) {
			c := testClient(t, srv.endpoint)
			bucket := newBucket(t, c)
			ctx := context.Background()
			b, err := New(c, bucket, WithPrefix("bk"), WithMaxMessages(10))
			require.NoError(t, err)
			_, err = b.Store(ctx, partitionRecords("orders", 0, span(0, 29)))
			require.NoError(t, err)
			_, err = b.Store(ctx, partitionRecords("orders", 1, span(5, 9)))
			require.NoError(t, err)
			// A partial overlap (two writers at once) and a redundant object.
			putRaw(t, c, bucket, ObjectKey("bk", "orders", 0, 25, 34, false), partitionRecords("orders", 0, span(25, 34)))
			putRaw(t, c, bucket, ObjectKey("bk", "orders", 0, 12, 14, false), partitionRecords("orders", 0, span(12, 14)))
			// Keys that are not backup objects, and another topic.
			putRaw(t, c, bucket, "bk/README", nil)
			_, err = New(c, bucket, WithPrefix("other"))
			require.NoError(t, err)

			plan, err := PlanRestore(ctx, c, bucket, "bk")
			require.NoError(t, err)
			require.Equal(t, "orders", plan.Topic)
			require.Equal(t, 1, plan.Ignored)
			require.Len(t, plan.Partitions, 2)
			require.Len(t, plan.Partitions[0].Objects, 4)
			require.Len(t, plan.Partitions[0].Redundant, 1)
			require.Equal(t, 1, plan.Partitions[0].Overlapping)

			stats, err := Restore(ctx, c, bucket, "bk", nil, "orders-copy", WithDryRun(true))
			require.NoError(t, err)
			require.Equal(t, int64(35+5), stats.Records)
			require.Equal(t, int64(5), stats.Duplicates, "offsets 25..29 are in two objects")
			require.Equal(t, map[int]int64{0: 35, 1: 5}, stats.ByPartition)

			// Two topics under one prefix: the source must be named.
			b2, err := New(c, bucket, WithPrefix("bk"))
			require.NoError(t, err)
			_, err = b2.Store(ctx, partitionRecords("users", 0, span(0, 0)))
			require.NoError(t, err)
			_, err = PlanRestore(ctx, c, bucket, "bk")
			require.ErrorContains(t, err, "orders, users")
			plan, err = PlanRestore(ctx, c, bucket, "bk", WithSourceTopic("users"))
			require.NoError(t, err)
			require.Equal(t, "users", plan.Topic)

			_, err = PlanRestore(ctx, c, bucket, "nothing-here")
			require.ErrorContains(t, err, "no backup objects")
		})
	}
}

func TestRestoreValidates(t *testing.T) {
	c := testClient(t, fakeEndpoint(t))
	_, err := Restore(context.Background(), c, "b", "", []string{"localhost:9092"}, "")
	require.ErrorIs(t, err, ErrInvalidOption)
	_, err = Restore(context.Background(), c, "b", "", nil, "t")
	require.ErrorIs(t, err, ErrInvalidOption)
	_, err = Restore(context.Background(), c, "b", "", []string{"x:1"}, "t", WithConcurrency(0))
	require.ErrorIs(t, err, ErrInvalidOption)
	_, err = PlanRestore(context.Background(), nil, "b", "")
	require.ErrorIs(t, err, ErrInvalidOption)
}

// TestRestoreTargetPartitions restores to a topic with fewer partitions than
// the backup: refused before anything is produced, unless by key.
func TestRestoreTargetPartitions(t *testing.T) {
	addrs := brokers(t)
	c := testClient(t, fakeEndpoint(t))
	bucket := newBucket(t, c)
	ctx := context.Background()
	b, err := New(c, bucket)
	require.NoError(t, err)
	for p := range 3 {
		_, err = b.Store(ctx, partitionRecords("src", p, span(0, 9)))
		require.NoError(t, err)
	}
	a := newAdmin(t, addrs)
	missing := uniqueName("missing")
	_, err = Restore(ctx, c, bucket, "", addrs, missing)
	require.ErrorContains(t, err, "does not exist")

	small := uniqueName("small")
	a.createTopic(small, 2)
	_, err = Restore(ctx, c, bucket, "", addrs, small)
	require.ErrorContains(t, err, "has 2 partition(s)")
	require.Equal(t, map[int]int64{0: 0, 1: 0}, a.endOffsets(small, 2), "nothing produced")

	stats, err := Restore(ctx, c, bucket, "", addrs, small, WithPartitionByKey(true))
	require.NoError(t, err)
	require.Equal(t, int64(30), stats.Records)
	ends := a.endOffsets(small, 2)
	require.Equal(t, int64(30), ends[0]+ends[1])
	var values []string
	for _, ms := range readAll(t, addrs, small, 2, ends) {
		for _, m := range ms {
			values = append(values, string(m.Value))
		}
	}
	var want []string
	for range 3 {
		for _, r := range partitionRecords("src", 0, span(0, 9)) {
			want = append(want, string(r.Value))
		}
	}
	require.ElementsMatch(t, want, values)
}
