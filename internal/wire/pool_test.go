package wire_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/mqkit/mq/internal/wire/wiretest"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newPool(t *testing.T, d *wire.Dialer) *wire.Pool {
	p := wire.NewPool(d)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestPoolOneConnPerAddressAndPurpose(t *testing.T) {
	cl := wiretest.NewCluster(t, 2)
	cl.Handle(protocol.FindCoordinator, echoCoordinator)
	p := newPool(t, &wire.Dialer{})

	produce0, err := p.Conn(ctxT(t), cl.Addr(0), wire.PurposeProduce)
	require.NoError(t, err)
	again, err := p.Conn(ctxT(t), cl.Addr(0), wire.PurposeProduce)
	require.NoError(t, err)
	require.Same(t, produce0, again)

	fetch0, err := p.Conn(ctxT(t), cl.Addr(0), wire.PurposeFetch)
	require.NoError(t, err)
	require.NotSame(t, produce0, fetch0)
	produce1, err := p.Conn(ctxT(t), cl.Addr(1), wire.PurposeProduce)
	require.NoError(t, err)
	require.NotSame(t, produce0, produce1)

	for _, c := range []*wire.Conn{produce0, fetch0, produce1} {
		res, err := c.RoundTrip(ctxT(t), coordReq(3))
		requireCoord(t, 3, res, err)
	}
	assert.Equal(t, 2, cl.OpenConns(0))
	assert.Equal(t, 1, cl.OpenConns(1))

	require.NoError(t, p.Close())
	require.Eventually(t, func() bool { return cl.OpenConns(0)+cl.OpenConns(1) == 0 }, waitFor, time.Millisecond)
	_, err = p.Conn(ctxT(t), cl.Addr(0), wire.PurposeProduce)
	require.ErrorIs(t, err, wire.ErrPoolClosed)
}

func TestPoolRedialsBrokenConn(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	cl.Handle(protocol.FindCoordinator, echoCoordinator)
	p := newPool(t, &wire.Dialer{})

	first, err := p.Conn(ctxT(t), cl.Addr(0), wire.PurposeControl)
	require.NoError(t, err)
	cl.KillConns(0)
	<-first.Done()

	second, err := p.Conn(ctxT(t), cl.Addr(0), wire.PurposeControl)
	require.NoError(t, err)
	require.NotSame(t, first, second)
	res, err := second.RoundTrip(ctxT(t), coordReq(1))
	requireCoord(t, 1, res, err)
	assert.Equal(t, 2, cl.Accepted(0))
	assert.Equal(t, 1, cl.OpenConns(0))
}

// gatedDialer counts dials and holds each until the gate opens.
type gatedDialer struct {
	dials atomic.Int32
	gate  chan struct{}
}

func (g *gatedDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	g.dials.Add(1)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

func TestPoolSharesOneDial(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	g := &gatedDialer{gate: make(chan struct{})}
	p := newPool(t, &wire.Dialer{Dial: g.dial})

	// A caller whose context ends stops waiting; the dial goes on.
	ctx, cancel := context.WithCancel(ctxT(t))
	quitter := make(chan error, 1)
	go func() {
		_, err := p.Conn(ctx, cl.Addr(0), wire.PurposeGroup)
		quitter <- err
	}()
	require.Eventually(t, func() bool { return g.dials.Load() == 1 }, waitFor, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-quitter, context.Canceled)

	const callers = 10
	conns := make([]*wire.Conn, callers)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.Conn(ctxT(t), cl.Addr(0), wire.PurposeGroup)
			assert.NoError(t, err)
			conns[i] = c
		}()
	}
	close(g.gate)
	wg.Wait()
	for _, c := range conns {
		require.Same(t, conns[0], c)
	}
	assert.Equal(t, int32(1), g.dials.Load())
	assert.Equal(t, 1, cl.Accepted(0))
}

func TestPoolDialErrorIsNotKept(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	addr := cl.Addr(0)
	cl.Stop(0)
	p := newPool(t, &wire.Dialer{})
	_, err := p.Conn(ctxT(t), addr, wire.PurposeControl)
	require.Error(t, err)

	cl.Start(0)
	c, err := p.Conn(ctxT(t), addr, wire.PurposeControl)
	require.NoError(t, err)
	require.NoError(t, c.Err())
}

func TestPoolCloseAbortsDial(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	g := &gatedDialer{gate: make(chan struct{})} // never opens
	p := wire.NewPool(&wire.Dialer{Dial: g.dial})
	errs := make(chan error, 1)
	go func() {
		_, err := p.Conn(context.Background(), cl.Addr(0), wire.PurposeFetch)
		errs <- err
	}()
	require.Eventually(t, func() bool { return g.dials.Load() == 1 }, waitFor, time.Millisecond)
	require.NoError(t, p.Close())
	require.Error(t, <-errs)
}

func TestPoolCloseIdle(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	cl.Handle(protocol.FindCoordinator, echoCoordinator)
	p := newPool(t, &wire.Dialer{})
	busy, err := p.Conn(ctxT(t), cl.Addr(0), wire.PurposeProduce)
	require.NoError(t, err)
	idle, err := p.Conn(ctxT(t), cl.Addr(0), wire.PurposeFetch)
	require.NoError(t, err)

	p.CloseIdle() // both were just handed out: used since the last call
	require.NoError(t, busy.Err())
	require.NoError(t, idle.Err())

	res, err := busy.RoundTrip(ctxT(t), coordReq(1))
	requireCoord(t, 1, res, err)
	p.CloseIdle()
	require.NoError(t, busy.Err())
	require.ErrorIs(t, idle.Err(), wire.ErrConnClosed)

	// A request in flight keeps a connection open, however long unused.
	gate := make(chan struct{})
	cl.Handle(protocol.FindCoordinator, func(r *wiretest.Request) wiretest.Response {
		return echoCoordinator(r).Until(gate)
	})
	pending, err := busy.Send(ctxT(t), coordReq(2))
	require.NoError(t, err)
	p.CloseIdle()
	p.CloseIdle()
	require.NoError(t, busy.Err())
	close(gate)
	res, err = pending.Wait(ctxT(t))
	requireCoord(t, 2, res, err)
	p.CloseIdle()
	require.ErrorIs(t, busy.Err(), wire.ErrConnClosed)

	again, err := p.Conn(ctxT(t), cl.Addr(0), wire.PurposeFetch)
	require.NoError(t, err)
	require.NotSame(t, idle, again)
}
