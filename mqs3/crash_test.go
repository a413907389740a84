package mqs3

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// Environment of the crash test's child process.
const (
	envCrashChild  = "MQ_S3_CRASH_CHILD" // "1" in the child
	envCrashTopic  = "MQ_S3_CRASH_TOPIC"
	envCrashGroup  = "MQ_S3_CRASH_GROUP"
	envCrashBucket = "MQ_S3_CRASH_BUCKET"
)

// TestCrashChild is the backup consumer the crash test SIGKILLs. It runs
// only as that test's child process.
func TestCrashChild(t *testing.T) {
	if os.Getenv(envCrashChild) != "1" {
		t.Skip("runs only as the child process of TestBackupSurvivesSIGKILL")
	}
	c := testClient(t, seaweedEndpoint(t))
	// Warnings (S3 retries, group trouble) go to the parent's output.
	cfg := zap.NewDevelopmentConfig()
	cfg.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	log, err := cfg.Build()
	require.NoError(t, err)
	b, err := New(c, os.Getenv(envCrashBucket), WithPrefix("crash"), WithLogger(log))
	require.NoError(t, err)
	stop := startBackupConsumer(t, brokers(t), os.Getenv(envCrashTopic), os.Getenv(envCrashGroup), b, mq.WithLogger(log))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	defer signal.Stop(sig)
	fmt.Println("child: consuming")
	<-sig
	require.NoError(t, stop())
}

// TestBackupSurvivesSIGKILL backs a topic up in a child process that is
// SIGKILLed 5 times while it works. After each kill the group's committed
// offsets must not pass what the bucket holds; at the end every offset is
// in exactly one object. MQ_S3_CRASH_N sets the message count (default 2000).
func TestBackupSurvivesSIGKILL(t *testing.T) {
	addrs := brokers(t)
	endpoint := seaweedEndpoint(t)
	c := testClient(t, endpoint)
	n := envInt(t, "MQ_S3_CRASH_N", 2000)
	const partitions, kills = 6, 5
	bucket := newBucket(t, c)
	a := newAdmin(t, addrs)
	topic, group := uniqueName("crash"), uniqueName("crash-backup")
	a.createTopic(topic, partitions)
	produce(t, addrs, topic, testMessages(n, 1024))
	ends := a.endOffsets(topic, partitions)

	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), envCrashChild+"=1", envCrashTopic+"="+topic, envCrashGroup+"="+group,
			envCrashBucket+"="+bucket, "KAFKA_BROKERS="+strings.Join(addrs, ","), "MQ_S3_ENDPOINT="+endpoint)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Start())
		return cmd
	}
	stored := func() int { return len(listAll(t, c, bucket, "crash")) }

	for i := range kills {
		before := stored()
		cmd := start()
		// Kill it while it backs up: once it stored some more objects (a
		// restarted member first waits for the killed one's session to
		// expire, 10 s).
		require.Eventually(t, func() bool { return stored() >= before+40+i*13 }, 3*time.Minute, 20*time.Millisecond,
			"kill %d: the child stored nothing new", i+1)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()

		// Nothing committed past what is stored.
		counts := offsetCounts(t, c, bucket, "crash")
		committed := a.committed(group, topic, partitions)
		for p := range partitions {
			for o := int64(0); o < committed[p]; o++ {
				require.Positive(t, counts[p][o], "kill %d: partition %d committed %d but offset %d is not stored", i+1, p, committed[p], o)
			}
		}
		t.Logf("kill %d: %d objects, committed %v", i+1, len(listAll(t, c, bucket, "crash")), committed)
	}

	cmd := start()
	waitCommitted(t, a, group, topic, ends, 5*time.Minute)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())

	counts := offsetCounts(t, c, bucket, "crash")
	for p := range partitions {
		require.Len(t, counts[p], int(ends[p]), "partition %d", p)
		for o := range ends[p] {
			require.Equal(t, 1, counts[p][o], "partition %d offset %d", p, o)
		}
	}
	plan, err := PlanRestore(context.Background(), c, bucket, "crash")
	require.NoError(t, err)
	for _, pp := range plan.Partitions {
		require.Empty(t, pp.Redundant)
		require.Zero(t, pp.Overlapping)
	}
}
