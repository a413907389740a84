package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testConfig returns a config for a 200-message run on a new topic of c (deleted
// after the test on an external broker) and a new group, so runs do not collide
// on a shared broker.
func testConfig(t *testing.T, c *mqtest.Cluster) Config {
	cfg := DefaultConfig()
	cfg.Topic = c.NewTopic(t, cfg.Partitions) // Run's CreateTopics then finds it
	cfg.Group = mqtest.UniqueName("chat-service")
	cfg.N = 200
	cfg.DataDir = t.TempDir()
	cfg.RunID = "test"
	cfg.Timeout = 30 * time.Second
	return cfg
}

func TestRunStoresEveryMessage(t *testing.T) {
	c := mqtest.New(t)
	cfg := testConfig(t, c)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	sum, err := Run(ctx, cfg, c.Addrs(), zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	require.NoError(t, err)
	t.Log(sum)
	require.Empty(t, sum.Problems())
	require.Equal(t, cfg.N, sum.Sent)
	require.Equal(t, cfg.N, sum.Delivered)
	require.Zero(t, sum.Failed)
	require.Equal(t, cfg.N, sum.Persisted)
	require.Equal(t, cfg.N, sum.BackedUp)
	require.Equal(t, cfg.N, sum.BackupLines, "a graceful stop redelivers nothing")
	require.EqualValues(t, cfg.N, sum.Committed)

	// The outputs really hold the messages, one per conversation order.
	store, err := OpenStore(filepath.Join(cfg.DataDir, dbFile))
	require.NoError(t, err)
	defer store.Close()
	n, err := store.Count(ctx, "")
	require.NoError(t, err)
	require.Equal(t, cfg.N, n)
	var convs int
	require.NoError(t, store.db.QueryRowContext(ctx, `SELECT COUNT(DISTINCT conversation_id) FROM messages`).Scan(&convs))
	require.Equal(t, cfg.Conversations, convs)
}

func TestRunFollowUntilCancelled(t *testing.T) {
	c := mqtest.New(t)
	cfg := testConfig(t, c)
	cfg.Follow = true
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	type result struct {
		sum Summary
		err error
	}
	done := make(chan result, 1)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		sum, err := Run(runCtx, cfg, c.Addrs(), zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
		done <- result{sum, err}
	}()

	// Watch the outputs from outside, as an operator would, from the moment
	// Run created the database.
	var store *Store
	defer func() {
		if store != nil {
			_ = store.Close()
		}
	}()
	backupPath := filepath.Join(cfg.DataDir, backupFile)
	require.Eventually(t, func() bool {
		if store == nil {
			path := filepath.Join(cfg.DataDir, dbFile)
			if _, err := os.Stat(path); err != nil {
				return false
			}
			s, err := OpenStore(path)
			require.NoError(t, err)
			store = s
		}
		n, err := store.Count(ctx, idPrefix(cfg.RunID))
		if err != nil || n < cfg.N {
			return false
		}
		_, distinct, err := CountBackup(backupPath, idPrefix(cfg.RunID))
		return err == nil && distinct == cfg.N
	}, 30*time.Second, 20*time.Millisecond)

	// Follow mode keeps running until told to stop, like SIGINT does.
	select {
	case r := <-done:
		t.Fatalf("Run returned before it was cancelled: %v, %v", r.sum, r.err)
	default:
	}
	stop()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	require.NoError(t, r.err)
	t.Log(r.sum)
	require.Empty(t, r.sum.Problems())
	require.Equal(t, cfg.N, r.sum.Persisted)
	require.Equal(t, cfg.N, r.sum.BackedUp)
	require.EqualValues(t, cfg.N, r.sum.Committed)

	// The group committed everything, so the offsets are at the end
	// (-1, no commit, for a partition that got no message).
	committed, err := c.CommittedOffsets(ctx, cfg.Group, cfg.Topic)
	require.NoError(t, err)
	end, err := c.EndOffsets(ctx, cfg.Topic)
	require.NoError(t, err)
	require.Len(t, end, cfg.Partitions)
	for p, o := range end {
		require.Equal(t, o, max(committed[p], 0), "partition %d", p)
	}
}

func TestHandlersTolerateRedelivery(t *testing.T) {
	dir := t.TempDir()
	store, err := OpenStore(filepath.Join(dir, dbFile))
	require.NoError(t, err)
	defer store.Close()
	backup, err := OpenBackup(filepath.Join(dir, backupFile))
	require.NoError(t, err)
	defer backup.Close()

	ev := newEvents("redeliver", 1, 1)[0]
	msg := mq.Message[MessageEvent]{Topic: "chat-messages", Partition: 1, Offset: 7, Value: ev}
	for range 2 { // the second call is a redelivery
		require.NoError(t, store.Persist(t.Context(), msg))
		require.NoError(t, backup.Append(t.Context(), msg))
	}
	n, err := store.Count(t.Context(), "redeliver-")
	require.NoError(t, err)
	require.Equal(t, 1, n, "the upsert ignores the redelivered message")

	counter := NewBackupCounter(filepath.Join(dir, backupFile), "redeliver-")
	lines, distinct, err := counter.Count()
	require.NoError(t, err)
	require.Equal(t, 2, lines, "the backup is append-only")
	require.Equal(t, 1, distinct)

	// The counter picks up lines appended later, and ignores other runs'.
	other := newEvents("other", 1, 1)[0]
	require.NoError(t, backup.Append(t.Context(), mq.Message[MessageEvent]{Value: other}))
	msg.Value.ID = "redeliver-2"
	require.NoError(t, backup.Append(t.Context(), msg))
	lines, distinct, err = counter.Count()
	require.NoError(t, err)
	require.Equal(t, 3, lines)
	require.Equal(t, 2, distinct)

	// A message without an ID is an error, so the consumer retries and then stops.
	msg.Value.ID = ""
	require.Error(t, store.Persist(t.Context(), msg))
}

func TestGlobPrefixEscapes(t *testing.T) {
	require.Equal(t, "a[*]b[?][[]-*", globPrefix("a*b?[-"))
	require.Equal(t, "*", globPrefix(""))
}

func TestOpenStoreConcurrently(t *testing.T) {
	// Several connections creating the same new database at once, as the
	// service and an operator's tool might, all succeed.
	for range 20 {
		path := filepath.Join(t.TempDir(), dbFile)
		errs := make(chan error, 3)
		for range cap(errs) {
			go func() {
				s, err := OpenStore(path)
				if err == nil {
					err = s.Close()
				}
				errs <- err
			}()
		}
		for range cap(errs) {
			require.NoError(t, <-errs)
		}
	}
}

func TestBackupCounterWaitsForCompleteLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), backupFile)
	counter := NewBackupCounter(path, "run-")
	lines, _, err := counter.Count()
	require.NoError(t, err, "a missing file is empty")
	require.Zero(t, lines)

	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteString(`{"partition":0,"offset":0,"event":{"id":"run-1"}}` + "\n" + `{"partition":0,"offset":1,"ev`)
	require.NoError(t, err)
	lines, distinct, err := counter.Count()
	require.NoError(t, err)
	require.Equal(t, 1, lines, "the half-written line is not counted yet")
	require.Equal(t, 1, distinct)

	_, err = f.WriteString(`ent":{"id":"run-2"}}` + "\n")
	require.NoError(t, err)
	lines, distinct, err = counter.Count()
	require.NoError(t, err)
	require.Equal(t, 2, lines)
	require.Equal(t, 2, distinct)
}

func TestRunReportsAHandlerThatKeepsFailing(t *testing.T) {
	c := mqtest.New(t)
	cfg := testConfig(t, c)

	// Make the database reject one message for good.
	store, err := OpenStore(filepath.Join(cfg.DataDir, dbFile))
	require.NoError(t, err)
	_, err = store.db.Exec(`CREATE TRIGGER reject BEFORE INSERT ON messages WHEN NEW.id = 'test-000007'
		BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`)
	require.NoError(t, err)
	require.NoError(t, store.Close())

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	sum, err := Run(ctx, cfg, c.Addrs(), zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)))
	t.Log(sum)
	var herr *mq.HandlerError
	require.ErrorAs(t, err, &herr, "the consumer stops when retries run out")
	require.Equal(t, "persist", herr.Handler)
	require.ErrorContains(t, herr, "disk on fire")
	require.Equal(t, cfg.N, sum.Delivered)
	require.Less(t, sum.Persisted, cfg.N)
	require.NotEmpty(t, sum.Problems(), "the run is reported as losing messages")
	require.Less(t, sum.Committed, sum.End, "nothing past the failing message was committed")
}

// With -http, the example serves Prometheus metrics and the consumer's health
// while it runs.
func TestRunServesMetricsAndHealth(t *testing.T) {
	c := mqtest.New(t)
	cfg := testConfig(t, c)
	cfg.Follow = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.HTTPAddr = ln.Addr().String()
	require.NoError(t, ln.Close())

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, cfg, c.Addrs(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
		done <- err
	}()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + cfg.HTTPAddr + path)
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	require.Eventually(t, func() bool {
		code, _ := get("/readyz")
		return code == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "ready once partitions are assigned")
	want := fmt.Sprintf(`mq_messages_processed_total{group=%q,outcome="handled",topic=%q} %d`, cfg.Group, cfg.Topic, cfg.N)
	require.Eventually(t, func() bool {
		_, body := get("/metrics")
		return strings.Contains(body, want)
	}, 30*time.Second, 20*time.Millisecond, "metrics count every handled message")
	code, body := get("/livez")
	assert.Equal(t, http.StatusOK, code, body)
	_, body = get("/metrics")
	assert.Contains(t, body, "mq_consumer_lag{")
	stop()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	code, _ = get("/readyz")
	assert.Zero(t, code, "the server is shut down with Run")
}

// Validate refuses what Run cannot work with, and Run refuses it too.
func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	require.NoError(t, ok.Validate())
	follow := ok
	follow.Follow, follow.Timeout = true, 0
	require.NoError(t, follow.Validate(), "-follow needs no timeout")
	for name, edit := range map[string]func(*Config){
		"negative n":       func(c *Config) { c.N = -5 },
		"no conversations": func(c *Config) { c.Conversations = 0 },
		"no partitions":    func(c *Config) { c.Partitions = 0 },
		"no timeout":       func(c *Config) { c.Timeout = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			edit(&cfg)
			require.ErrorContains(t, cfg.Validate(), "bad config")
			cfg.DataDir = t.TempDir()
			_, err := Run(t.Context(), cfg, nil, zap.NewNop())
			require.ErrorContains(t, err, "bad config")
		})
	}
}

// The S3 settings come from MQ_CHAT_S3_* unless their flags were given
// (explicitly false or empty too); the prefix defaults to "chat".
func TestS3FromEnv(t *testing.T) {
	t.Setenv("MQ_CHAT_S3_ENDPOINT", "http://127.0.0.1:3")
	t.Setenv("MQ_CHAT_S3_BUCKET", "env-bucket")
	t.Setenv("MQ_CHAT_S3_PREFIX", "")
	t.Setenv("MQ_CHAT_S3_ANONYMOUS", "1")
	var c S3Config
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.StringVar(&c.Endpoint, "s3-endpoint", "", "")
	fs.StringVar(&c.Bucket, "s3-bucket", "", "")
	fs.StringVar(&c.Prefix, "s3-prefix", "", "")
	fs.BoolVar(&c.Anonymous, "s3-anonymous", false, "")
	require.NoError(t, fs.Parse([]string{"-s3-bucket", "flag-bucket", "-s3-anonymous=false"}))
	s3FromEnv(&c, fs)
	require.Equal(t, S3Config{Endpoint: "http://127.0.0.1:3", Bucket: "flag-bucket", Prefix: "chat"}, c)
}
