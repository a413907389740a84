package mqs3

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/require"
)

// seaweed runs scripts/s3 for a server of the test's own.
type seaweed struct {
	t    testing.TB
	name string
	port int
}

func (s *seaweed) run(script string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command("../scripts/s3/"+script, append(args, s.name)...)
	cmd.Env = append(os.Environ(), "S3_PORT="+strconv.Itoa(s.port))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(s.t, err, "scripts/s3/%s", script)
	return strings.TrimSpace(string(out))
}

func (s *seaweed) start() string {
	line := s.run("start.sh")
	ep, ok := strings.CutPrefix(line, "MQ_S3_ENDPOINT=")
	require.True(s.t, ok, line)
	return ep
}

// TestBackupWaitsOutS3Outage stops SeaweedFS for MQ_S3_OUTAGE_SECONDS
// (default 30) while a consumer backs up a topic that is still being
// written. Meanwhile no object is stored, uploads are retried, and no
// committed offset passes the last stored message; after the restart
// everything is stored exactly once and committed. It runs a SeaweedFS of its
// own on MQ_S3_OUTAGE_PORT (it uses that port and the next seven), and only
// when that is set.
func TestBackupWaitsOutS3Outage(t *testing.T) {
	port := envInt(t, "MQ_S3_OUTAGE_PORT", 0)
	if port == 0 {
		t.Skip("MQ_S3_OUTAGE_PORT is not set: this test starts and stops a SeaweedFS of its own there")
	}
	addrs := brokers(t)
	outage := time.Duration(envInt(t, "MQ_S3_OUTAGE_SECONDS", 30)) * time.Second
	sw := &seaweed{t: t, name: fmt.Sprintf("outage-test-%d", port), port: port}
	endpoint := sw.start()
	t.Cleanup(func() { sw.run("stop.sh", "--purge") })
	c := testClient(t, endpoint)
	bucket := newBucket(t, c)

	const partitions = 4
	a := newAdmin(t, addrs)
	topic, group := uniqueName("outage"), uniqueName("outage-backup")
	a.createTopic(topic, partitions)
	msgs := testMessages(1200, 1024)
	produce(t, addrs, topic, msgs[:400])

	b, err := New(c, bucket, WithRetryBackoff(50*time.Millisecond, 2*time.Second), WithLogger(testLogger(t)))
	require.NoError(t, err)
	// lastStored[p] is the last offset of p whose Store returned.
	var mu sync.Mutex
	lastStored := make(map[int]int64)
	cons, err := mq.NewKafkaConsumer[[]byte](addrs, topic, group, mq.WithCodec[[]byte](mq.BytesCodec{}),
		mq.WithCommitInterval(100*time.Millisecond), mq.WithLogger(testLogger(t)))
	require.NoError(t, err)
	h := Handler[[]byte](b)
	require.NoError(t, cons.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[[]byte]) error {
		if err := h.Handle(ctx, m); err != nil {
			return err
		}
		mu.Lock()
		lastStored[m.Partition] = max(lastStored[m.Partition], m.Offset)
		mu.Unlock()
		return nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- cons.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-runDone)
	}()

	// Keep writing while S3 goes away and comes back.
	prodDone := make(chan error, 1)
	go func() {
		pace := time.NewTicker(outage / 20) // spreads the writes over the outage
		defer pace.Stop()
		for i := 400; i < len(msgs); i += 40 {
			if err := produceErr(addrs, topic, msgs[i:i+40]); err != nil {
				prodDone <- err
				return
			}
			<-pace.C
		}
		prodDone <- nil
	}()

	require.Eventually(t, func() bool { return b.Stats().Objects >= 200 }, time.Minute, 10*time.Millisecond)
	sw.run("stop.sh")
	down := time.Now()
	mu.Lock()
	storedAtStop := make(map[int]int64)
	for p, o := range lastStored {
		storedAtStop[p] = o
	}
	mu.Unlock()
	objectsAtStop, retriesAtStop := b.Stats().Objects, b.Stats().Retries
	t.Logf("S3 stopped with %d objects stored, last stored offsets %v", objectsAtStop, storedAtStop)

	polls := 0
	sample := time.NewTicker(500 * time.Millisecond)
	defer sample.Stop()
	for ; time.Since(down) < outage; <-sample.C {
		committed := a.committed(group, topic, partitions)
		for p := range partitions {
			last, ok := storedAtStop[p]
			if !ok {
				last = -1
			}
			require.LessOrEqual(t, committed[p], last+1, "partition %d committed past the last stored offset during the outage", p)
		}
		require.Equal(t, objectsAtStop, b.Stats().Objects, "nothing can be stored while S3 is down")
		polls++
	}
	retries := b.Stats().Retries - retriesAtStop
	t.Logf("outage over after %v: %d retries, %d samples of the committed offsets", time.Since(down).Round(time.Second), retries, polls)
	require.Positive(t, retries)

	sw.start()
	require.NoError(t, <-prodDone)
	ends := a.endOffsets(topic, partitions)
	waitCommitted(t, a, group, topic, ends, 5*time.Minute)

	counts := offsetCounts(t, c, bucket, "")
	var total int64
	for p := range partitions {
		require.Len(t, counts[p], int(ends[p]), "partition %d", p)
		for o := range ends[p] {
			require.Equal(t, 1, counts[p][o], "partition %d offset %d", p, o)
		}
		total += ends[p]
	}
	require.Equal(t, int64(len(msgs)), total, "nothing lost")
}
