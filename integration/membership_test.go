package integration

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/group"
	"github.com/mqkit/mq/internal/wire"
	"github.com/mqkit/mq/mqtest"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

// newMembership returns a group member on its own connection pool.
func newMembership(t *testing.T, groupID string, topics []string, instance string, assignors ...group.Assignor) *group.Membership {
	t.Helper()
	if len(assignors) == 0 {
		assignors = []group.Assignor{group.Range()}
	}
	pool := wire.NewPool(&wire.Dialer{ClientID: "mq-membership-test"})
	t.Cleanup(func() { _ = pool.Close() })
	m, err := group.NewMembership(group.Config{
		Network: pool, Client: wire.NewClient(pool, cluster.Addrs()), Group: groupID, InstanceID: instance,
		Topics: topics, Assignors: assignors,
		SessionTimeout: 2 * time.Second, RebalanceTimeout: 10 * time.Second, HeartbeatInterval: 100 * time.Millisecond,
		WatchInterval: 500 * time.Millisecond, Logger: zaptest.NewLogger(t),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// joinAsync joins in the background (a JoinGroup blocks until every member
// rejoined).
func joinAsync(ctx context.Context, m *group.Membership, owned []group.TopicPartition, gen int32) <-chan *group.Generation {
	ch := make(chan *group.Generation, 1)
	go func() {
		for ctx.Err() == nil {
			g, err := m.Join(ctx, owned, gen)
			if err == nil {
				ch <- g
				return
			}
			time.Sleep(100 * time.Millisecond) // coordinator not ready yet: retry
		}
		close(ch)
	}()
	return ch
}

func recv(t *testing.T, ch <-chan *group.Generation) *group.Generation {
	t.Helper()
	select {
	case g, ok := <-ch:
		require.True(t, ok, "join ended without a generation")
		return g
	case <-time.After(30 * time.Second):
		t.Fatal("join did not complete within 30s")
	}
	return nil
}

// awaitRebalance waits for gen to end.
func awaitRebalance(t *testing.T, gen *group.Generation, member string) {
	t.Helper()
	select {
	case <-gen.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("member %s never saw the rebalance", member)
	}
}

// drainAfterRebalance waits for gen to end in a rebalance, then for twice
// the session timeout: the member's "handlers" draining while its
// heartbeats go on.
func drainAfterRebalance(t *testing.T, gen *group.Generation, member string) {
	t.Helper()
	awaitRebalance(t, gen, member)
	drainUntil := time.Now().Add(4 * time.Second)
	for time.Now().Before(drainUntil) {
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMembershipJoinShareCommit: two members of one group (range) split a
// topic's partitions; each commits through its generation and the offsets
// read back.
func TestMembershipJoinShareCommit(t *testing.T) {
	ctx := ctxT(t)
	topic := cluster.NewTopic(t, 4)
	gid := mqtest.UniqueName("membership")
	a := newMembership(t, gid, []string{topic}, "")
	ga := recv(t, joinAsync(ctx, a, nil, group.NoGeneration))
	require.True(t, ga.Leader)
	require.Len(t, ga.Assigned, 4)

	b := newMembership(t, gid, []string{topic}, "")
	chB := joinAsync(ctx, b, nil, group.NoGeneration)
	// a learns of the rebalance from its heartbeats and rejoins.
	select {
	case <-ga.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("member a never saw the rebalance")
	}
	require.ErrorIs(t, ga.Err(), group.ErrRebalance)
	ga2 := recv(t, joinAsync(ctx, a, nil, ga.ID))
	gb := recv(t, chB)
	require.Equal(t, ga2.ID, gb.ID)
	require.Len(t, ga2.Assigned, 2)
	require.Len(t, gb.Assigned, 2)
	all := append(slices.Clone(ga2.Assigned), gb.Assigned...)
	seen := map[int32]bool{}
	for _, tp := range all {
		seen[tp.Partition] = true
	}
	require.Len(t, seen, 4, "every partition assigned once: %v", all)

	offs := map[group.TopicPartition]int64{}
	for i, tp := range ga2.Assigned {
		offs[tp] = int64(10 + i)
	}
	require.NoError(t, a.Commit(ctx, ga2, offs))
	got, err := b.FetchOffsets(ctx, ga2.Assigned)
	require.NoError(t, err)
	require.Equal(t, offs, got)

	// A commit through the ended generation is refused.
	err = a.Commit(ctx, ga, offs)
	require.Error(t, err)
}

// TestMembershipHeartbeatsWhileDraining: a member whose generation ended
// keeps heartbeating while its owner drains for twice the session timeout;
// its commit through the ended generation then succeeds, and it rejoins
// without having been expelled.
func TestMembershipHeartbeatsWhileDraining(t *testing.T) {
	ctx := ctxT(t)
	topic := cluster.NewTopic(t, 2)
	gid := mqtest.UniqueName("membership-drain")
	a := newMembership(t, gid, []string{topic}, "")
	ga := recv(t, joinAsync(ctx, a, nil, group.NoGeneration))
	idA := ga.MemberID

	b := newMembership(t, gid, []string{topic}, "")
	chB := joinAsync(ctx, b, nil, group.NoGeneration)
	drainAfterRebalance(t, ga, "a")
	offs := map[group.TopicPartition]int64{}
	for _, tp := range ga.Assigned {
		offs[tp] = 7
	}
	require.NoError(t, a.Commit(ctx, ga, offs), "the revoke commit after a long drain")
	ga2 := recv(t, joinAsync(ctx, a, nil, ga.ID))
	gb := recv(t, chB)
	require.Equal(t, idA, ga2.MemberID, "a kept its member ID: never expelled")
	require.Equal(t, ga2.ID, gb.ID)
	require.Len(t, append(slices.Clone(ga2.Assigned), gb.Assigned...), 2)
}

// TestMembershipRejoinOutlastsTheSessionTimeout: a member that rejoins
// first waits in JoinGroup while the other drains for twice the session
// timeout; it stays a member (kfake expired a waiting member that did not
// heartbeat and never answered its JoinGroup) and its one join succeeds.
func TestMembershipRejoinOutlastsTheSessionTimeout(t *testing.T) {
	ctx := ctxT(t)
	topic := cluster.NewTopic(t, 2)
	gid := mqtest.UniqueName("membership-rejoin")
	a := newMembership(t, gid, []string{topic}, "")
	ga := recv(t, joinAsync(ctx, a, nil, group.NoGeneration))
	b := newMembership(t, gid, []string{topic}, "")
	chB := joinAsync(ctx, b, nil, group.NoGeneration)
	awaitRebalance(t, ga, "a")
	ga = recv(t, joinAsync(ctx, a, ga.Assigned, ga.ID))
	gb := recv(t, chB)
	require.Equal(t, ga.ID, gb.ID)

	type joined struct {
		gen *group.Generation
		err error
	}
	done := make(chan joined, 1)
	go func() { // a, the leader, rejoins first
		g, err := a.Join(ctx, ga.Assigned, ga.ID)
		done <- joined{g, err}
	}()
	drainAfterRebalance(t, gb, "b")
	gb2 := recv(t, joinAsync(ctx, b, gb.Assigned, gb.ID))
	var j joined
	select {
	case j = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a's rejoin did not complete within 30s")
	}
	require.NoError(t, j.err, "a's rejoin")
	require.Equal(t, ga.MemberID, j.gen.MemberID, "a kept its member ID: never expelled")
	require.Equal(t, j.gen.ID, gb2.ID)
	require.Len(t, append(slices.Clone(j.gen.Assigned), gb2.Assigned...), 2)
}

// TestMembershipLeaveOnClose: a dynamic member leaves on Close, so the
// other member rebalances at once and takes every partition.
func TestMembershipLeaveOnClose(t *testing.T) {
	ctx := ctxT(t)
	topic := cluster.NewTopic(t, 2)
	gid := mqtest.UniqueName("membership-leave")
	a := newMembership(t, gid, []string{topic}, "")
	b := newMembership(t, gid, []string{topic}, "")
	chA := joinAsync(ctx, a, nil, group.NoGeneration)
	ga := recv(t, chA)
	chB := joinAsync(ctx, b, nil, group.NoGeneration)
	<-ga.Done()
	ga = recv(t, joinAsync(ctx, a, nil, ga.ID))
	gb := recv(t, chB)
	require.Equal(t, ga.ID, gb.ID)

	require.NoError(t, b.Close(ctx))
	select {
	case <-ga.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("no rebalance after b left")
	}
	ga2 := recv(t, joinAsync(ctx, a, ga.Assigned, ga.ID))
	require.Len(t, ga2.Assigned, 2)
	_, err := b.Join(ctx, nil, group.NoGeneration)
	require.True(t, errors.Is(err, group.ErrMemberClosed))
}
