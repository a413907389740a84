package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqtest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRunHandlesEveryEvent(t *testing.T) {
	c := mqtest.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	var out bytes.Buffer
	require.NoError(t, run(ctx, c.Addrs(), &out))
	t.Log("\n" + out.String())

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 6, "3 logins, 2 orders and the summary")
	for _, want := range []string{
		"login: user=u1 ip=192.0.2.10",
		"login: user=u2 ip=198.51.100.7",
		"order paid: order=o-1001 user=u1 amount=19.99 EUR",
		"order paid: order=o-1002 user=u2 amount=500.00 USD",
	} {
		require.Contains(t, out.String(), want)
	}
	require.Equal(t, "done: handled 3 user-logins and 2 orders-paid events", lines[len(lines)-1])

	// Both groups committed everything they handled.
	for topic, group := range map[string]string{topicUserLogins: "security-audit", topicOrdersPaid: "billing"} {
		committed, err := c.CommittedOffsets(ctx, group, topic)
		require.NoError(t, err)
		end, err := c.EndOffsets(ctx, topic)
		require.NoError(t, err)
		for p, o := range end {
			require.Equal(t, o, max(committed[p], 0), "%s[%d]: -1 (no commit) is right for an empty partition", topic, p)
		}
	}
}

// TestRunPipelineNewType is what adding an event type looks like.
func TestRunPipelineNewType(t *testing.T) {
	type PasswordChanged struct{ UserID string }
	c := mqtest.New(t)
	topic := c.NewTopic(t, 2)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	var mu sync.Mutex // partitions are handled concurrently
	var got []string
	err := runPipeline(ctx, c.Addrs(), topic, mqtest.UniqueName("group"),
		[]PasswordChanged{{"u1"}, {"u2"}, {"u3"}},
		func(e PasswordChanged) []byte { return []byte(e.UserID) },
		func(_ context.Context, m mq.Message[PasswordChanged]) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, m.Value.UserID)
			return nil
		})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"u1", "u2", "u3"}, got)
}
