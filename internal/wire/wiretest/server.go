package wiretest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/mqkit/mq/internal/wire/internal/header"
	"github.com/segmentio/kafka-go/protocol"
)

// serverConn is one accepted connection: a goroutine reads and records
// requests, another answers them in order.
type serverConn struct {
	c      *Cluster
	b      *broker
	serial int
	nc     net.Conn
	ctx    context.Context // ends when the connection closes
	cancel context.CancelFunc

	mu      sync.Mutex
	queue   []*job
	wake    chan struct{} // cap 1: the queue grew
	closeMu sync.Once
}

type job struct {
	req    *Request
	readAt time.Time
}

func newServerConn(c *Cluster, b *broker, serial int, nc net.Conn) *serverConn {
	ctx, cancel := context.WithCancel(c.ctx)
	return &serverConn{c: c, b: b, serial: serial, nc: nc, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1)}
}

func (sc *serverConn) start() {
	sc.c.wg.Add(2)
	go func() {
		defer sc.c.wg.Done()
		defer sc.close()
		sc.readLoop()
	}()
	go func() {
		defer sc.c.wg.Done()
		defer sc.close()
		sc.writeLoop()
	}()
}

func (sc *serverConn) close() {
	sc.closeMu.Do(func() {
		sc.cancel()
		_ = sc.nc.Close()
		sc.c.forget(sc.b, sc)
	})
}

func (sc *serverConn) readLoop() {
	r := bufio.NewReader(sc.nc)
	var size [4]byte
	for {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(size[:])
		if n < 8 || n > 1<<30 {
			sc.c.errorf("broker %d: request frame of %d bytes", sc.b.id, n)
			return
		}
		frame := make([]byte, 4+n)
		copy(frame, size[:])
		if _, err := io.ReadFull(r, frame[4:]); err != nil {
			return
		}
		key := protocol.ApiKey(binary.BigEndian.Uint16(frame[4:6]))
		version := int16(binary.BigEndian.Uint16(frame[6:8]))
		if !supported(key, version) {
			// kafka-go could not decode it (it would panic on an API it
			// has no types for).
			sc.c.errorf("broker %d: request %s v%d that kafka-go does not support", sc.b.id, key, version)
			return
		}
		_, corrID, clientID, msg, err := protocol.ReadRequest(bytes.NewReader(frame))
		if err != nil {
			sc.c.errorf("broker %d: decoding %s v%d: %v", sc.b.id, key, version, err)
			return
		}
		sc.c.record(Record{Broker: sc.b.id, Conn: sc.serial, Key: key, Version: version})
		req := &Request{
			ctx:           sc.ctx,
			Broker:        sc.b.id,
			Conn:          sc.serial,
			Key:           key,
			Version:       version,
			CorrelationID: corrID,
			Size:          len(frame),
			ClientID:      clientID,
			Msg:           msg,
		}
		sc.mu.Lock()
		sc.queue = append(sc.queue, &job{req: req, readAt: time.Now()})
		sc.mu.Unlock()
		select {
		case sc.wake <- struct{}{}:
		default:
		}
	}
}

func (sc *serverConn) next() *job {
	for {
		sc.mu.Lock()
		if len(sc.queue) > 0 {
			j := sc.queue[0]
			sc.queue[0] = nil
			sc.queue = sc.queue[1:]
			sc.mu.Unlock()
			return j
		}
		sc.mu.Unlock()
		select {
		case <-sc.wake:
		case <-sc.ctx.Done():
			return nil
		}
	}
}

func (sc *serverConn) writeLoop() {
	for {
		j := sc.next()
		if j == nil {
			return
		}
		res := Default()
		if h := sc.c.handler(j.req.Key); h != nil {
			res = h(j.req)
		}
		if !sc.hold(j, res) {
			return
		}
		if res.drop {
			return
		}
		if !hasResponse(j.req.Msg) {
			continue // produce with acks=0
		}
		var err error
		switch {
		case res.isRaw:
			err = writeRaw(sc.nc, j.req, res.raw)
		case res.explicit:
			err = protocol.WriteResponse(sc.nc, j.req.Version, j.req.CorrelationID, res.msg)
		default:
			msg := sc.c.builtIn(j.req)
			if msg == nil {
				sc.c.errorf("broker %d: no handler for %s v%d", sc.b.id, j.req.Key, j.req.Version)
				return
			}
			err = protocol.WriteResponse(sc.nc, j.req.Version, j.req.CorrelationID, msg)
		}
		if err != nil {
			var netErr *net.OpError // the client went away: not the test's concern
			if sc.ctx.Err() == nil && !errors.As(err, &netErr) {
				sc.c.errorf("broker %d: writing the %s v%d response: %v", sc.b.id, j.req.Key, j.req.Version, err)
			}
			return
		}
	}
}

// hold waits as res asks; false when the connection closed meanwhile.
func (sc *serverConn) hold(j *job, res Response) bool {
	if res.delay > 0 {
		t := time.NewTimer(time.Until(j.readAt.Add(res.delay)))
		defer t.Stop()
		select {
		case <-t.C:
		case <-sc.ctx.Done():
			return false
		}
	}
	if res.until != nil {
		select {
		case <-res.until:
		case <-sc.ctx.Done():
			return false
		}
	}
	return sc.ctx.Err() == nil
}

// writeRaw frames body as the response to req.
func writeRaw(w io.Writer, req *Request, body []byte) error {
	hdr := 4
	if header.ResponseFlexible(req.Msg, req.Version) {
		hdr++ // an empty tagged-field buffer
	}
	frame := make([]byte, 4+hdr+len(body))
	binary.BigEndian.PutUint32(frame[0:4], uint32(hdr+len(body)))
	binary.BigEndian.PutUint32(frame[4:8], uint32(req.CorrelationID))
	copy(frame[4+hdr:], body) // the tag buffer byte, if any, stays 0
	_, err := w.Write(frame)
	return err
}

func hasResponse(m protocol.Message) bool {
	r, ok := m.(interface{ HasResponse() bool })
	return !ok || r.HasResponse()
}
