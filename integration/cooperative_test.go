package integration

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gapRecorder remembers when each partition last processed a message and
// the longest pause between two messages of a partition since reset.
type gapRecorder struct {
	mu     sync.Mutex
	last   map[int]time.Time
	maxGap map[int]time.Duration
	seen   map[int]int
}

func newGapRecorder() *gapRecorder {
	return &gapRecorder{last: map[int]time.Time{}, maxGap: map[int]time.Duration{}, seen: map[int]int{}}
}

func (g *gapRecorder) handle(_ context.Context, m mq.Message[ChatMessage]) error {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if t, ok := g.last[m.Partition]; ok && now.Sub(t) > g.maxGap[m.Partition] {
		g.maxGap[m.Partition] = now.Sub(t)
	}
	g.last[m.Partition] = now
	g.seen[m.Value.ID]++
	return nil
}

func (g *gapRecorder) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.maxGap = map[int]time.Duration{}
}

func (g *gapRecorder) unique() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}

// A third member joins a group of two under load. With cooperative-sticky
// (KIP-429) the partitions that stay with their member are never revoked:
// only those that move to the newcomer are, and the others keep being
// processed through the rebalance. The longest processing pause of the
// partitions that did not move is reported, next to the eager (range)
// figure, where every partition stops.
func TestCooperativeThirdMemberKeepsStayingPartitions(t *testing.T) {
	for _, protocol := range []mq.GroupProtocol{mq.GroupProtocolCooperativeSticky, mq.GroupProtocolRange} {
		t.Run(string(protocol), func(t *testing.T) { cooperativeJoin(t, protocol) })
	}
}

func cooperativeJoin(t *testing.T, protocol mq.GroupProtocol) {
	const partitions = 6
	topic := cluster.NewTopic(t, partitions)
	group := "g-" + topic
	p := newProducer(t, topic, mq.WithManualPartitioning(true))
	gaps := newGapRecorder()

	var revokedMu sync.Mutex
	revoked := map[string][]int{} // member -> partitions revoked after the third joined
	var thirdJoined bool
	newMember := func(name string) *mq.KafkaConsumer[ChatMessage] {
		c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, group, fastConsumer(t,
			mq.WithGroupProtocol(protocol),
			mq.WithOnRevoked(func(m map[string][]int) {
				revokedMu.Lock()
				if thirdJoined {
					revoked[name] = append(revoked[name], m[topic]...)
				}
				revokedMu.Unlock()
			}))...)
		require.NoError(t, err)
		require.NoError(t, c.RegisterHandlerFunc(gaps.handle))
		return c
	}

	// Load: a message to every partition every 10 ms. loadGap is the
	// load's own longest pause since the reset (a slow send stalls every
	// partition, moving or not).
	ctx, stopLoad := context.WithCancel(context.Background())
	var sent int
	var loadMu sync.Mutex
	var lastSend time.Time
	var loadGap time.Duration
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		for i := 0; ctx.Err() == nil; i++ {
			msgs := make([]mq.Message[ChatMessage], 0, partitions)
			for k := 0; k < partitions; k++ {
				id := i*partitions + k
				msgs = append(msgs, mq.Message[ChatMessage]{Partition: k, Key: []byte(fmt.Sprint(id)),
					Value: ChatMessage{ID: id, ConversationID: convID(id), Body: "load"}})
			}
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := p.SendMessages(sctx, msgs...)
			cancel()
			if err != nil {
				return
			}
			now := time.Now()
			loadMu.Lock()
			if !lastSend.IsZero() && now.Sub(lastSend) > loadGap {
				loadGap = now.Sub(lastSend)
			}
			lastSend = now
			loadMu.Unlock()
			sent += partitions
			time.Sleep(10 * time.Millisecond) // the load's pace
		}
	}()

	a, b := newMember("a"), newMember("b")
	ra, rb := start(a), start(b)
	held := func(c *mq.KafkaConsumer[ChatMessage]) []int {
		var out []int
		for _, ps := range c.Stats().Partitions {
			out = append(out, ps.Partition)
		}
		slices.Sort(out)
		return out
	}
	require.Eventually(t, func() bool { return len(held(a)) == 3 && len(held(b)) == 3 }, 30*time.Second, 10*time.Millisecond)
	before := map[string][]int{"a": held(a), "b": held(b)}
	require.Eventually(t, func() bool { return gaps.unique() > 200 }, 30*time.Second, 10*time.Millisecond)

	gaps.reset()
	loadMu.Lock()
	loadGap = 0
	loadMu.Unlock()
	revokedMu.Lock()
	thirdJoined = true
	revokedMu.Unlock()
	c := newMember("c")
	rc := start(c)
	require.Eventually(t, func() bool { return len(held(a)) == 2 && len(held(b)) == 2 && len(held(c)) == 2 },
		30*time.Second, 10*time.Millisecond)
	settled := gaps.unique()
	require.Eventually(t, func() bool { return gaps.unique() > settled+100 }, 30*time.Second, 10*time.Millisecond)
	stopLoad()
	<-loadDone

	after := map[string][]int{"a": held(a), "b": held(b)}
	var stayed []int
	for _, m := range []string{"a", "b"} {
		for _, p := range before[m] {
			if slices.Contains(after[m], p) {
				stayed = append(stayed, p)
			}
		}
	}
	gaps.mu.Lock()
	var worst time.Duration
	for _, p := range stayed {
		worst = max(worst, gaps.maxGap[p])
	}
	gaps.mu.Unlock()
	revokedMu.Lock()
	loadMu.Lock()
	t.Logf("%s: partitions that stayed %v; revoked after the third joined: %v; longest processing pause of a partition that stayed: %v (the load's own longest pause between sends: %v)",
		protocol, stayed, revoked, worst.Round(time.Millisecond), loadGap.Round(time.Millisecond))
	loadMu.Unlock()
	if protocol == mq.GroupProtocolCooperativeSticky {
		require.Len(t, stayed, 4)
		for m, ps := range revoked {
			for _, p := range ps {
				assert.NotContains(t, stayed, p, "member %s revoked partition %d, which stayed with it", m, p)
				assert.Contains(t, held(c), p, "a revoked partition went to the newcomer")
			}
		}
	} else {
		assert.Len(t, append(revoked["a"], revoked["b"]...), partitions, "eager: every partition revoked")
	}
	revokedMu.Unlock()

	require.Eventually(t, func() bool { return gaps.unique() >= sent }, 30*time.Second, 10*time.Millisecond, "nothing lost")
	require.NoError(t, rc.stop(t))
	require.NoError(t, ra.stop(t))
	require.NoError(t, rb.stop(t))
}
