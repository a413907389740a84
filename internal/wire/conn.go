package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// maxResponseSize bounds the size a response frame may claim; a larger one
// means the stream is not Kafka's (or is corrupt).
const maxResponseSize = 1 << 30

// Conn is one broker connection with negotiated API versions.
//
// Requests are written in the order Send is called: Send is safe for
// concurrent use and concurrent callers are serialized. Requests are
// pipelined: several may be in flight, and since Kafka answers in order on a
// connection, each response goes to the oldest request still waiting (its
// correlation id is checked). A goroutine reads responses for the life of
// the connection; Close stops it.
//
// A connection breaks on any write or read error, on a response that cannot
// be framed or matched, and when a response is overdue (see
// [Dialer.ResponseGrace]). A broken connection fails every request in flight
// with an error wrapping [ErrConnClosed] and the cause, and closes Done.
type Conn struct {
	addr     string
	clientID string
	nc       net.Conn
	rd       io.Reader // buffered reader over nc (kafka-go's protocol.Conn)
	versions map[protocol.ApiKey]int16
	grace    time.Duration

	wsem   chan struct{} // holding it grants the right to write
	corrID int32         // guarded by wsem

	// writeMu guards writer: the request being written, which a context
	// cancellation may interrupt.
	writeMu sync.Mutex
	writer  *Pending

	mu       sync.Mutex
	inflight []*Pending // awaiting a response, in the order written
	readDL   time.Time  // the read deadline set on nc: earliest overdue point in flight
	err      error      // why the connection ended; set once
	done     chan struct{}

	sent       atomic.Uint64 // requests written, for Pool.CloseIdle
	readerDone chan struct{}
}

func newConn(addr, clientID string, nc net.Conn, rd io.Reader, versions map[protocol.ApiKey]int16, grace time.Duration) *Conn {
	c := &Conn{
		addr:       addr,
		clientID:   clientID,
		nc:         nc,
		rd:         rd,
		versions:   versions,
		grace:      grace,
		wsem:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	go c.readLoop()
	return c
}

// Addr returns the address the connection was dialed to.
func (c *Conn) Addr() string { return c.addr }

// Version returns the version of API k that requests on this connection use:
// the highest that both kafka-go and the broker support. ok is false when
// they share none, or the broker does not know k.
func (c *Conn) Version(k protocol.ApiKey) (v int16, ok bool) {
	v, ok = c.versions[k]
	return v, ok
}

// Done is closed when the connection is broken or closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended (wrapping [ErrConnClosed]), or nil
// while it is usable.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection and fails every request in flight. It waits
// for the connection's reading goroutine to stop.
func (c *Conn) Close() error {
	c.fail(connClosed(c.addr, "closed by the client", nil))
	<-c.readerDone
	return nil
}

// Send writes req and returns once it is written, or fails. The response
// comes with [Pending.Wait].
//
// The deadline of ctx is the request's own deadline: if its response is
// overdue by more than the connection's grace, the connection is closed. If
// ctx ends before the write begins, Send returns ctx.Err() and nothing is
// written; if it ends during the write (only a slow socket makes that
// possible), the partly written request cannot be taken back and the
// connection is closed.
//
// A request whose HasResponse method reports false (produce with acks=0)
// completes when written: its Wait returns (nil, nil).
func (c *Conn) Send(ctx context.Context, req protocol.Message) (*Pending, error) {
	return c.send(ctx, req, false)
}

// SendRaw is Send for callers that decode the response themselves: Wait
// returns a *[RawResponse].
func (c *Conn) SendRaw(ctx context.Context, req protocol.Message) (*Pending, error) {
	return c.send(ctx, req, true)
}

// RoundTrip sends req and waits for its response.
func (c *Conn) RoundTrip(ctx context.Context, req protocol.Message) (protocol.Message, error) {
	p, err := c.Send(ctx, req)
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

// SendMax is Send (raw: SendRaw) at a version no higher than max: for
// requests whose kafka-go type encodes or decodes wrongly above some version
// (the group package caps Heartbeat and LeaveGroup below their flexible
// versions and decodes their responses itself).
func (c *Conn) SendMax(ctx context.Context, req protocol.Message, max int16, raw bool) (*Pending, error) {
	return c.sendAt(ctx, req, raw, max)
}

func (c *Conn) send(ctx context.Context, req protocol.Message, raw bool) (*Pending, error) {
	return c.sendAt(ctx, req, raw, -1)
}

func (c *Conn) sendAt(ctx context.Context, req protocol.Message, raw bool, max int16) (*Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	key := req.ApiKey()
	version, ok := c.Version(key)
	if !ok {
		return nil, fmt.Errorf("wire: %s: %s is not supported in any version kafka-go knows: %w",
			c.addr, key, kafka.UnsupportedVersion)
	}
	if max >= 0 && version > max {
		version = max
	}
	if p, ok := req.(protocol.PreparedMessage); ok {
		p.Prepare(version)
	}
	if r, ok := req.(protocol.RawExchanger); ok && r.Required(c.versions) {
		return nil, fmt.Errorf("wire: %s: %s v%d needs an unframed exchange, possible only while dialing", c.addr, key, version)
	}

	// Encode before taking the write slot, with a placeholder correlation
	// id (bytes 8..12 of the frame: size, api key, api version, id).
	frame, body, err := c.encode(req, key, version)
	if err != nil {
		return nil, fmt.Errorf("wire: encoding %s v%d: %w", key, version, err)
	}

	p := &Pending{
		conn:    c,
		req:     req,
		key:     key,
		version: version,
		raw:     raw,
		done:    make(chan struct{}),
	}
	if d, ok := ctx.Deadline(); ok {
		p.overdue = d.Add(c.grace)
	}
	expectResponse := hasResponse(req)

	select {
	case c.wsem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, c.Err()
	}
	defer func() { <-c.wsem }()

	c.corrID++
	p.corrID = c.corrID
	binary.BigEndian.PutUint32(frame[8:12], uint32(p.corrID))

	if expectResponse {
		// Queued before it is written: the reader must know the request
		// before the response can possibly arrive.
		if err := c.enqueue(p); err != nil {
			return nil, err
		}
	}

	c.writeMu.Lock()
	c.writer = p
	// Clears a deadline that an earlier request's cancellation may have
	// set just as its write completed.
	_ = c.nc.SetWriteDeadline(time.Time{})
	c.writeMu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		if c.writer == p { // still writing this request: make the write fail
			_ = c.nc.SetWriteDeadline(time.Unix(1, 0))
		}
	})
	if body == nil {
		_, err = c.nc.Write(frame)
	} else {
		bufs := append(net.Buffers{frame}, body...)
		_, err = bufs.WriteTo(c.nc) // writev: encode joins the buffers unless nc is TCP
	}
	c.writeMu.Lock()
	c.writer = nil
	c.writeMu.Unlock()
	stop()
	c.sent.Add(1)

	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			c.fail(connClosed(c.addr, "writing "+key.String()+" interrupted by its caller", nil))
			return nil, fmt.Errorf("wire: %s: writing %s: %w (%w)", c.addr, key, ctxErr, c.Err())
		}
		c.fail(connClosed(c.addr, "writing "+key.String(), err))
		return nil, c.Err()
	}
	if !expectResponse {
		p.complete(nil, nil)
	}
	return p, nil
}

// Vectored is a request that encodes its own body, for requests that carry
// large payloads already encoded (the produce engine's record batches). On a
// plain TCP connection the request header and the body's buffers leave in
// one vectored write, and the payloads are not copied into a request
// buffer. On any other connection (TLS, or one a custom Dial wrapped) they
// are joined into one buffer first: net.Buffers would write them one Write
// each there, and each request stays one Write, as for other requests.
type Vectored interface {
	protocol.Message
	// Body returns the request's body at version, everything after the
	// request header, as buffers written in order; they must not change
	// until Send returns. Conn writes request header v1 (key, version,
	// correlation id, client id), so Body must fail for a flexible version,
	// whose header has tagged fields.
	Body(version int16) (net.Buffers, error)
}

// encode returns req's frame with a placeholder correlation id: the whole
// frame, or for a Vectored request on a TCP connection its header alone
// (frame size included) and the body's buffers.
func (c *Conn) encode(req protocol.Message, key protocol.ApiKey, version int16) (frame []byte, body net.Buffers, err error) {
	v, ok := req.(Vectored)
	if !ok {
		var buf bytes.Buffer
		if err := protocol.WriteRequest(&buf, version, 0, c.clientID, req); err != nil {
			return nil, nil, err
		}
		return buf.Bytes(), nil, nil
	}
	if body, err = v.Body(version); err != nil {
		return nil, nil, err
	}
	if len(c.clientID) > math.MaxInt16 {
		return nil, nil, fmt.Errorf("client id of %d bytes", len(c.clientID))
	}
	size := 2 + 2 + 4 + 2 + len(c.clientID)
	for _, b := range body {
		size += len(b)
	}
	if size > math.MaxInt32 {
		return nil, nil, fmt.Errorf("request of %d bytes", size)
	}
	be := binary.BigEndian
	frame = make([]byte, 0, 4+2+2+4+2+len(c.clientID))
	frame = be.AppendUint32(frame, uint32(size))
	frame = be.AppendUint16(frame, uint16(key))
	frame = be.AppendUint16(frame, uint16(version))
	frame = be.AppendUint32(frame, 0) // correlation id, set once the write slot is held
	frame = be.AppendUint16(frame, uint16(len(c.clientID)))
	frame = append(frame, c.clientID...)
	if _, tcp := c.nc.(*net.TCPConn); !tcp {
		whole := make([]byte, 0, 4+size)
		whole = append(whole, frame...)
		for _, b := range body {
			whole = append(whole, b...)
		}
		return whole, nil, nil
	}
	return frame, body, nil
}

func hasResponse(m protocol.Message) bool {
	r, ok := m.(interface{ HasResponse() bool })
	return !ok || r.HasResponse()
}

// enqueue adds p to the requests awaiting a response and brings the read
// deadline forward to p's overdue point.
func (c *Conn) enqueue(p *Pending) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.inflight = append(c.inflight, p)
	if !p.overdue.IsZero() && (c.readDL.IsZero() || p.overdue.Before(c.readDL)) {
		c.readDL = p.overdue
		_ = c.nc.SetReadDeadline(c.readDL)
	}
	return nil
}

// dequeue removes the oldest request awaiting a response and moves the read
// deadline to the earliest overdue point of those still in flight.
func (c *Conn) dequeue() *Pending {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.inflight) == 0 {
		return nil
	}
	p := c.inflight[0]
	c.inflight[0] = nil
	c.inflight = c.inflight[1:]
	var dl time.Time
	for _, q := range c.inflight {
		if !q.overdue.IsZero() && (dl.IsZero() || q.overdue.Before(dl)) {
			dl = q.overdue
		}
	}
	if !dl.Equal(c.readDL) {
		c.readDL = dl
		_ = c.nc.SetReadDeadline(dl)
	}
	return p
}

// overdueRequest returns a request in flight whose response is overdue.
func (c *Conn) overdueRequest(now time.Time) *Pending {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.inflight {
		if !p.overdue.IsZero() && !now.Before(p.overdue) {
			return p
		}
	}
	return nil
}

// inFlight reports the number of requests awaiting a response.
func (c *Conn) inFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inflight)
}

// fail ends the connection with err (the first call wins) and fails every
// request in flight.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	q := c.inflight
	c.inflight = nil
	close(c.done)
	c.mu.Unlock()

	_ = c.nc.Close()
	for _, p := range q {
		p.complete(nil, err)
	}
}

// readLoop reads response frames and hands each to the oldest request in
// flight, until the connection ends.
func (c *Conn) readLoop() {
	defer close(c.readerDone)
	var size [4]byte
	for {
		n, err := io.ReadFull(c.rd, size[:])
		if err != nil {
			if n == 0 && c.deadlineOnly(err) {
				continue
			}
			c.readFailed(err)
			return
		}
		s := int32(binary.BigEndian.Uint32(size[:]))
		if s < 4 || s > maxResponseSize {
			c.fail(connClosed(c.addr, fmt.Sprintf("response frame of %d bytes", s), nil))
			return
		}
		// The frame keeps its size prefix: protocol.ReadResponse reads it.
		frame := make([]byte, 4+s)
		copy(frame, size[:])
		if _, err := io.ReadFull(c.rd, frame[4:]); err != nil {
			c.readFailed(err)
			return
		}
		corrID := int32(binary.BigEndian.Uint32(frame[4:8]))
		p := c.dequeue()
		if p == nil {
			c.fail(connClosed(c.addr, fmt.Sprintf("response with correlation id %d to no request", corrID), nil))
			return
		}
		if p.corrID != corrID {
			err := connClosed(c.addr, fmt.Sprintf("response with correlation id %d to request %d (%s)", corrID, p.corrID, p.key), nil)
			p.complete(nil, err)
			c.fail(err)
			return
		}
		p.complete(c.decode(p, frame))
	}
}

// deadlineOnly reports whether err is a read deadline that passed although
// no request is overdue (a deadline moved while the read was blocked); the
// read can then simply start again.
func (c *Conn) deadlineOnly(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) && c.Err() == nil && c.overdueRequest(time.Now()) == nil
}

func (c *Conn) readFailed(err error) {
	if c.Err() != nil {
		return // closed: the read error is only the consequence
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if p := c.overdueRequest(time.Now()); p != nil {
			c.fail(connClosed(c.addr, fmt.Sprintf("no response to %s v%d (correlation id %d) within its deadline plus %s",
				p.key, p.version, p.corrID, c.grace), err))
			return
		}
	}
	c.fail(connClosed(c.addr, "reading a response", err))
}

// decode turns a response frame into the result of p. A frame that does not
// decode fails p alone: the frame was read whole, so the stream is intact.
func (c *Conn) decode(p *Pending, frame []byte) (protocol.Message, error) {
	if p.raw {
		body, err := rawBody(p.req, p.version, frame[8:])
		if err != nil {
			return nil, fmt.Errorf("wire: %s: %s v%d response header: %w", c.addr, p.key, p.version, err)
		}
		return &RawResponse{Key: p.key, Version: p.version, Body: body}, nil
	}
	_, m, err := protocol.ReadResponse(bytes.NewReader(frame), p.key, p.version)
	if err != nil {
		return nil, fmt.Errorf("wire: %s: decoding %s v%d response: %w", c.addr, p.key, p.version, err)
	}
	return m, nil
}

// Pending is a request that was written and whose response may still come.
type Pending struct {
	conn    *Conn
	req     protocol.Message
	key     protocol.ApiKey
	version int16
	raw     bool
	corrID  int32
	overdue time.Time // zero: the request has no deadline

	done chan struct{}
	res  protocol.Message
	err  error
}

func (p *Pending) complete(res protocol.Message, err error) {
	p.res, p.err = res, err
	close(p.done)
}

// Wait returns the response: the decoded kafka-go response type after Send,
// a *[RawResponse] after SendRaw, (nil, nil) for a request without response.
// If ctx ends first, Wait returns ctx.Err(); the connection stays usable and
// the response, when it comes, is read and dropped. Wait may be called more
// than once.
func (p *Pending) Wait(ctx context.Context) (protocol.Message, error) {
	select {
	case <-p.done:
		return p.res, p.err
	default:
	}
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Done is closed when the response (or the error) is available to Wait.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Version returns the API version the request was sent with.
func (p *Pending) Version() int16 { return p.version }
