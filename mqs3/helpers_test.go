package mqs3

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// s3Server is an S3 endpoint for a test: gofakes3 in process, or the
// SeaweedFS named by MQ_S3_ENDPOINT.
type s3Server struct {
	name     string
	endpoint string
}

// seaweedEndpoint returns MQ_S3_ENDPOINT, skipping the test when it is unset.
func seaweedEndpoint(t testing.TB) string {
	t.Helper()
	ep := os.Getenv("MQ_S3_ENDPOINT")
	if ep == "" {
		t.Skip("MQ_S3_ENDPOINT is not set: start SeaweedFS with scripts/s3/start.sh to run this test against a real S3 server")
	}
	return ep
}

// fakeEndpoint serves gofakes3 for the test's duration.
func fakeEndpoint(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(false)).Server())
	t.Cleanup(srv.Close)
	return srv.URL
}

// servers returns the S3 servers a test runs against: always gofakes3, and
// SeaweedFS when MQ_S3_ENDPOINT is set.
func servers(t *testing.T) []s3Server {
	s := []s3Server{{name: "gofakes3", endpoint: fakeEndpoint(t)}}
	if ep := os.Getenv("MQ_S3_ENDPOINT"); ep != "" {
		s = append(s, s3Server{name: "seaweedfs", endpoint: ep})
	} else {
		t.Log("MQ_S3_ENDPOINT is not set: running against gofakes3 only (scripts/s3/start.sh starts SeaweedFS)")
	}
	return s
}

// testClient returns an anonymous path-style client of endpoint whose idle
// connections are closed when the test ends.
func testClient(t testing.TB, endpoint string) *s3.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return s3.New(s3.Options{
		Region:                     "us-east-1",
		BaseEndpoint:               aws.String(endpoint),
		UsePathStyle:               true,
		Credentials:                aws.AnonymousCredentials{},
		HTTPClient:                 &http.Client{Transport: tr},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

var bucketSeq atomic.Int64

// newBucket creates a bucket with a fresh name on the server.
func newBucket(t testing.TB, c *s3.Client) string {
	t.Helper()
	name := fmt.Sprintf("mqs3-%s-%d-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())),
		time.Now().UnixNano()%1e9, bucketSeq.Add(1))
	if len(name) > 63 {
		name = name[len(name)-63:]
		name = "b" + strings.TrimLeft(name[1:], "-")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	require.NoError(t, err)
	t.Cleanup(func() { deleteBucket(c, name) })
	return name
}

// deleteBucket deletes a bucket and its objects, so that a long-running
// server does not pile up test data (SeaweedFS gives every bucket volumes of
// its own). Errors are ignored: the data is disposable.
func deleteBucket(c *s3.Client, bucket string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}
	for {
		out, err := c.ListObjectsV2(ctx, in)
		if err != nil {
			return
		}
		for _, o := range out.Contents {
			_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.ContinuationToken = out.NextContinuationToken
	}
	_, _ = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
}

// listAll returns every backup object under prefix.
func listAll(t testing.TB, c API, bucket, prefix string) []Object {
	t.Helper()
	var objs []Object
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(rootDir(prefix))}
	for {
		out, err := c.ListObjectsV2(context.Background(), in)
		require.NoError(t, err)
		for _, o := range out.Contents {
			obj, ok := ParseObjectKey(prefix, aws.ToString(o.Key))
			require.True(t, ok, "not a backup object: %s", aws.ToString(o.Key))
			objs = append(objs, obj)
		}
		if !aws.ToBool(out.IsTruncated) {
			return objs
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

// offsetCounts reads every object under prefix and counts, per partition,
// how many objects hold each offset. It fails the test on an object whose
// records disagree with its key.
func offsetCounts(t testing.TB, c API, bucket, prefix string) map[int]map[int64]int {
	t.Helper()
	counts := make(map[int]map[int64]int)
	for _, o := range listAll(t, c, bucket, prefix) {
		recs, err := ReadObject(context.Background(), c, bucket, o)
		require.NoError(t, err)
		require.NotEmpty(t, recs, o.Key)
		require.Equal(t, o.First, recs[0].Offset, o.Key)
		require.Equal(t, o.Last, recs[len(recs)-1].Offset, o.Key)
		if counts[o.Partition] == nil {
			counts[o.Partition] = make(map[int64]int)
		}
		for _, r := range recs {
			counts[o.Partition][r.Offset]++
		}
	}
	return counts
}

// testLogger logs at info level when MQ_S3_TEST_LOG is set, else nothing.
func testLogger(t testing.TB) *zap.Logger {
	if os.Getenv("MQ_S3_TEST_LOG") == "" {
		return zap.NewNop()
	}
	l, err := zap.NewDevelopment()
	require.NoError(t, err)
	return l
}
