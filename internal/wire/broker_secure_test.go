package wire_test

// TLS and SASL/SCRAM against a secured Apache Kafka broker that the test
// starts itself with scripts/kafka (a JVM, no Docker), as
// integration/security_test.go does:
//
//	MQ_SECURE_TESTS=1 KAFKA_CACHE_DIR=/path/to/.cache/kafka go test -race -run TestSecuredBroker ./internal/wire/
//
// Without MQ_SECURE_TESTS it skips; with it, a broker that cannot start
// fails the test. Its listeners take free loopback ports, except PLAINTEXT
// and CONTROLLER when MQ_WIRE_SECURE_PORT and MQ_WIRE_SECURE_CONTROLLER_PORT
// name them. Certificates and passwords are made afresh for every run; the
// broker is stopped and its state dir (run/wire-secure) purged when the test
// ends, or by a watchdog if the test binary dies first.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/metadata"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const secureBrokerName = "wire-secure"

type secureBroker struct {
	plain, saslPlain, ssl, saslSSL string // listener addresses
	ca                             *x509.Certificate
	password                       string
}

func TestSecuredBroker(t *testing.T) {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("MQ_SECURE_TESTS"))) {
	case "", "0", "false", "no", "off":
		t.Skip("starts its own secured Kafka broker (Java, scripts/kafka): set MQ_SECURE_TESTS=1 to run it")
	}
	sb := startSecureBroker(t)
	roots := x509.NewCertPool()
	roots.AddCert(sb.ca)
	tlsCfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	scramMech := func(t *testing.T, algo scram.Algorithm, password string) sasl.Mechanism {
		m, err := scram.Mechanism(algo, "alice", password)
		require.NoError(t, err)
		return m
	}

	// ok dials, fetches metadata through a Client and checks the broker
	// answered over this very listener.
	ok := func(t *testing.T, d *wire.Dialer, addr string) {
		c := dial(t, d, addr)
		_, ok := c.Version(3) // Metadata
		require.True(t, ok)
		client := wire.NewClient(newPool(t, d), []string{addr})
		md, err := client.Metadata(ctxT(t), nil)
		require.NoError(t, err)
		require.Len(t, md.Brokers, 1)
		for _, b := range md.Brokers {
			assert.Equal(t, addr, b.Addr, "the broker advertises the listener dialed")
		}
	}
	fails := func(t *testing.T, d *wire.Dialer, addr string) error {
		_, err := d.DialConn(ctxT(t), addr)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), sb.password)
		t.Logf("error: %v", err)
		return err
	}

	t.Run("SCRAM-SHA-512", func(t *testing.T) {
		ok(t, &wire.Dialer{SASL: scramMech(t, scram.SHA512, sb.password)}, sb.saslPlain)
	})
	t.Run("SCRAM-SHA-256", func(t *testing.T) {
		ok(t, &wire.Dialer{SASL: scramMech(t, scram.SHA256, sb.password)}, sb.saslPlain)
	})
	t.Run("WrongPassword", func(t *testing.T) {
		err := fails(t, &wire.Dialer{SASL: scramMech(t, scram.SHA512, "wrong-"+sb.password)}, sb.saslPlain)
		require.ErrorIs(t, err, kafka.SASLAuthenticationFailed)
	})
	t.Run("MechanismNotEnabled", func(t *testing.T) {
		err := fails(t, &wire.Dialer{SASL: plain.Mechanism{Username: "alice", Password: sb.password}}, sb.saslPlain)
		require.ErrorIs(t, err, kafka.UnsupportedSASLMechanism)
	})
	t.Run("NoSASL", func(t *testing.T) {
		// A SASL listener answers ApiVersions, then closes a connection
		// that sends anything but the SASL handshake.
		c := dial(t, &wire.Dialer{}, sb.saslPlain)
		_, err := c.RoundTrip(ctxT(t), &metadata.Request{})
		require.ErrorIs(t, err, wire.ErrConnClosed)
		t.Logf("error: %v", err)
	})
	t.Run("TLS", func(t *testing.T) {
		ok(t, &wire.Dialer{TLS: tlsCfg}, sb.ssl)
	})
	t.Run("TLSUnknownAuthority", func(t *testing.T) {
		err := fails(t, &wire.Dialer{TLS: &tls.Config{MinVersion: tls.VersionTLS12}}, sb.ssl)
		var unknown x509.UnknownAuthorityError
		require.ErrorAs(t, err, &unknown)
	})
	t.Run("TLSWrongServerName", func(t *testing.T) {
		cfg := tlsCfg.Clone()
		cfg.ServerName = "kafka.example.com"
		err := fails(t, &wire.Dialer{TLS: cfg}, sb.ssl)
		var hostname x509.HostnameError
		require.ErrorAs(t, err, &hostname)
	})
	t.Run("PlaintextToTLS", func(t *testing.T) {
		err := fails(t, &wire.Dialer{DialTimeout: 10 * time.Second}, sb.ssl)
		require.False(t, errors.Is(err, kafka.SASLAuthenticationFailed))
	})
	t.Run("SCRAMOverTLS", func(t *testing.T) {
		ok(t, &wire.Dialer{TLS: tlsCfg, SASL: scramMech(t, scram.SHA512, sb.password)}, sb.saslSSL)
	})
	t.Run("SCRAMOverTLSWrongPassword", func(t *testing.T) {
		err := fails(t, &wire.Dialer{TLS: tlsCfg, SASL: scramMech(t, scram.SHA512, "wrong-"+sb.password)}, sb.saslSSL)
		require.ErrorIs(t, err, kafka.SASLAuthenticationFailed)
	})
}

func startSecureBroker(t *testing.T) *secureBroker {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	scripts := filepath.Join(root, "scripts", "kafka")
	startSh, stopSh := filepath.Join(scripts, "start.sh"), filepath.Join(scripts, "stop.sh")
	for _, tool := range []string{"java", "bash", "setsid", "flock"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not on PATH; the secured broker needs it (%v)", tool, err)
		}
	}

	port := func(env string) int {
		if v := os.Getenv(env); v != "" {
			p, err := strconv.Atoi(v)
			require.NoError(t, err, "%s=%q", env, v)
			return p
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	plainPort, controllerPort := port("MQ_WIRE_SECURE_PORT"), port("MQ_WIRE_SECURE_CONTROLLER_PORT")
	sb := &secureBroker{
		plain:     addr(plainPort),
		saslPlain: addr(port("")),
		ssl:       addr(port("")),
		saslSSL:   addr(port("")),
		password:  fmt.Sprintf("alice-pw-%d", time.Now().UnixNano()),
	}

	dir := t.TempDir()
	ca, server := testPKI(t)
	sb.ca = ca
	keyDER, err := x509.MarshalPKCS8PrivateKey(server.PrivateKey)
	require.NoError(t, err)
	serverPEM := bytes.Join([][]byte{
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate[0]}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}),
	}, nil)
	keystore := filepath.Join(dir, "server.pem")
	require.NoError(t, os.WriteFile(keystore, serverPEM, 0o600))

	jaas := "org.apache.kafka.common.security.scram.ScramLoginModule required;"
	props := strings.Join([]string{
		fmt.Sprintf("listeners=PLAINTEXT://%s,CONTROLLER://%s,SASL_PLAINTEXT://%s,SSL://%s,SASL_SSL://%s",
			sb.plain, addr(controllerPort), sb.saslPlain, sb.ssl, sb.saslSSL),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://%s,SASL_PLAINTEXT://%s,SSL://%s,SASL_SSL://%s",
			sb.plain, sb.saslPlain, sb.ssl, sb.saslSSL),
		"inter.broker.listener.name=PLAINTEXT",
		"sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
		"listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=" + jaas,
		"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=" + jaas,
		"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=" + jaas,
		"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=" + jaas,
		"ssl.keystore.type=PEM",
		"ssl.keystore.location=" + keystore,
		"",
	}, "\n")
	propsFile := filepath.Join(dir, "secure.properties")
	require.NoError(t, os.WriteFile(propsFile, []byte(props), 0o600))

	env := append(os.Environ(),
		"KAFKA_PORT="+strconv.Itoa(plainPort),
		"KAFKA_CONTROLLER_PORT="+strconv.Itoa(controllerPort),
		"KAFKA_EXTRA_PROPS=",
		"KAFKA_EXTRA_PROPS_FILE="+propsFile,
		"KAFKA_FORMAT_ARGS=--add-scram SCRAM-SHA-256=[name=alice,password="+sb.password+"] "+
			"--add-scram SCRAM-SHA-512=[name=alice,password="+sb.password+"]",
	)
	script := func(timeout time.Duration, path string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.Env = env
		cmd.WaitDelay = 5 * time.Second
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("%s %s: %w\n%s", filepath.Base(path), strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String(), nil
	}

	// A state dir left by an earlier run holds other passwords: start clean.
	_, err = script(time.Minute, stopSh, "--purge", secureBrokerName)
	require.NoError(t, err)
	watchdog := exec.Command("bash", "-c",
		`while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" --purge "$3" >/dev/null 2>&1`,
		"wire-secure-watchdog", strconv.Itoa(os.Getpid()), stopSh, secureBrokerName)
	watchdog.Env = env
	watchdog.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	require.NoError(t, watchdog.Start())
	t.Cleanup(func() {
		_ = watchdog.Process.Kill()
		_ = watchdog.Wait()
	})
	t.Cleanup(func() {
		if _, err := script(2*time.Minute, stopSh, "--purge", secureBrokerName); err != nil {
			t.Errorf("stopping the secured broker: %v", err)
		}
	})
	start := time.Now()
	out, err := script(4*time.Minute, startSh, secureBrokerName)
	if err != nil {
		t.Fatalf("starting the secured broker (MQ_SECURE_TESTS is set): %v", err)
	}
	t.Logf("secured broker started in %v: %s; SASL_PLAINTEXT %s, SSL %s, SASL_SSL %s",
		time.Since(start).Round(time.Millisecond), strings.TrimSpace(out), sb.saslPlain, sb.ssl, sb.saslSSL)
	return sb
}
