package mqs3

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/mqkit/mq"
	"github.com/stretchr/testify/require"
)

var errInjected = errors.New("injected S3 failure")

// faultyAPI wraps an S3 client to inject failures and record requests.
type faultyAPI struct {
	API
	mu       sync.Mutex
	calls    int
	crashAt  int  // from this call on every call fails for good (the process "died"); 0: never
	putFirst bool // the PUT that meets crashAt is carried out before failing
	failPuts int  // the next failPuts PUTs fail with a retryable error
	listIn   []s3.ListObjectsV2Input
}

func (f *faultyAPI) fault(put bool) (skip bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.crashAt > 0 && f.calls >= f.crashAt {
		return !(put && f.putFirst && f.calls == f.crashAt), mq.Permanent(fmt.Errorf("crashed: %w", errInjected))
	}
	if put && f.failPuts > 0 {
		f.failPuts--
		return true, errInjected
	}
	return false, nil
}

func (f *faultyAPI) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	skip, err := f.fault(true)
	if !skip {
		out, perr := f.API.PutObject(ctx, in, o...)
		if perr != nil || err == nil {
			return out, perr
		}
	}
	return nil, err
}

func (f *faultyAPI) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, o ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	if _, err := f.fault(false); err != nil {
		return nil, err
	}
	return f.API.DeleteObject(ctx, in, o...)
}

func (f *faultyAPI) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, o ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	if _, err := f.fault(false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.listIn = append(f.listIn, *in)
	f.mu.Unlock()
	return f.API.ListObjectsV2(ctx, in, o...)
}

// partitionRecords returns records of t/p at the given offsets.
func partitionRecords(topic string, p int, offsets []int64) []Record {
	recs := make([]Record, len(offsets))
	for i, o := range offsets {
		recs[i] = Record{Topic: topic, Partition: p, Offset: o, Time: time.UnixMilli(1_700_000_000_000 + o),
			Key: []byte(fmt.Sprintf("k%d", o%7)), Value: []byte(fmt.Sprintf("value %d", o))}
	}
	return recs
}

func TestStoreSplitsAndReadsBack(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.name, func(t *testing.T) {
			c := testClient(t, srv.endpoint)
			bucket := newBucket(t, c)
			for _, gz := range []bool{false, true} {
				prefix := fmt.Sprintf("gzip-%v", gz)
				b, err := New(c, bucket, WithPrefix(prefix), WithGzip(gz), WithMaxMessages(40), WithMaxBytes(2000))
				require.NoError(t, err)
				recs := partitionRecords("orders", 2, span(100, 199))
				n, err := b.Store(context.Background(), recs)
				require.NoError(t, err)
				require.Equal(t, len(recs), n)

				objs := listAll(t, c, bucket, prefix)
				require.Greater(t, len(objs), 2, "100 records, at most 40 per object")
				var got []Record
				for _, o := range objs {
					require.Equal(t, gz, o.Gzip)
					rs, err := ReadObject(context.Background(), c, bucket, o)
					require.NoError(t, err)
					require.LessOrEqual(t, len(rs), 40)
					got = append(got, rs...)
				}
				require.Len(t, got, len(recs))
				for i := range recs {
					require.Equal(t, recs[i].Offset, got[i].Offset)
					require.Equal(t, recs[i].Key, got[i].Key)
					require.Equal(t, recs[i].Value, got[i].Value)
					require.True(t, recs[i].Time.Equal(got[i].Time))
				}
				require.Equal(t, int64(len(objs)), b.Stats().Objects)
				require.Equal(t, int64(len(recs)), b.Stats().Records)
			}
		})
	}
}

// TestStoreIsIdempotentAcrossShiftingBoundaries simulates a consumer that
// crashes at random S3 requests (sometimes right after an upload, before
// anything else), restarts from its last commit with a fresh Backup and
// other batch sizes, and commits at random points. Afterwards every offset
// must be in exactly one object.
func TestStoreIsIdempotentAcrossShiftingBoundaries(t *testing.T) {
	for _, srv := range servers(t) {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("%s/seed-%d", srv.name, seed), func(t *testing.T) {
				c := testClient(t, srv.endpoint)
				bucket := newBucket(t, c)
				rng := rand.New(rand.NewPCG(1, seed))
				// Offsets with gaps, as transaction markers or compaction leave them.
				var offsets []int64
				for o := int64(0); len(offsets) < 1000; o++ {
					if rng.IntN(10) != 0 {
						offsets = append(offsets, o)
					}
				}
				all := partitionRecords("t", 5, offsets)
				committed, restarts := 0, 0 // index of the first uncommitted record
				var deleted int64
				for committed < len(all) {
					restarts++
					require.Less(t, restarts, 500, "no progress")
					f := &faultyAPI{API: c, crashAt: 1 + rng.IntN(12), putFirst: rng.IntN(2) == 0}
					b, err := New(f, bucket, WithMaxMessages(5+rng.IntN(60)), WithGzip(rng.IntN(3) == 0))
					require.NoError(t, err)
					pos := committed
					for pos < len(all) {
						n := min(1+rng.IntN(80), len(all)-pos)
						stored, err := b.Store(context.Background(), all[pos:pos+n])
						pos += stored
						if err != nil {
							require.ErrorIs(t, err, errInjected)
							break
						}
						if rng.IntN(3) == 0 {
							committed = pos
						}
					}
					if pos == len(all) {
						committed = pos
					}
					deleted += b.Stats().Deleted
				}
				t.Logf("%d restarts, %d objects replaced", restarts, deleted)
				require.Greater(t, restarts, 10)
				require.Positive(t, deleted, "some redeliveries must have shifted boundaries")
				counts := offsetCounts(t, c, bucket, "")
				require.Len(t, counts[5], len(offsets))
				for _, o := range offsets {
					require.Equal(t, 1, counts[5][o], "offset %d", o)
				}
				plan, err := PlanRestore(context.Background(), c, bucket, "")
				require.NoError(t, err)
				require.Len(t, plan.Partitions, 1)
				require.Empty(t, plan.Partitions[0].Redundant)
				require.Zero(t, plan.Partitions[0].Overlapping)
			})
		}
	}
}

// TestStoreListsFromTheLastObject checks that a store following the last
// one lists only from the last object (one request, no fallback to a full
// listing), on each server's reading of StartAfter.
func TestStoreListsFromTheLastObject(t *testing.T) {
	for _, srv := range servers(t) {
		t.Run(srv.name, func(t *testing.T) { testListsFromTheLastObject(t, srv.endpoint) })
	}
}

func testListsFromTheLastObject(t *testing.T, endpoint string) {
	c := testClient(t, endpoint)
	bucket := newBucket(t, c)
	f := &faultyAPI{API: c}
	b, err := New(f, bucket, WithPrefix("p"))
	require.NoError(t, err)
	ctx := context.Background()
	_, err = b.Store(ctx, partitionRecords("t", 0, span(0, 9)))
	require.NoError(t, err)
	_, err = b.Store(ctx, partitionRecords("t", 0, span(10, 19)))
	require.NoError(t, err)
	_, err = b.Store(ctx, partitionRecords("t", 0, span(15, 24))) // a redelivery inside the last object
	require.NoError(t, err)
	_, err = b.Store(ctx, partitionRecords("t", 0, span(3, 4))) // before it: the whole partition is listed
	require.NoError(t, err)
	dir := partitionDir("p", "t", 0)
	require.Len(t, f.listIn, 4)
	require.Nil(t, f.listIn[0].StartAfter, "first store lists the partition")
	require.Equal(t, listFrom(dir, 0), aws.ToString(f.listIn[1].StartAfter))
	require.Equal(t, listFrom(dir, 10), aws.ToString(f.listIn[2].StartAfter))
	require.Nil(t, f.listIn[3].StartAfter)
	keys := func() (ks []string) {
		for _, o := range listAll(t, c, bucket, "p") {
			ks = append(ks, o.Key)
		}
		return ks
	}
	require.Equal(t, []string{ObjectKey("p", "t", 0, 0, 9, false), ObjectKey("p", "t", 0, 10, 19, false),
		ObjectKey("p", "t", 0, 20, 24, false)}, keys())
}

func TestStoreRetriesUntilS3Answers(t *testing.T) {
	c := testClient(t, fakeEndpoint(t))
	bucket := newBucket(t, c)
	f := &faultyAPI{API: c, failPuts: 4}
	b, err := New(f, bucket, WithRetryBackoff(time.Millisecond, 4*time.Millisecond))
	require.NoError(t, err)
	n, err := b.Store(context.Background(), partitionRecords("t", 1, span(0, 9)))
	require.NoError(t, err)
	require.Equal(t, 10, n)
	require.Equal(t, int64(4), b.Stats().Retries)
	require.Len(t, listAll(t, c, bucket, ""), 1)
}

func TestStoreStopsWhenContextEnds(t *testing.T) {
	c := testClient(t, fakeEndpoint(t))
	bucket := newBucket(t, c)
	// The first object goes through, then S3 is down for good.
	f := &putAfter{faultyAPI: &faultyAPI{API: c}, okPuts: 1}
	b, err := New(f, bucket, WithMaxMessages(5), WithRetryBackoff(time.Millisecond, 2*time.Millisecond))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		deadline := time.Now().Add(30 * time.Second)
		for (b.Stats().Objects < 1 || b.Stats().Retries < 3) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // polling a condition
		}
	}()
	n, err := b.Store(ctx, partitionRecords("t", 0, span(0, 14)))
	<-done
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, errInjected)
	require.Equal(t, 5, n, "the first object's records are stored")
	require.Len(t, listAll(t, c, bucket, ""), 1)
}

// putAfter lets okPuts PUTs through, then fails every PUT.
type putAfter struct {
	*faultyAPI
	mu     sync.Mutex
	okPuts int
}

func (p *putAfter) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	p.mu.Lock()
	ok := p.okPuts > 0
	p.okPuts--
	p.mu.Unlock()
	if !ok {
		return nil, errInjected
	}
	return p.faultyAPI.PutObject(ctx, in, o...)
}

func TestStorePermanentErrors(t *testing.T) {
	c := testClient(t, fakeEndpoint(t))
	b, err := New(c, "no-such-bucket")
	require.NoError(t, err)
	_, err = b.Store(context.Background(), partitionRecords("t", 0, span(0, 1)))
	require.Error(t, err)
	require.True(t, mq.IsPermanent(err), "%v", err)

	bucket := newBucket(t, c)
	b, err = New(c, bucket)
	require.NoError(t, err)
	recs := partitionRecords("t", 0, []int64{3, 2})
	_, err = b.Store(context.Background(), recs)
	require.ErrorContains(t, err, "increasing offset order")
	require.True(t, mq.IsPermanent(err))
	recs = append(partitionRecords("t", 0, []int64{1}), partitionRecords("t", 1, []int64{2})...)
	_, err = b.Store(context.Background(), recs)
	require.ErrorContains(t, err, "in one store")
	_, err = b.Store(context.Background(), []Record{{Partition: 0}})
	require.ErrorContains(t, err, "without topic")
}

func TestNewValidates(t *testing.T) {
	c := testClient(t, "http://127.0.0.1:1")
	for _, tc := range []struct {
		client API
		bucket string
		opts   []Option
	}{
		{nil, "b", nil},
		{c, "", nil},
		{c, "b", []Option{WithMaxMessages(0)}},
		{c, "b", []Option{WithMaxBytes(0)}},
		{c, "b", []Option{WithRetryBackoff(0, time.Second)}},
		{c, "b", []Option{WithRetryBackoff(time.Second, time.Millisecond)}},
		{c, "b", []Option{WithMaxRetryTime(-1)}},
	} {
		_, err := New(tc.client, tc.bucket, tc.opts...)
		require.ErrorIs(t, err, ErrInvalidOption)
	}
}

func TestHandlers(t *testing.T) {
	c := testClient(t, fakeEndpoint(t))
	bucket := newBucket(t, c)
	ctx := context.Background()
	msgs := make([]mq.Message[string], 10)
	for i := range msgs {
		msgs[i] = mq.Message[string]{Topic: "t", Partition: 3, Offset: int64(i), Value: "x", Raw: []byte(fmt.Sprintf(`"%d"`, i))}
	}

	b, err := New(c, bucket, WithPrefix("per-message"))
	require.NoError(t, err)
	h := Handler[string](b)
	for _, m := range msgs[:3] {
		require.NoError(t, h.Handle(ctx, m))
	}
	objs := listAll(t, c, bucket, "per-message")
	require.Len(t, objs, 3, "one object per message")

	b, err = New(c, bucket, WithPrefix("batch"), WithMaxMessages(4))
	require.NoError(t, err)
	require.NoError(t, BatchFunc[string](b)(ctx, msgs))
	objs = listAll(t, c, bucket, "batch")
	require.Len(t, objs, 3)
	recs, err := ReadObject(ctx, c, bucket, objs[0])
	require.NoError(t, err)
	require.Equal(t, []byte(`"0"`), recs[0].Value, "the raw bytes are stored")

	// Partial failure: the first object is stored, then S3 refuses.
	f := &putAfter{faultyAPI: &faultyAPI{API: c}, okPuts: 1}
	b, err = New(f, bucket, WithPrefix("partial"), WithMaxMessages(4), WithMaxRetryTime(time.Millisecond),
		WithRetryBackoff(time.Millisecond, time.Millisecond))
	require.NoError(t, err)
	err = HandleBatch(ctx, b, msgs)
	var se *StoreError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 4, se.Stored)
	require.ErrorIs(t, err, errInjected)
	var bf *mq.BatchFailedError
	require.ErrorAs(t, err, &bf, "the consumer's partial failure")
	require.Equal(t, 4, bf.Index)
}
