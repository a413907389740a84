package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/mqkit/mq/mqtest"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// TestRunBacksUpToS3 runs the service with its backup going to the S3
// server named by MQ_S3_ENDPOINT (scripts/s3/start.sh).
func TestRunBacksUpToS3(t *testing.T) {
	endpoint := os.Getenv("MQ_S3_ENDPOINT")
	if endpoint == "" {
		t.Skip("MQ_S3_ENDPOINT is not set: start SeaweedFS with scripts/s3/start.sh")
	}
	c := mqtest.New(t)
	cfg := testConfig(t, c)
	cfg.S3 = S3Config{Endpoint: endpoint, Bucket: fmt.Sprintf("chat-test-%d", time.Now().UnixNano()), Prefix: "chat", Anonymous: true}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	sum, err := Run(ctx, cfg, c.Addrs(), zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	require.NoError(t, err)
	t.Log(sum)
	require.Empty(t, sum.Problems())
	require.Equal(t, cfg.N, sum.BackedUp)
	require.Equal(t, cfg.N, sum.BackupLines)
	_, err = os.Stat(cfg.DataDir + "/" + backupFile)
	require.True(t, os.IsNotExist(err), "no local backup file when backing up to S3")
}
