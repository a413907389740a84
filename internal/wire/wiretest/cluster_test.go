package wiretest_test

import (
	"context"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/mqkit/mq/internal/wire/wiretest"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/heartbeat"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHeldResponseBlocksNoOtherBroker(t *testing.T) {
	cl := wiretest.NewCluster(t, 2)
	gate := make(chan struct{})
	cl.Handle(protocol.Heartbeat, func(r *wiretest.Request) wiretest.Response {
		res := wiretest.Reply(&heartbeat.Response{})
		if r.Broker == 1 {
			return res.Until(gate)
		}
		return res
	})
	pool := wire.NewPool(&wire.Dialer{})
	defer pool.Close()
	c1, err := pool.Conn(ctxT(t), cl.Addr(1), wire.PurposeGroup)
	require.NoError(t, err)
	c0, err := pool.Conn(ctxT(t), cl.Addr(0), wire.PurposeGroup)
	require.NoError(t, err)

	held, err := c1.Send(ctxT(t), &heartbeat.Request{GroupID: "g"})
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		_, err := c0.RoundTrip(ctxT(t), &heartbeat.Request{GroupID: "g"})
		require.NoError(t, err)
	}
	select {
	case <-held.Done():
		t.Fatal("broker 1 answered before the test let it")
	default:
	}
	close(gate)
	_, err = held.Wait(ctxT(t))
	require.NoError(t, err)

	assert.Equal(t, 3, cl.Count(0, protocol.Heartbeat))
	assert.Equal(t, 1, cl.Count(1, protocol.Heartbeat))
	assert.Equal(t, 4, cl.Count(-1, protocol.Heartbeat))
	assert.Equal(t, 1, cl.OpenConns(0))
	assert.Equal(t, 1, cl.OpenConns(1))
}

func TestAfterDelaysFromReading(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	const delay = 50 * time.Millisecond
	cl.Handle(protocol.Heartbeat, func(r *wiretest.Request) wiretest.Response {
		return wiretest.Reply(&heartbeat.Response{}).After(delay)
	})
	c, err := (&wire.Dialer{}).DialConn(ctxT(t), cl.Addr(0))
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	_, err = c.RoundTrip(ctxT(t), &heartbeat.Request{GroupID: "g"})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), delay, "the response cannot come before its delay")
}

func TestRecordsAndConnections(t *testing.T) {
	cl := wiretest.NewCluster(t, 2)
	c, err := (&wire.Dialer{}).DialConn(ctxT(t), cl.Addr(1))
	require.NoError(t, err)
	v, ok := c.Version(protocol.Heartbeat)
	require.True(t, ok)
	assert.Equal(t, protocol.Heartbeat.MaxVersion(), v, "every version kafka-go supports is advertised")

	recs := cl.Requests()
	require.Len(t, recs, 1)
	assert.Equal(t, wiretest.Record{Broker: 1, Conn: 1, Key: protocol.ApiVersions, Version: 0}, recs[0])
	assert.Equal(t, 1, cl.OpenConns(1))
	assert.Equal(t, 0, cl.OpenConns(0))

	require.NoError(t, c.Close())
	require.Eventually(t, func() bool { return cl.OpenConns(1) == 0 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, 1, cl.Accepted(1))

	cl.Stop(1)
	_, err = (&wire.Dialer{}).DialConn(ctxT(t), cl.Addr(1))
	require.Error(t, err, "a stopped broker refuses connections")
	cl.Start(1)
	c, err = (&wire.Dialer{}).DialConn(ctxT(t), cl.Addr(1))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	assert.Equal(t, 2, cl.Accepted(1))
}
