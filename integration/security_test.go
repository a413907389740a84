package integration

// TLS and SASL against a secured Apache Kafka broker that the test starts
// itself (scripts/kafka/start.sh, a JVM, no Docker) next to any other broker:
// its own state dir (.cache/kafka/run/mq-secure) and its own ports.
//
//	MQ_SECURE_TESTS=1 go test -race -count=1 -run TestSecuredBroker -v ./integration/
//
// Without MQ_SECURE_TESTS the test skips; with it, a broker that cannot start
// (no Java, no jars, busy port) fails the test. MQ_SECURE_NAME (mq-secure)
// names the broker instance (its state dir), MQ_SECURE_PORT_BASE (19092)
// moves the six ports: base PLAINTEXT (admin, inter-broker), base+1
// CONTROLLER, base+2 SASL_PLAINTEXT (SCRAM-SHA-256/512), base+3 SSL, base+4
// MTLS (SSL with ssl.client.auth=required), base+5 SASL_SSL (SCRAM over TLS).
//
// The certificates (an ECDSA CA, a server certificate for localhost and
// 127.0.0.1, a client certificate, and an unrelated "rogue" CA) and the SCRAM
// passwords are generated afresh for every run. The broker is stopped and its
// state dir purged when TestSecuredBroker ends; a watchdog process does the
// same if the test binary dies first (go test -timeout, a crash).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqtest"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

const (
	envSecure         = "MQ_SECURE_TESTS"
	envSecurePortBase = "MQ_SECURE_PORT_BASE"
	envSecureName     = "MQ_SECURE_NAME"
	secureUser        = "alice"

	// failFast bounds how long a client with bad credentials or an untrusted
	// certificate may take to report it.
	failFast = 15 * time.Second
	// maxFailedLogins bounds the broker's "Failed authentication" log lines
	// for one failing Send or Run: a few connections, not a retry storm.
	maxFailedLogins = 3
)

func secureRequired() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(envSecure))) {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}

// TestSecuredBroker starts one secured broker and runs every security
// scenario against it as subtests; the broker stops when the test ends.
func TestSecuredBroker(t *testing.T) {
	if !secureRequired() {
		t.Skipf("starts its own secured Kafka broker (Java, scripts/kafka): set %s=1 to run it", envSecure)
	}
	sk := startSecureKafka(t)

	t.Run("SCRAM", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			algo mq.ScramAlgorithm
		}{{"SHA-512", mq.ScramSHA512}, {"SHA-256", mq.ScramSHA256}} {
			t.Run(tc.name, func(t *testing.T) {
				mech := sk.scram(t, tc.algo, secureUser, sk.password)
				sk.roundTrip(t, sk.saslAddr, mq.WithSASL(mech))
			})
		}
		t.Run("RetryAndDeadLetterTopics", func(t *testing.T) {
			// The consumer's recovery publishers and its retry-topic readers
			// must authenticate like the consumer itself.
			sk.recovery(t, sk.saslAddr, mq.WithSASL(sk.scram(t, mq.ScramSHA512, secureUser, sk.password)))
		})
	})

	t.Run("WrongPassword", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			algo mq.ScramAlgorithm
		}{{"SHA-512", mq.ScramSHA512}, {"SHA-256", mq.ScramSHA256}} {
			t.Run(tc.name, func(t *testing.T) {
				mech := sk.scram(t, tc.algo, secureUser, sk.wrongPassword)
				f := sk.attempt(t, sk.saslAddr, nil, mq.WithSASL(mech))
				f.requireAuthError(t)
			})
		}
		t.Run("UnknownUser", func(t *testing.T) {
			mech := sk.scram(t, mq.ScramSHA512, "mallory", sk.wrongPassword)
			f := sk.attempt(t, sk.saslAddr, nil, mq.WithSASL(mech))
			f.requireAuthError(t)
		})
		t.Run("MechanismNotEnabled", func(t *testing.T) {
			// PLAIN is not in sasl.enabled.mechanisms: the handshake fails
			// with UNSUPPORTED_SASL_MECHANISM before any credential is sent.
			f := sk.attempt(t, sk.saslAddr, nil, mq.WithSASL(mq.SASLPlain(secureUser, sk.plainPassword)))
			f.requireAuthError(t)
		})
	})

	t.Run("TLS", func(t *testing.T) {
		t.Run("TrustedCA", func(t *testing.T) {
			sk.roundTrip(t, sk.sslAddr, mq.WithTLS(sk.tlsConfig(t, mq.TLSFiles{CAFile: sk.caFile})))
		})
		t.Run("ServerNameOverride", func(t *testing.T) {
			// The certificate names localhost too: checking that name
			// instead of the dialed 127.0.0.1 must work as well.
			sk.roundTrip(t, sk.sslAddr, mq.WithTLS(sk.tlsConfig(t, mq.TLSFiles{CAFile: sk.caFile, ServerName: "localhost"})))
		})
		t.Run("UntrustedCA", func(t *testing.T) {
			f := sk.attempt(t, sk.sslAddr, nil, mq.WithTLS(sk.tlsConfig(t, mq.TLSFiles{CAFile: sk.rogueCAFile})))
			f.requireClearFailure(t, []string{"x509", "certificate"})
		})
		t.Run("WrongServerName", func(t *testing.T) {
			f := sk.attempt(t, sk.sslAddr, nil, mq.WithTLS(sk.tlsConfig(t, mq.TLSFiles{CAFile: sk.caFile, ServerName: "kafka.example.com"})))
			f.requireClearFailure(t, []string{"x509", "certificate"})
		})
		t.Run("MutualTLS", func(t *testing.T) {
			sk.roundTrip(t, sk.mtlsAddr, mq.WithTLS(sk.tlsConfig(t, mq.TLSFiles{
				CAFile: sk.caFile, CertFile: sk.clientCertFile, KeyFile: sk.clientKeyFile,
			})))
		})
		t.Run("MutualTLSWithoutClientCert", func(t *testing.T) {
			f := sk.attempt(t, sk.mtlsAddr, nil, mq.WithTLS(sk.tlsConfig(t, mq.TLSFiles{CAFile: sk.caFile})))
			f.requireClearFailure(t, []string{"certificate"})
		})
		t.Run("SCRAMOverTLS", func(t *testing.T) {
			mech := sk.scram(t, mq.ScramSHA512, secureUser, sk.password)
			sk.roundTrip(t, sk.saslSSLAddr, mq.WithSASL(mech),
				mq.WithTLS(sk.tlsConfig(t, mq.TLSFiles{CAFile: sk.caFile})))
		})
		t.Run("RetryAndDeadLetterTopics", func(t *testing.T) {
			sk.recovery(t, sk.mtlsAddr, mq.WithTLS(sk.tlsConfig(t, mq.TLSFiles{
				CAFile: sk.caFile, CertFile: sk.clientCertFile, KeyFile: sk.clientKeyFile,
			})))
		})
	})

	t.Run("KafkaGoErrors", func(t *testing.T) {
		// What kafka-go itself returns for each failure, below mq's
		// classification (authError, retriable): logged for reference, with
		// a few checks that tell when kafka-go changes.
		sk.kafkaGoErrors(t)
	})

	t.Run("CredentialsNeverLogged", func(t *testing.T) {
		// A fresh capture at debug level for this subtest alone (every other
		// subtest's logs are checked too, when TestSecuredBroker ends).
		capture := newLogCapture()
		log := capture.logger(t, sk.logs.obsCore, sk.logs.jsonCore)
		good := sk.scram(t, mq.ScramSHA512, secureUser, sk.password)
		bad := sk.scram(t, mq.ScramSHA512, secureUser, sk.wrongPassword)
		bad256 := sk.scram(t, mq.ScramSHA256, secureUser, sk.wrongPassword)

		sk.roundTrip(t, sk.saslAddr, mq.WithSASL(good), mq.WithLogger(log))
		var errs []error
		for _, mech := range []sasl.Mechanism{bad, bad256, mq.SASLPlain(secureUser, sk.plainPassword)} {
			f := sk.attempt(t, sk.saslAddr, log, mq.WithSASL(mech))
			errs = append(errs, f.prodErr, f.consErr)
		}
		// And in asynchronous mode (Send, Flush and Close errors).
		p, err := mq.NewProducer[ChatMessage]([]string{sk.saslAddr}, sk.topic(t, 1),
			mq.WithSASL(bad), mq.WithLogger(log), mq.WithAsync(true), mq.WithDeliveryTimeout(5*time.Second))
		require.NoError(t, err)
		_, sendErr := p.Send(ctxT(t), nil, ChatMessage{ID: 1})
		errs = append(errs, sendErr, p.Flush(ctxT(t)), p.Close())

		entries := capture.observed.All()
		require.NotEmpty(t, entries, "the debug-level capture saw no log entry at all")
		var debug int
		for _, e := range entries {
			if e.Level == zapcore.DebugLevel {
				debug++
			}
		}
		t.Logf("captured %d log entries (%d at debug level), %d bytes of JSON", len(entries), debug, capture.size())
		assert.Positive(t, debug, "no debug-level entry was captured: the check would prove nothing")
		text := capture.text()
		assert.Contains(t, text, "SASL Authentication Failed", "the refused logins' errors were not logged: the check would prove little")
		sk.assertNoSecrets(t, "log", text)
		for i, err := range errs {
			if err != nil {
				sk.assertNoSecrets(t, fmt.Sprintf("error %d", i), fmt.Sprintf("%v\n%+v\n%#v", err, err, err))
			}
		}
	})
}

// ----- the broker -----

type secureKafka struct {
	name     string
	stateDir string

	plainAddr, saslAddr, sslAddr, mtlsAddr, saslSSLAddr string

	admin *mqtest.Cluster
	logs  *logCapture // every client's logs, checked for secrets at the end

	password, wrongPassword, plainPassword string

	caFile, rogueCAFile, clientCertFile, clientKeyFile string
}

func startSecureKafka(t *testing.T) *secureKafka {
	t.Helper()
	fail := t.Fatalf // MQ_SECURE_TESTS is set: a broker that cannot start is a failure
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	scripts := filepath.Join(root, "scripts", "kafka")
	startSh, stopSh := filepath.Join(scripts, "start.sh"), filepath.Join(scripts, "stop.sh")
	if _, err := os.Stat(startSh); err != nil {
		fail("scripts/kafka/start.sh not found: %v", err)
	}
	for _, tool := range []string{"java", "bash", "setsid", "flock"} {
		if _, err := exec.LookPath(tool); err != nil {
			fail("%s is not on PATH; the secured broker needs it (%s)", tool, err)
		}
	}

	name := "mq-secure"
	if v := os.Getenv(envSecureName); v != "" {
		name = v
	}
	base := 19092
	if v := os.Getenv(envSecurePortBase); v != "" {
		base, err = strconv.Atoi(v)
		require.NoError(t, err, "%s=%q", envSecurePortBase, v)
	}
	ports := make([]int, 6)
	for i := range ports {
		ports[i] = base + i
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i]))); err != nil {
			fail("port %d is busy (another secured broker still running? scripts/kafka/stop.sh --purge %s; or set %s): %v",
				ports[i], name, envSecurePortBase, err)
		} else {
			_ = ln.Close()
		}
	}
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	sk := &secureKafka{
		name:          name,
		plainAddr:     addr(ports[0]),
		saslAddr:      addr(ports[2]),
		sslAddr:       addr(ports[3]),
		mtlsAddr:      addr(ports[4]),
		saslSSLAddr:   addr(ports[5]),
		logs:          newLogCapture(),
		password:      "alice-pw-" + randHex(t, 12),
		wrongPassword: "wrong-pw-" + randHex(t, 12),
		plainPassword: "plain-pw-" + randHex(t, 12),
	}
	cacheDir := os.Getenv("KAFKA_CACHE_DIR")
	if cacheDir == "" {
		cacheDir = filepath.Join(root, ".cache", "kafka")
	}
	sk.stateDir = filepath.Join(cacheDir, "run", sk.name)

	dir := t.TempDir() // removed after the broker stopped (cleanups run last-in first-out)
	sk.writePKI(t, dir)

	props := strings.Join([]string{
		fmt.Sprintf("listeners=PLAINTEXT://%s,CONTROLLER://%s,SASL_PLAINTEXT://%s,SSL://%s,MTLS://%s,SASL_SSL://%s",
			sk.plainAddr, addr(ports[1]), sk.saslAddr, sk.sslAddr, sk.mtlsAddr, sk.saslSSLAddr),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://%s,SASL_PLAINTEXT://%s,SSL://%s,MTLS://%s,SASL_SSL://%s",
			sk.plainAddr, sk.saslAddr, sk.sslAddr, sk.mtlsAddr, sk.saslSSLAddr),
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,MTLS:SSL,SASL_SSL:SASL_SSL",
		"inter.broker.listener.name=PLAINTEXT",
		"sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
		"listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
		"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
		"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
		"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
		// PEM key store: unencrypted PKCS#8 key + chain, no passwords.
		"ssl.keystore.type=PEM",
		"ssl.keystore.location=" + filepath.Join(dir, "server.pem"),
		"ssl.truststore.type=PEM",
		"ssl.truststore.location=" + sk.caFile,
		"listener.name.mtls.ssl.client.auth=required",
		"",
	}, "\n")
	propsFile := filepath.Join(dir, "secure.properties")
	require.NoError(t, os.WriteFile(propsFile, []byte(props), 0o600))

	env := append(os.Environ(),
		"KAFKA_PORT="+strconv.Itoa(ports[0]),
		"KAFKA_CONTROLLER_PORT="+strconv.Itoa(ports[1]),
		"KAFKA_EXTRA_PROPS=",
		"KAFKA_EXTRA_PROPS_FILE="+propsFile,
		"KAFKA_FORMAT_ARGS="+strings.Join([]string{
			"--add-scram", "SCRAM-SHA-256=[name=" + secureUser + ",password=" + sk.password + "]",
			"--add-scram", "SCRAM-SHA-512=[name=" + secureUser + ",password=" + sk.password + "]",
		}, " "),
	)
	script := func(ctx context.Context, path string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.Env = env
		cmd.WaitDelay = 5 * time.Second
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err != nil {
			err = fmt.Errorf("%s %s: %w\n%s", filepath.Base(path), strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String(), err
	}

	// A state dir left by an earlier run holds other passwords: start clean.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	_, err = script(ctx, stopSh, "--purge", sk.name)
	cancel()
	require.NoError(t, err)

	// If this process dies without running its cleanups, the watchdog
	// stops the broker and purges its state dir.
	watchdog := exec.Command("bash", "-c",
		`while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" --purge "$3" >/dev/null 2>&1`,
		"mq-secure-watchdog", strconv.Itoa(os.Getpid()), stopSh, sk.name)
	watchdog.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	require.NoError(t, watchdog.Start())
	t.Cleanup(func() {
		_ = watchdog.Process.Kill()
		_ = watchdog.Wait()
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log tail (%s):\n%s", filepath.Join(sk.stateDir, "kafka.log"), sk.logTail(80))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		start := time.Now()
		if _, err := script(ctx, stopSh, "--purge", sk.name); err != nil {
			t.Errorf("stopping the secured broker: %v", err)
		}
		t.Logf("secured broker stopped and purged in %v", time.Since(start).Round(time.Millisecond))
	})

	start := time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), 4*time.Minute) // may fetch the jars first
	out, err := script(ctx, startSh, sk.name)
	cancel()
	if err != nil {
		t.Fatalf("starting the secured broker (%s is set): %v", envSecure, err)
	}
	t.Logf("secured broker %q started in %v: %s; SASL_PLAINTEXT %s, SSL %s, MTLS %s, SASL_SSL %s",
		sk.name, time.Since(start).Round(time.Millisecond), strings.TrimSpace(out), sk.saslAddr, sk.sslAddr, sk.mtlsAddr, sk.saslSSLAddr)

	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	admin, err := mqtest.NewCluster(ctx, mqtest.WithMode(mqtest.ModeExternal), mqtest.WithBrokers(sk.plainAddr))
	cancel()
	require.NoError(t, err, "admin client on the PLAINTEXT listener")
	sk.admin = admin
	t.Cleanup(func() { _ = admin.Close() })

	// Runs before the broker stops: no subtest may have logged a secret.
	t.Cleanup(func() {
		t.Logf("all subtests: %d log entries captured at debug level", len(sk.logs.observed.All()))
		sk.assertNoSecrets(t, "log (all subtests)", sk.logs.text())
	})
	return sk
}

func (sk *secureKafka) logTail(n int) string {
	b, err := os.ReadFile(filepath.Join(sk.stateDir, "kafka.log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// failedLogins counts the broker's "Failed authentication with" log lines
// (org.apache.kafka.common.network.Selector, INFO): one per refused SASL
// login or failed TLS handshake.
func (sk *secureKafka) failedLogins(t testing.TB) int {
	t.Helper()
	f, err := os.Open(filepath.Join(sk.stateDir, "kafka.log"))
	require.NoError(t, err)
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "Failed authentication with") {
			n++
		}
	}
	require.NoError(t, sc.Err())
	return n
}

// assertNoSecrets fails if any password occurs in s.
func (sk *secureKafka) assertNoSecrets(t testing.TB, what, s string) {
	t.Helper()
	for _, pw := range []string{sk.password, sk.wrongPassword, sk.plainPassword} {
		if i := strings.Index(s, pw); i >= 0 {
			lo, hi := max(0, i-200), min(len(s), i+len(pw)+50)
			t.Errorf("%s contains a password (%q...): ...%s...", what, pw[:9], s[lo:hi])
		}
	}
}

// ----- certificates -----

type certKey struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func (c *certKey) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})
}

func (c *certKey) keyPEM(t testing.TB) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func newCert(t testing.TB, tmpl *x509.Certificate, issuer *certKey) *certKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	require.NoError(t, err)
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	parent, signer := tmpl, key
	if issuer != nil {
		parent, signer = issuer.cert, issuer.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &certKey{cert: cert, key: key, der: der}
}

func newCA(t testing.TB, name string) *certKey {
	return newCert(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}, nil)
}

// writePKI writes ca.pem (broker trust store for mTLS, clients' CAFile),
// server.pem (broker key store: key, certificate, CA), client.crt/.key and
// rogue-ca.pem (a CA that signed nothing the broker holds).
func (sk *secureKafka) writePKI(t testing.TB, dir string) {
	t.Helper()
	ca := newCA(t, "mq test CA")
	server := newCert(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca)
	client := newCert(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "mq-client"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca)
	rogue := newCA(t, "rogue CA")

	write := func(name string, parts ...[]byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, bytes.Join(parts, nil), 0o600))
		return p
	}
	sk.caFile = write("ca.pem", ca.certPEM())
	write("server.pem", server.keyPEM(t), server.certPEM(), ca.certPEM())
	sk.clientCertFile = write("client.crt", client.certPEM())
	sk.clientKeyFile = write("client.key", client.keyPEM(t))
	sk.rogueCAFile = write("rogue-ca.pem", rogue.certPEM())
}

func randHex(t testing.TB, n int) string {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// ----- clients -----

func (sk *secureKafka) scram(t testing.TB, algo mq.ScramAlgorithm, user, password string) sasl.Mechanism {
	t.Helper()
	m, err := mq.SASLScram(algo, user, password)
	require.NoError(t, err)
	return m
}

func (sk *secureKafka) tlsConfig(t testing.TB, f mq.TLSFiles) *tls.Config {
	t.Helper()
	cfg, err := mq.TLSConfig(f)
	require.NoError(t, err)
	return cfg
}

func (sk *secureKafka) topic(t *testing.T, partitions int) string {
	t.Helper()
	return sk.admin.NewTopic(t, partitions)
}

// producerOpts and consumerOpts put the capturing logger first, so a
// WithLogger in opts wins.
func (sk *secureKafka) producerOpts(t *testing.T, opts []mq.Option, extra ...mq.ProducerOption) []mq.ProducerOption {
	out := []mq.ProducerOption{mq.WithLogger(sk.logs.logger(t)), mq.WithDialTimeout(5 * time.Second)}
	for _, o := range opts {
		out = append(out, o)
	}
	return append(out, extra...)
}

func (sk *secureKafka) consumerOpts(t *testing.T, opts []mq.Option) []mq.ConsumerOption {
	out := fastConsumer(t, mq.WithLogger(sk.logs.logger(t)), mq.WithDialTimeout(5*time.Second))
	for _, o := range opts {
		out = append(out, o)
	}
	return out
}

// roundTrip produces to a new 3-partition topic through addr with opts,
// consumes it with two handlers, and checks that both saw every message once
// and that the committed offsets reached the end offsets.
func (sk *secureKafka) roundTrip(t *testing.T, addr string, opts ...mq.Option) {
	t.Helper()
	const n = 300
	topic := sk.topic(t, 3)
	group := "g-" + topic

	t0 := time.Now()
	p, err := mq.NewProducer[ChatMessage]([]string{addr}, topic, sk.producerOpts(t, opts)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	res, err := p.Send(ctxT(t), []byte("first"), ChatMessage{ID: 0, Body: "secured"})
	require.NoError(t, err, "first send: %s", errorChain(err))
	require.Equal(t, topic, res.Topic)
	produceChat(t, p, 1, n)
	require.NoError(t, p.Close())
	produced := time.Since(t0)

	c, err := mq.NewKafkaConsumer[ChatMessage]([]string{addr}, topic, group, sk.consumerOpts(t, opts)...)
	require.NoError(t, err)
	persist, backup := newRecorder(), newRecorder()
	require.NoError(t, c.RegisterHandler(persist, mq.WithHandlerName("persist")))
	require.NoError(t, c.RegisterHandler(backup, mq.WithHandlerName("backup")))
	t0 = time.Now()
	r := start(c)
	ok := assert.Eventually(t, func() bool { return persist.count() >= n && backup.count() >= n }, 45*time.Second, 10*time.Millisecond,
		"consumed %d/%d and %d/%d", persist.count(), n, backup.count(), n)
	require.NoError(t, r.stop(t))
	require.True(t, ok)
	consumed := time.Since(t0)

	assert.Equal(t, n, persist.unique())
	assert.Equal(t, n, backup.unique())
	assert.Zero(t, persist.duplicates())
	assert.Zero(t, backup.duplicates())
	end, err := sk.admin.EndOffsets(ctxT(t), topic)
	require.NoError(t, err)
	committed, err := sk.admin.CommittedOffsets(ctxT(t), group, topic)
	require.NoError(t, err)
	assert.Equal(t, end, committed, "committed offsets must equal end offsets")
	assert.EqualValues(t, n, sum(end))
	t.Logf("%s: produced %d in %v, consumed and committed in %v (end offsets %v)",
		addr, n, produced.Round(time.Millisecond), consumed.Round(time.Millisecond), end)
}

// recovery runs a consumer with a retry topic and a dead-letter topic through
// addr with opts: a quarter of the messages always fail, go through the
// retry topic (read by the consumer) to the dead-letter topic (written by
// its recovery publisher); everything is committed in the end.
func (sk *secureKafka) recovery(t *testing.T, addr string, opts ...mq.Option) {
	t.Helper()
	const n, bad = 40, 10 // IDs divisible by 4 fail
	topic := sk.topic(t, 2)
	group := "g-" + topic
	rec := mq.RetryTopicRecoverer([]time.Duration{100 * time.Millisecond}, "")
	extra := rec.Topics(topic) // <topic>.retry.1, <topic>.dlt
	require.Len(t, extra, 2)
	retryTopic, dlt := extra[0], extra[1]
	for _, name := range extra {
		require.NoError(t, sk.admin.CreateTopic(ctxT(t), name, 1))
		t.Cleanup(func() { _ = sk.admin.DeleteTopic(context.Background(), name) })
	}

	p, err := mq.NewProducer[ChatMessage]([]string{addr}, topic, sk.producerOpts(t, opts)...)
	require.NoError(t, err)
	produceChat(t, p, 0, n)
	require.NoError(t, p.Close())

	var mu sync.Mutex
	calls := map[int]int{}
	okCount := 0
	c, err := mq.NewKafkaConsumer[ChatMessage]([]string{addr}, topic, group,
		append(sk.consumerOpts(t, opts), mq.WithRecoverer(rec))...)
	require.NoError(t, err)
	require.NoError(t, c.RegisterHandlerFunc(func(_ context.Context, m mq.Message[ChatMessage]) error {
		mu.Lock()
		defer mu.Unlock()
		calls[m.Value.ID]++
		if m.Value.ID%4 == 0 {
			return errors.New("rejected by the test")
		}
		okCount++
		return nil
	}, mq.WithHandlerName("picky")))
	t0 := time.Now()
	r := start(c)
	pollCtx := ctxT(t)
	dltCount := func() int64 {
		end, err := sk.admin.EndOffsets(pollCtx, dlt)
		if err != nil {
			return -1
		}
		return sum(end)
	}
	ok := assert.Eventually(t, func() bool {
		mu.Lock()
		done := okCount >= n-bad
		mu.Unlock()
		return done && dltCount() >= bad
	}, 60*time.Second, 50*time.Millisecond)
	require.NoError(t, r.stop(t))
	mu.Lock()
	handled := okCount
	mu.Unlock()
	require.True(t, ok, "handled %d of %d, dead letters %d of %d", handled, n-bad, dltCount(), bad)

	for _, tp := range []string{topic, retryTopic} {
		end, err := sk.admin.EndOffsets(ctxT(t), tp)
		require.NoError(t, err)
		committed, err := sk.admin.CommittedOffsets(ctxT(t), group, tp)
		require.NoError(t, err)
		assert.Equal(t, end, committed, "%s: committed offsets must equal end offsets", tp)
		if tp == retryTopic {
			assert.EqualValues(t, bad, sum(end), "messages moved to the retry topic")
		}
	}
	msgs, err := sk.admin.ReadAll(ctxT(t), dlt, bad)
	require.NoError(t, err)
	require.Len(t, msgs, bad)
	for _, m := range msgs {
		var orig string
		for _, h := range m.Headers {
			if h.Key == mq.HeaderOriginalTopic {
				orig = string(h.Value)
			}
		}
		assert.Equal(t, topic, orig, "dead letter %s", m.Key)
	}
	mu.Lock()
	for id := 0; id < n; id += 4 {
		// Failed in the main topic, then again in the retry tier: the
		// retry topic was read through the secured listener too.
		assert.GreaterOrEqual(t, calls[id], 2, "handler calls for message %d", id)
	}
	mu.Unlock()
	t.Logf("%s: %d handled, %d through %s to %s in %v", addr, n-bad, bad, retryTopic, dlt, time.Since(t0).Round(time.Millisecond))
}

// kafkaGoErrors records what kafka-go v0.4.51 returns, without mq, for a
// wrong password, an untrusted CA and a missing client certificate: from
// Dialer.DialContext and ConsumerGroup.Next (what KafkaConsumer uses) and
// from Client.Metadata over a Transport (what Producer uses).
func (sk *secureKafka) kafkaGoErrors(t *testing.T) {
	badMech := sk.scram(t, mq.ScramSHA512, secureUser, sk.wrongPassword)
	rogue := sk.tlsConfig(t, mq.TLSFiles{CAFile: sk.rogueCAFile})
	noCert := sk.tlsConfig(t, mq.TLSFiles{CAFile: sk.caFile})
	for _, tc := range []struct {
		name  string
		addr  string
		tls   *tls.Config
		mech  sasl.Mechanism
		check func(t *testing.T, what string, err error)
	}{
		{"WrongPassword", sk.saslAddr, nil, badMech, func(t *testing.T, what string, err error) {
			assert.ErrorIs(t, err, kafka.SASLAuthenticationFailed, what)
		}},
		{"UntrustedCA", sk.sslAddr, rogue, nil, func(t *testing.T, what string, err error) {
			var cve *tls.CertificateVerificationError
			assert.ErrorAs(t, err, &cve, what)
			var uae x509.UnknownAuthorityError
			assert.ErrorAs(t, err, &uae, what)
		}},
		{"MutualTLSWithoutClientCert", sk.mtlsAddr, noCert, nil, func(t *testing.T, what string, err error) {
			var oe *net.OpError
			if assert.ErrorAs(t, err, &oe, what) {
				assert.Equal(t, "remote error", oe.Op, what)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dialer := &kafka.Dialer{Timeout: 5 * time.Second, DualStack: true, TLS: tc.tls, SASLMechanism: tc.mech}

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			conn, err := dialer.DialContext(ctx, "tcp", tc.addr)
			cancel()
			if err == nil {
				// TLS 1.3: the client finishes its handshake before the broker
				// checks the client certificate; the first request fails.
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				_, err = conn.ApiVersions()
				_ = conn.Close()
				t.Logf("Dialer.DialContext succeeded; first request (ApiVersions): %s", errorChain(err))
			} else {
				t.Logf("Dialer.DialContext: %s", errorChain(err))
			}

			cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
				ID: "kafka-go-" + tc.name, Brokers: []string{tc.addr}, Dialer: dialer,
				Topics: []string{"kafka-go-errors"}, JoinGroupBackoff: time.Second,
			})
			require.NoError(t, err)
			ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
			t0 := time.Now()
			_, nextErr := cg.Next(ctx)
			took := time.Since(t0)
			cancel()
			require.NoError(t, cg.Close())
			t.Logf("ConsumerGroup.Next after %v: %s", took.Round(time.Millisecond), errorChain(nextErr))
			if assert.Error(t, nextErr) {
				tc.check(t, "ConsumerGroup.Next", nextErr)
			}

			tr := &kafka.Transport{DialTimeout: 5 * time.Second, TLS: tc.tls, SASL: tc.mech}
			client := &kafka.Client{Addr: kafka.TCP(tc.addr), Transport: tr, Timeout: 5 * time.Second}
			ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
			_, mdErr := client.Metadata(ctx, &kafka.MetadataRequest{})
			cancel()
			tr.CloseIdleConnections()
			t.Logf("Client.Metadata (Transport): %s", errorChain(mdErr))
			if assert.Error(t, mdErr) {
				tc.check(t, "Client.Metadata", mdErr)
			}
		})
	}
}

// failure is what a producer and a consumer with bad credentials or an
// untrusted certificate reported.
type failure struct {
	prodErr, consErr            error
	prodTook, consTook          time.Duration
	prodLogins, consLogins      int // broker "Failed authentication" lines
	consTimedOut                bool
	joinWarnings, fetchWarnings int
}

// attempt sends one message and runs one consumer through addr with opts,
// both expected to fail, and records how.
// log (nil: the shared capture) receives both clients' logs.
func (sk *secureKafka) attempt(t *testing.T, addr string, log *zap.Logger, opts ...mq.Option) *failure {
	t.Helper()
	topic := sk.topic(t, 1)
	f := &failure{}
	if log == nil {
		log = sk.logs.logger(t)
	}

	before := sk.failedLogins(t)
	p, err := mq.NewProducer[ChatMessage]([]string{addr}, topic, append(sk.producerOpts(t, opts), mq.WithLogger(log))...)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	start := time.Now()
	_, f.prodErr = p.Send(ctx, nil, ChatMessage{ID: 1, Body: "must not arrive"})
	f.prodTook = time.Since(start)
	cancel()
	require.NoError(t, p.Close())
	time.Sleep(300 * time.Millisecond) // the broker logs a refused login ~100 ms after it
	f.prodLogins = sk.failedLogins(t) - before
	t.Logf("producer Send after %v, %d failed logins on the broker: %s", f.prodTook.Round(time.Millisecond), f.prodLogins, errorChain(f.prodErr))

	// The consumer's own logs too, to count its retries.
	obsCore, obsLogs := observer.New(zap.DebugLevel)
	consOpts := append(sk.consumerOpts(t, opts), mq.WithLogger(zap.New(zapcore.NewTee(log.Core(), obsCore))))
	c, err := mq.NewKafkaConsumer[ChatMessage]([]string{addr}, topic, "g-"+topic, consOpts...)
	require.NoError(t, err)
	require.NoError(t, c.RegisterHandlerFunc(func(context.Context, mq.Message[ChatMessage]) error { return nil }))
	before = sk.failedLogins(t)
	const runLimit = 20 * time.Second
	ctx, cancel = context.WithTimeout(context.Background(), runLimit)
	start = time.Now()
	f.consErr = c.Run(ctx)
	f.consTook = time.Since(start)
	f.consTimedOut = ctx.Err() != nil
	cancel()
	time.Sleep(300 * time.Millisecond)
	f.consLogins = sk.failedLogins(t) - before
	for _, e := range obsLogs.All() {
		switch {
		case strings.Contains(e.Message, "joining group failed"):
			f.joinWarnings++
		case strings.Contains(e.Message, "fetch failed"):
			f.fetchWarnings++
		}
	}
	if f.consTimedOut {
		t.Logf("consumer Run did not return by itself: stopped by its %v context, returned %v; %d failed logins on the broker, %d \"joining group failed, retrying\" warnings",
			runLimit, f.consErr, f.consLogins, f.joinWarnings)
		for i, e := range obsLogs.FilterMessageSnippet("joining group failed").All() {
			if i == 2 {
				break
			}
			t.Logf("  warning %d: %s %v", i+1, e.Message, e.ContextMap())
		}
	} else {
		t.Logf("consumer Run returned after %v, %d failed logins on the broker, %d join and %d fetch warnings: %s",
			f.consTook.Round(time.Millisecond), f.consLogins, f.joinWarnings, f.fetchWarnings, errorChain(f.consErr))
	}
	return f
}

// requireAuthError checks a refused login: both sides fail fast with an
// error wrapping mq.ErrAuthentication, after a handful of logins at most.
func (f *failure) requireAuthError(t *testing.T) {
	t.Helper()
	if assert.Error(t, f.prodErr, "producer Send must fail") {
		assert.ErrorIs(t, f.prodErr, mq.ErrAuthentication, "producer: %s", errorChain(f.prodErr))
	}
	assert.Less(t, f.prodTook, failFast, "producer Send must fail fast")
	assert.LessOrEqual(t, f.prodLogins, maxFailedLogins, "producer: refused logins on the broker")

	assert.False(t, f.consTimedOut, "consumer Run must return by itself, not retry until its context ends")
	if assert.Error(t, f.consErr, "consumer Run must fail") {
		assert.ErrorIs(t, f.consErr, mq.ErrAuthentication, "consumer: %s", errorChain(f.consErr))
	}
	assert.Less(t, f.consTook, failFast, "consumer Run must fail fast")
	assert.LessOrEqual(t, f.consLogins, maxFailedLogins, "consumer: refused logins on the broker (retry storm?)")
	assert.Zero(t, f.joinWarnings, "consumer retried the join after an authentication error")
}

// requireClearFailure checks a TLS failure: both sides fail within failFast
// with an error that says what is wrong (one of words).
func (f *failure) requireClearFailure(t *testing.T, words []string) {
	t.Helper()
	says := func(err error) bool {
		for _, w := range words {
			if strings.Contains(err.Error(), w) {
				return true
			}
		}
		return false
	}
	if assert.Error(t, f.prodErr, "producer Send must fail") {
		assert.True(t, says(f.prodErr), "producer error should mention one of %q: %s", words, errorChain(f.prodErr))
	}
	assert.Less(t, f.prodTook, failFast, "producer Send must fail fast")
	assert.LessOrEqual(t, f.prodLogins, maxFailedLogins,
		"producer: failed TLS handshakes on the broker (a rejected certificate is retried as if it were a network error?)")

	assert.False(t, f.consTimedOut,
		"consumer Run must return by itself, not retry until its context ends (%d join retries, %d failed TLS handshakes on the broker)",
		f.joinWarnings, f.consLogins)
	if assert.Error(t, f.consErr, "consumer Run must fail") {
		assert.True(t, says(f.consErr), "consumer error should mention one of %q: %s", words, errorChain(f.consErr))
	}
	assert.Less(t, f.consTook, failFast, "consumer Run must fail fast")
}

// ----- log capture -----

// logCapture records every entry at debug level, both structured
// (observer) and serialized as JSON (message, fields, errors with their
// verbose form, logger names).
type logCapture struct {
	observed *observer.ObservedLogs
	obsCore  zapcore.Core
	mu       sync.Mutex
	buf      bytes.Buffer
	jsonCore zapcore.Core
}

func newLogCapture() *logCapture {
	c := &logCapture{}
	c.obsCore, c.observed = observer.New(zap.DebugLevel)
	enc := zap.NewDevelopmentEncoderConfig()
	c.jsonCore = zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(lockedWriter{c}), zap.DebugLevel)
	return c
}

type lockedWriter struct{ c *logCapture }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.c.buf.Write(p)
}

// logger returns a debug-level logger that records into c (and the cores
// in also) and shows info and above in the test output.
func (c *logCapture) logger(t testing.TB, also ...zapcore.Core) *zap.Logger {
	cores := append([]zapcore.Core{zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Core(), c.obsCore, c.jsonCore}, also...)
	return zap.New(zapcore.NewTee(cores...))
}

func (c *logCapture) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Len()
}

// text returns everything captured: the JSON lines, then each entry's
// message, logger name and fields as Go values.
func (c *logCapture) text() string {
	c.mu.Lock()
	s := c.buf.String()
	c.mu.Unlock()
	var b strings.Builder
	b.WriteString(s)
	for _, e := range c.observed.All() {
		fmt.Fprintf(&b, "%s %s %s %v %#v\n", e.Level, e.LoggerName, e.Message, e.ContextMap(), e.Context)
	}
	return b.String()
}

// ----- errors -----

// errorChain describes err and everything it wraps, one level per line, with
// each level's dynamic type.
func errorChain(err error) string {
	if err == nil {
		return "<nil>"
	}
	var b strings.Builder
	var walk func(err error, depth int)
	walk = func(err error, depth int) {
		fmt.Fprintf(&b, "\n%s%s: %q", strings.Repeat("  ", depth+1), reflect.TypeOf(err), err.Error())
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e, depth+1)
			}
		case interface{ Unwrap() error }:
			if e := u.Unwrap(); e != nil {
				walk(e, depth+1)
			}
		}
	}
	walk(err, 0)
	return b.String()
}
