package wire_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/mqkit/mq/internal/wire/wiretest"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/saslauthenticate"
	"github.com/segmentio/kafka-go/protocol/saslhandshake"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// saslBroker answers SaslHandshake and SaslAuthenticate for PLAIN with one
// user, as a broker would.
func saslBroker(cl *wiretest.Cluster, user, password string) {
	cl.Handle(protocol.SaslHandshake, func(r *wiretest.Request) wiretest.Response {
		if r.Msg.(*saslhandshake.Request).Mechanism != "PLAIN" {
			return wiretest.Reply(&saslhandshake.Response{ErrorCode: int16(kafka.UnsupportedSASLMechanism), Mechanisms: []string{"PLAIN"}})
		}
		return wiretest.Reply(&saslhandshake.Response{Mechanisms: []string{"PLAIN"}})
	})
	cl.Handle(protocol.SaslAuthenticate, func(r *wiretest.Request) wiretest.Response {
		if string(r.Msg.(*saslauthenticate.Request).AuthBytes) != "\x00"+user+"\x00"+password {
			return wiretest.Reply(&saslauthenticate.Response{
				ErrorCode:    int16(kafka.SASLAuthenticationFailed),
				ErrorMessage: "Authentication failed: Invalid username or password",
			})
		}
		return wiretest.Reply(&saslauthenticate.Response{})
	})
}

func TestDialSASL(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	saslBroker(cl, "alice", "secret-pw")
	cl.Handle(protocol.FindCoordinator, echoCoordinator)

	c := dial(t, &wire.Dialer{SASL: plain.Mechanism{Username: "alice", Password: "secret-pw"}}, cl.Addr(0))
	res, err := c.RoundTrip(ctxT(t), coordReq(4))
	requireCoord(t, 4, res, err)
	assert.Equal(t, []protocol.ApiKey{protocol.ApiVersions, protocol.SaslHandshake, protocol.SaslAuthenticate, protocol.FindCoordinator},
		keysSeen(cl))
}

func TestDialSASLFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(cl *wiretest.Cluster)
		want  error
	}{
		{"WrongPassword", func(cl *wiretest.Cluster) { saslBroker(cl, "alice", "other-pw") }, kafka.SASLAuthenticationFailed},
		{"MechanismNotEnabled", func(cl *wiretest.Cluster) {
			saslBroker(cl, "alice", "secret-pw")
			cl.Handle(protocol.SaslHandshake, func(r *wiretest.Request) wiretest.Response {
				return wiretest.Reply(&saslhandshake.Response{ErrorCode: int16(kafka.UnsupportedSASLMechanism)})
			})
		}, kafka.UnsupportedSASLMechanism},
		{"BrokerClosesDuringAuthenticate", func(cl *wiretest.Cluster) {
			saslBroker(cl, "alice", "secret-pw")
			cl.Handle(protocol.SaslAuthenticate, func(*wiretest.Request) wiretest.Response { return wiretest.Drop() })
		}, kafka.SASLAuthenticationFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := wiretest.NewCluster(t, 1)
			tc.setup(cl)
			_, err := (&wire.Dialer{SASL: plain.Mechanism{Username: "alice", Password: "secret-pw"}}).DialConn(ctxT(t), cl.Addr(0))
			require.ErrorIs(t, err, tc.want)
			assert.NotContains(t, err.Error(), "secret-pw")
			require.Eventually(t, func() bool { return cl.OpenConns(0) == 0 }, waitFor, time.Millisecond, "the failed connection is closed")
		})
	}
}

func TestDialTimeout(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	never := make(chan struct{})
	defer close(never)
	cl.Handle(protocol.ApiVersions, func(*wiretest.Request) wiretest.Response { return wiretest.Default().Until(never) })
	_, err := (&wire.Dialer{DialTimeout: 20 * time.Millisecond}).DialConn(ctxT(t), cl.Addr(0))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Eventually(t, func() bool { return cl.OpenConns(0) == 0 }, waitFor, time.Millisecond)

	// Cancelling the context interrupts a dial blocked on the broker.
	ctx, cancel := context.WithCancel(ctxT(t))
	cl.Handle(protocol.ApiVersions, func(*wiretest.Request) wiretest.Response {
		cancel()
		return wiretest.Default().Until(never)
	})
	_, err = (&wire.Dialer{}).DialConn(ctx, cl.Addr(0))
	require.ErrorIs(t, err, context.Canceled)
}

func TestDialTLS(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	cl.Handle(protocol.FindCoordinator, echoCoordinator)
	ca, serverCert := testPKI(t)
	addr := tlsProxy(t, serverCert, cl.Addr(0))

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	// ServerName defaults to the dialed host, 127.0.0.1, which the
	// certificate names.
	c := dial(t, &wire.Dialer{TLS: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}, addr)
	res, err := c.RoundTrip(ctxT(t), coordReq(5))
	requireCoord(t, 5, res, err)

	t.Run("UnknownAuthority", func(t *testing.T) {
		_, err := (&wire.Dialer{TLS: &tls.Config{MinVersion: tls.VersionTLS12}}).DialConn(ctxT(t), addr)
		var unknown x509.UnknownAuthorityError
		require.ErrorAs(t, err, &unknown)
		var verify *tls.CertificateVerificationError
		require.ErrorAs(t, err, &verify)
	})
	t.Run("WrongServerName", func(t *testing.T) {
		_, err := (&wire.Dialer{TLS: &tls.Config{RootCAs: roots, ServerName: "kafka.example.com", MinVersion: tls.VersionTLS12}}).DialConn(ctxT(t), addr)
		var hostname x509.HostnameError
		require.ErrorAs(t, err, &hostname)
	})
}

func keysSeen(cl *wiretest.Cluster) []protocol.ApiKey {
	var out []protocol.ApiKey
	for _, r := range cl.Requests() {
		out = append(out, r.Key)
	}
	return out
}

// testPKI returns a CA and a server certificate for 127.0.0.1 signed by it.
func testPKI(t *testing.T) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wire test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	return ca, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsProxy terminates TLS on a loopback port and relays to backend.
func tlsProxy(t *testing.T, cert tls.Certificate, backend string) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			front, err := ln.Accept()
			if err != nil {
				return
			}
			back, err := net.Dial("tcp", backend)
			if err != nil {
				_ = front.Close()
				continue
			}
			mu.Lock()
			open = append(open, front, back)
			mu.Unlock()
			wg.Add(2)
			relay := func(dst, src net.Conn) {
				defer wg.Done()
				_, _ = io.Copy(dst, src)
				_ = dst.Close()
				_ = src.Close()
			}
			go relay(front, back)
			go relay(back, front)
		}
	}()
	return ln.Addr().String()
}
