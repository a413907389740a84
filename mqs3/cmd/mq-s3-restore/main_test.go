package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/mqkit/mq/mqs3"
	"github.com/stretchr/testify/require"
)

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{},                        // no bucket
		{"-bucket", "b"},          // no brokers, not a dry run
		{"-bucket", "b", "extra"}, // stray argument
		{"-no-such-flag"},         // unknown flag
	} {
		var out, errOut bytes.Buffer
		t.Setenv("KAFKA_BROKERS", "")
		require.Equal(t, 2, run(args, &out, &errOut), "%v", args)
	}
	// -h names the environment variables once, not their values again.
	t.Setenv("KAFKA_BROKERS", "127.0.0.1:2")
	t.Setenv("MQ_S3_ENDPOINT", "http://127.0.0.1:3")
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run([]string{"-h"}, &out, &errOut))
	require.Contains(t, errOut.String(), "(default $KAFKA_BROKERS)\n")
	require.NotContains(t, errOut.String(), `(default "http`)
	require.NotContains(t, errOut.String(), `(default "127`)
}

func TestDryRunPrintsThePlan(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "") // without brokers a dry run does not check the target topic
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	defer srv.Close()
	ctx := context.Background()
	client, err := mqs3.NewClient(ctx, mqs3.ClientConfig{Endpoint: srv.URL, Anonymous: true})
	require.NoError(t, err)
	_, err = client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("backups")})
	require.NoError(t, err)
	b, err := mqs3.New(client, "backups", mqs3.WithPrefix("chat"), mqs3.WithMaxMessages(4))
	require.NoError(t, err)
	for p := range 2 {
		var recs []mqs3.Record
		for o := range int64(10) {
			recs = append(recs, mqs3.Record{Topic: "chat-messages", Partition: p, Offset: o, Time: time.UnixMilli(o), Value: []byte("v")})
		}
		_, err := b.Store(ctx, recs)
		require.NoError(t, err)
	}

	var out, errOut bytes.Buffer
	code := run([]string{"-endpoint", srv.URL, "-anonymous", "-bucket", "backups", "-prefix", "chat", "-to", "replay", "-dry-run"}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	want := []string{
		"restore s3://backups/chat topic chat-messages -> replay (same partition)",
		"  partition 0: 3 object(s), offsets 0..9,",
		"  partition 1: 3 object(s), offsets 0..9,",
		"objects=6 records=20 duplicates_skipped=0 dry_run=true",
	}
	for _, w := range want {
		require.Contains(t, out.String(), w)
	}
	require.True(t, strings.HasSuffix(out.String(), "dry_run=true\n"))

	out.Reset()
	require.Equal(t, 1, run([]string{"-endpoint", srv.URL, "-anonymous", "-bucket", "backups", "-prefix", "none", "-dry-run"}, &out, &errOut))
	require.Contains(t, errOut.String(), "no backup objects")
}
