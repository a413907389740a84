package wire

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/apiversions"
	"github.com/segmentio/kafka-go/protocol/saslauthenticate"
	"github.com/segmentio/kafka-go/protocol/saslhandshake"
	"github.com/segmentio/kafka-go/sasl"
)

// Defaults for the zero values of [Dialer]'s durations.
const (
	DefaultDialTimeout   = 10 * time.Second
	DefaultResponseGrace = 10 * time.Second
)

// Dialer opens authenticated connections to brokers. Its zero value dials
// plaintext TCP without SASL. A Dialer must not be changed while in use.
type Dialer struct {
	// ClientID is sent in every request header.
	ClientID string
	// DialTimeout bounds TCP connect, TLS handshake, ApiVersions and SASL
	// together. Zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// TLS enables TLS when not nil. An empty ServerName defaults to the host
	// of the dialed address.
	TLS *tls.Config
	// SASL authenticates every connection when not nil (kafka-go's plain and
	// scram mechanisms).
	SASL sasl.Mechanism
	// Dial opens the TCP connection. Nil means a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// ResponseGrace is how long a response may be overdue, past the deadline
	// of the context its request was sent with, before the connection is
	// deemed dead and closed. Zero means DefaultResponseGrace.
	ResponseGrace time.Duration
}

// DialConn connects to the broker at addr ("host:port"), negotiates API
// versions and authenticates. Errors keep kafka-go's values in the chain:
// kafka.SASLAuthenticationFailed (also when the broker closes the connection
// during SASL), kafka.UnsupportedSASLMechanism, and the crypto/tls and
// crypto/x509 errors of a failed handshake.
func (d *Dialer) DialConn(ctx context.Context, addr string) (*Conn, error) {
	timeout := d.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	dial := d.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, withCtxErr(ctx, fmt.Errorf("wire: dialing %s: %w", addr, err))
	}
	c, err := d.setup(ctx, nc, addr)
	if err != nil {
		_ = nc.Close()
		return nil, withCtxErr(ctx, err)
	}
	return c, nil
}

// withCtxErr adds the reason ctx ended to err, when that is why err
// happened, so that errors.Is(err, context.DeadlineExceeded) holds.
func withCtxErr(ctx context.Context, err error) error {
	ctxErr := ctx.Err()
	if ctxErr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// The only deadline set on the connection is ctx's: it passed a
		// moment before ctx's own timer fired.
		ctxErr = context.DeadlineExceeded
	}
	if ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%w (%w)", err, ctxErr)
	}
	return err
}

// setup runs the handshakes on a fresh TCP connection.
func (d *Dialer) setup(ctx context.Context, nc net.Conn, addr string) (*Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("wire: address %q: %w", addr, err)
	}

	// The handshakes below block in reads and writes: a deadline bounds
	// them, and cancelling ctx interrupts them.
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if d.TLS != nil {
		cfg := d.TLS
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("wire: TLS handshake with %s: %w", addr, err)
		}
		nc = tc
	}

	pc := protocol.NewConn(nc, d.ClientID)
	versions, err := negotiate(pc)
	if err != nil {
		return nil, fmt.Errorf("wire: negotiating API versions with %s: %w", addr, err)
	}
	// pc.RoundTrip picks request versions from this map (SASL below).
	pc.SetVersions(versions)

	if d.SASL != nil {
		port, _ := strconv.Atoi(portStr)
		sctx := sasl.WithMetadata(ctx, &sasl.Metadata{Host: host, Port: port})
		if err := authenticate(sctx, pc, d.SASL); err != nil {
			return nil, fmt.Errorf("wire: SASL %s with %s: %w", d.SASL.Name(), addr, err)
		}
	}

	if !stop() {
		return nil, fmt.Errorf("wire: connecting to %s: %w", addr, context.Cause(ctx))
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("wire: connecting to %s: %w", addr, err)
	}
	grace := d.ResponseGrace
	if grace <= 0 {
		grace = DefaultResponseGrace
	}
	return newConn(addr, d.ClientID, nc, pc, versions, grace), nil
}

// negotiate sends ApiVersions v0 (every broker answers it) and keeps, per
// API, the highest version both kafka-go and the broker support. APIs whose
// ranges do not overlap are left out.
func negotiate(pc *protocol.Conn) (map[protocol.ApiKey]int16, error) {
	m, err := pc.RoundTrip(&apiversions.Request{})
	if err != nil {
		return nil, err
	}
	res := m.(*apiversions.Response)
	if res.ErrorCode != 0 {
		return nil, kafka.Error(res.ErrorCode)
	}
	versions := make(map[protocol.ApiKey]int16, len(res.ApiKeys))
	for _, k := range res.ApiKeys {
		key := protocol.ApiKey(k.ApiKey)
		if v := min(key.MaxVersion(), k.MaxVersion); v >= max(key.MinVersion(), k.MinVersion) {
			versions[key] = v
		}
	}
	return versions, nil
}

// authenticate runs the SASL handshake and the challenge/response exchange
// on a connection nothing else uses yet (kafka-go's authenticateSASL).
func authenticate(ctx context.Context, pc *protocol.Conn, mech sasl.Mechanism) error {
	m, err := pc.RoundTrip(&saslhandshake.Request{Mechanism: mech.Name()})
	if err != nil {
		return saslIOError(err)
	}
	if code := m.(*saslhandshake.Response).ErrorCode; code != 0 {
		return kafka.Error(code)
	}
	sess, state, err := mech.Start(ctx)
	if err != nil {
		return err
	}
	for done := false; !done; {
		m, err := pc.RoundTrip(&saslauthenticate.Request{AuthBytes: state})
		if err != nil {
			return saslIOError(err)
		}
		res := m.(*saslauthenticate.Response)
		if res.ErrorCode != 0 {
			if res.ErrorMessage != "" {
				// The broker's message names the mechanism, never a secret.
				return fmt.Errorf("%w: %s", kafka.Error(res.ErrorCode), res.ErrorMessage)
			}
			return kafka.Error(res.ErrorCode)
		}
		if done, state, err = sess.Next(ctx, res.AuthBytes); err != nil {
			return err
		}
	}
	return nil
}

// saslIOError maps a connection the broker closed during SASL to
// kafka.SASLAuthenticationFailed, as kafka-go does: a broker may report a
// failed exchange only by closing the connection (always so with the
// unframed tokens of SaslHandshake v0).
func saslIOError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: broker closed the connection: %w", kafka.SASLAuthenticationFailed, err)
	}
	return err
}
