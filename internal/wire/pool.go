package wire

import (
	"context"
	"fmt"
	"sync"
)

// Purpose separates traffic so that a long fetch never delays a produce or a
// heartbeat: a [Pool] keeps one connection per broker and purpose.
type Purpose int

// Purposes of connections.
const (
	PurposeProduce Purpose = iota // produce requests
	PurposeFetch                  // fetch requests (long polls)
	PurposeGroup                  // group membership and offset commits
	PurposeControl                // metadata, coordinators, admin requests
)

// String returns the purpose's name.
func (p Purpose) String() string {
	switch p {
	case PurposeProduce:
		return "produce"
	case PurposeFetch:
		return "fetch"
	case PurposeGroup:
		return "group"
	case PurposeControl:
		return "control"
	}
	return fmt.Sprintf("purpose(%d)", int(p))
}

// Network gives connections. [*Pool] is the real one; package wiretest
// provides fakes. Engines depend on this interface.
type Network interface {
	// Conn returns a usable connection to addr for purpose.
	Conn(ctx context.Context, addr string, purpose Purpose) (*Conn, error)
}

var _ Network = (*Pool)(nil)

// Pool keeps at most one connection per (address, purpose). It dials lazily
// (concurrent callers share one dial), replaces a broken connection on the
// next Conn call, and closes everything on Close. It is safe for concurrent
// use.
type Pool struct {
	dialer *Dialer

	ctx    context.Context // ends on Close: aborts dials in progress
	cancel context.CancelFunc
	dials  sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[poolKey]*poolEntry
}

type poolKey struct {
	addr    string
	purpose Purpose
}

type poolEntry struct {
	conn    *Conn         // nil while dialing
	dialing chan struct{} // closed when the dial ends (conn or err set)
	err     error         // the dial's error, for the callers waiting on it

	handouts uint64 // Conn calls that returned conn
	seen     uint64 // handouts + conn.sent at the last CloseIdle
}

// NewPool returns a pool that dials with d. d must not change while the
// pool is in use.
func NewPool(d *Dialer) *Pool {
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{dialer: d, ctx: ctx, cancel: cancel, conns: make(map[poolKey]*poolEntry)}
}

// Conn returns the pool's connection to addr for purpose, dialing one if
// there is none or the last one broke. If ctx ends while a dial is in
// progress, Conn returns ctx.Err() and the dial goes on for later callers.
func (p *Pool) Conn(ctx context.Context, addr string, purpose Purpose) (*Conn, error) {
	key := poolKey{addr, purpose}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrPoolClosed
	}
	e := p.conns[key]
	if e != nil && e.conn != nil {
		if e.conn.Err() == nil {
			e.handouts++
			c := e.conn
			p.mu.Unlock()
			return c, nil
		}
		e = nil // broken: dial a new one
	}
	if e == nil {
		e = &poolEntry{dialing: make(chan struct{})}
		p.conns[key] = e
		p.dials.Add(1)
		go p.dial(key, e)
	}
	p.mu.Unlock()

	select {
	case <-e.dialing:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.err != nil {
		return nil, e.err
	}
	if p.closed {
		return nil, ErrPoolClosed
	}
	e.handouts++
	return e.conn, nil
}

// dial runs one dial for the callers of Conn waiting on e.
func (p *Pool) dial(key poolKey, e *poolEntry) {
	defer p.dials.Done()
	c, err := p.dialer.DialConn(p.ctx, key.addr)

	p.mu.Lock()
	var discard *Conn
	switch {
	case err != nil:
		e.err = err
		if p.conns[key] == e {
			delete(p.conns, key) // the next Conn call dials again
		}
	case p.closed:
		e.err, discard = ErrPoolClosed, c
	default:
		e.conn = c
	}
	close(e.dialing)
	p.mu.Unlock()
	if discard != nil {
		_ = discard.Close()
	}
}

// CloseIdle closes the connections that have nothing in flight and were not
// used (handed out by Conn, or sent a request) since the previous CloseIdle
// call: called every N seconds, it closes connections unused for N seconds.
func (p *Pool) CloseIdle() {
	p.mu.Lock()
	var idle []*Conn
	for key, e := range p.conns {
		if e.conn == nil {
			continue
		}
		use := e.handouts + e.conn.sent.Load()
		if use == e.seen && e.conn.inFlight() == 0 {
			idle = append(idle, e.conn)
			delete(p.conns, key)
			continue
		}
		e.seen = use
	}
	p.mu.Unlock()
	for _, c := range idle {
		_ = c.Close()
	}
}

// Close closes every connection, aborts dials in progress and waits for
// them. Conn fails with ErrPoolClosed afterwards.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := make([]*Conn, 0, len(p.conns))
	for _, e := range p.conns {
		if e.conn != nil {
			conns = append(conns, e.conn)
		}
	}
	p.conns = nil
	p.mu.Unlock()

	p.cancel()
	p.dials.Wait()
	for _, c := range conns {
		_ = c.Close()
	}
	return nil
}
