package wire_test

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/mqkit/mq/internal/wire/wiretest"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/findcoordinator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newClient(t *testing.T, bootstrap ...string) *wire.Client {
	return wire.NewClient(newPool(t, &wire.Dialer{}), bootstrap)
}

func TestMetadataLayout(t *testing.T) {
	cl := wiretest.NewCluster(t, 3)
	cl.CreateTopic("orders", 3)
	cl.CreateTopic("other", 1)
	c := newClient(t, cl.Addr(0))

	md, err := c.Metadata(ctxT(t), []string{"orders", "missing"})
	require.NoError(t, err)
	require.Len(t, md.Brokers, 3)
	for id, b := range md.Brokers {
		assert.Equal(t, id, b.ID)
		assert.Equal(t, cl.Addr(id), b.Addr)
	}
	require.Len(t, md.Topics, 2, "only the topics asked for")
	require.ErrorIs(t, md.Topics["missing"].Err, kafka.UnknownTopicOrPartition)
	orders := md.Topics["orders"]
	require.NoError(t, orders.Err)
	require.Len(t, orders.Partitions, 3)
	for i, p := range orders.Partitions {
		assert.Equal(t, int32(i), p.ID)
		assert.Equal(t, int32(i), p.Leader)
		assert.Equal(t, int32(0), p.LeaderEpoch)
		assert.Len(t, p.Replicas, 3)
		assert.NoError(t, p.Err)
	}
	addr, ok := c.BrokerAddr(2)
	require.True(t, ok)
	assert.Equal(t, cl.Addr(2), addr)
	_, ok = c.BrokerAddr(7)
	assert.False(t, ok)

	// Fresh every time: leader changes show at once.
	cl.SetLeader("orders", 1, 2)
	cl.SetLeaderless("orders", 2)
	md, err = c.Metadata(ctxT(t), nil)
	require.NoError(t, err)
	require.Len(t, md.Topics, 2, "nil asks for all topics")
	p1, p2 := md.Topics["orders"].Partitions[1], md.Topics["orders"].Partitions[2]
	assert.Equal(t, int32(2), p1.Leader)
	assert.Equal(t, int32(1), p1.LeaderEpoch)
	assert.Equal(t, int32(-1), p2.Leader)
	assert.Equal(t, int32(1), p2.LeaderEpoch)
	require.ErrorIs(t, p2.Err, kafka.LeaderNotAvailable)
	assert.Equal(t, 2, cl.Count(-1, protocol.Metadata))

	md, err = c.Metadata(ctxT(t), []string{})
	require.NoError(t, err)
	assert.Empty(t, md.Topics, "an empty list asks for no topic")
}

func TestMetadataRotatesPastDownBrokers(t *testing.T) {
	cl := wiretest.NewCluster(t, 3)
	cl.CreateTopic("t", 1)
	c := newClient(t, cl.Addr(0), cl.Addr(1))

	cl.Stop(0)
	_, err := c.Metadata(ctxT(t), nil)
	require.NoError(t, err)
	assert.Equal(t, 1, cl.Count(1, protocol.Metadata))

	// The bootstrap brokers are both down: a broker learnt from metadata
	// answers.
	cl.Stop(1)
	_, err = c.Metadata(ctxT(t), nil)
	require.NoError(t, err)
	assert.Equal(t, 1, cl.Count(2, protocol.Metadata))

	// The broker that answered last is asked first.
	cl.Start(0)
	_, err = c.Metadata(ctxT(t), nil)
	require.NoError(t, err)
	assert.Equal(t, 2, cl.Count(2, protocol.Metadata))
	assert.Equal(t, 0, cl.Count(0, protocol.Metadata))

	cl.Stop(0)
	cl.Stop(2)
	_, err = c.Metadata(ctxT(t), nil)
	require.Error(t, err)
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "each broker's error stays in the chain")
}

func TestMetadataRotatesPastHungBroker(t *testing.T) {
	cl := wiretest.NewCluster(t, 2)
	never := make(chan struct{})
	defer close(never)
	cl.Handle(protocol.Metadata, func(r *wiretest.Request) wiretest.Response {
		if r.Broker == 0 {
			return wiretest.Default().Until(never)
		}
		return wiretest.Default()
	})
	pool := newPool(t, &wire.Dialer{ResponseGrace: time.Millisecond})
	// Connected already: the request itself, not the dial, is what hangs.
	_, err := pool.Conn(ctxT(t), cl.Addr(0), wire.PurposeControl)
	require.NoError(t, err)
	c := wire.NewClient(pool, []string{cl.Addr(0), cl.Addr(1)})
	c.RequestTimeout = 50 * time.Millisecond
	// Broker 1 too must answer within RequestTimeout: on a loaded machine
	// it may not, the first time.
	var md *wire.Metadata
	require.Eventually(t, func() bool {
		var err error
		md, err = c.Metadata(ctxT(t), nil)
		return err == nil
	}, waitFor, time.Millisecond)
	assert.Len(t, md.Brokers, 2)
	assert.GreaterOrEqual(t, cl.Count(0, protocol.Metadata), 1, "the hung broker was asked")
	assert.GreaterOrEqual(t, cl.Count(1, protocol.Metadata), 1)
}

func TestFindCoordinatorRetries(t *testing.T) {
	cl := wiretest.NewCluster(t, 3)
	cl.SetCoordinator("group-a", 2)
	var calls atomic.Int32
	cl.Handle(protocol.FindCoordinator, func(r *wiretest.Request) wiretest.Response {
		switch calls.Add(1) {
		case 1:
			return wiretest.Reply(&findcoordinator.Response{ErrorCode: int16(kafka.GroupCoordinatorNotAvailable), NodeID: -1})
		case 2:
			return wiretest.Reply(&findcoordinator.Response{ErrorCode: int16(kafka.GroupLoadInProgress), NodeID: -1})
		}
		return wiretest.Default()
	})
	c := newClient(t, cl.Addr(0))
	id, addr, err := c.FindCoordinator(ctxT(t), "group-a", wire.CoordinatorGroup)
	require.NoError(t, err)
	assert.Equal(t, int32(2), id)
	assert.Equal(t, cl.Addr(2), addr)
	assert.Equal(t, 3, cl.Count(-1, protocol.FindCoordinator))
}

func TestFindCoordinatorErrors(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	cl.Handle(protocol.FindCoordinator, func(r *wiretest.Request) wiretest.Response {
		return wiretest.Reply(&findcoordinator.Response{ErrorCode: int16(kafka.GroupAuthorizationFailed)})
	})
	c := newClient(t, cl.Addr(0))

	_, _, err := c.FindCoordinator(ctxT(t), "forbidden", wire.CoordinatorGroup)
	require.ErrorIs(t, err, kafka.GroupAuthorizationFailed)
	assert.Equal(t, 1, cl.Count(0, protocol.FindCoordinator), "not retried")

	// Retried until the context ends.
	ctx, cancel := context.WithCancel(ctxT(t))
	var calls atomic.Int32
	cl.Handle(protocol.FindCoordinator, func(r *wiretest.Request) wiretest.Response {
		if calls.Add(1) == 3 {
			cancel()
		}
		return wiretest.Reply(&findcoordinator.Response{ErrorCode: int16(kafka.GroupCoordinatorNotAvailable)})
	})
	_, _, err = c.FindCoordinator(ctx, "never", wire.CoordinatorGroup)
	require.ErrorIs(t, err, kafka.GroupCoordinatorNotAvailable)
	require.ErrorIs(t, err, context.Canceled)
	assert.GreaterOrEqual(t, calls.Load(), int32(3))
}

func TestAny(t *testing.T) {
	cl := wiretest.NewCluster(t, 2)
	c := newClient(t, cl.Addr(0), cl.Addr(1))
	cl.Stop(0)
	conn, err := c.Any(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, cl.Addr(1), conn.Addr())
	again, err := c.Any(ctxT(t))
	require.NoError(t, err)
	assert.Same(t, conn, again, "a live control connection is reused")
}
