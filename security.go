package mq

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SASLPlain returns the PLAIN mechanism. Use it only over TLS: the password
// travels in clear text otherwise.
func SASLPlain(username, password string) sasl.Mechanism {
	return plain.Mechanism{Username: username, Password: password}
}

// ScramAlgorithm selects the hash of SCRAM authentication.
type ScramAlgorithm int

// SCRAM hashes.
const (
	ScramSHA256 ScramAlgorithm = iota + 1
	ScramSHA512
)

// SASLScram returns the SCRAM-SHA-256 or SCRAM-SHA-512 mechanism.
func SASLScram(algo ScramAlgorithm, username, password string) (sasl.Mechanism, error) {
	var a scram.Algorithm
	switch algo {
	case ScramSHA256:
		a = scram.SHA256
	case ScramSHA512:
		a = scram.SHA512
	default:
		return nil, invalid("unknown SCRAM algorithm %d", int(algo))
	}
	m, err := scram.Mechanism(a, username, password)
	if err != nil {
		return nil, fmt.Errorf("mq: scram: %w", err) // never includes the password
	}
	return m, nil
}

// TLSFiles names PEM files for [TLSConfig]. All are optional: no CAFile uses
// the system roots; CertFile and KeyFile together enable client certificates.
type TLSFiles struct {
	CAFile   string
	CertFile string
	KeyFile  string
	// ServerName overrides the name checked in the broker's certificate.
	ServerName string
}

// TLSConfig builds a TLS client configuration (TLS 1.2 or newer) from PEM files.
func TLSConfig(f TLSFiles) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mq: tls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mq: tls: no certificate found in %s", f.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, invalid("tls: a client certificate needs both CertFile and KeyFile")
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mq: tls: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// ErrAuthentication wraps errors that mean the two sides could not
// authenticate each other: the broker refused the credentials or the SASL
// mechanism, the broker's certificate could not be verified (unknown
// authority, wrong name, expired), or the broker rejected the client's
// certificate. Such errors are permanent: producers fail the send at once and
// a consumer's Run returns instead of retrying.
var ErrAuthentication = errors.New("mq: authentication failed")

// authError wraps err with ErrAuthentication when it is an authentication
// failure, and returns it unchanged otherwise.
func authError(err error) error {
	if err == nil || errors.Is(err, ErrAuthentication) {
		return err
	}
	if isAuthFailure(err) {
		return fmt.Errorf("%w: %w", ErrAuthentication, err)
	}
	return err
}

func isAuthFailure(err error) bool {
	if errors.Is(err, kafka.SASLAuthenticationFailed) || errors.Is(err, kafka.UnsupportedSASLMechanism) ||
		errors.Is(err, kafka.IllegalSASLState) || errors.Is(err, kafka.ClusterAuthorizationFailed) {
		return true
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		rec      tls.RecordHeaderError
	)
	if errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &rec) {
		return true
	}
	// A TLS alert from the broker (for instance "bad certificate" when it
	// requires a client certificate) arrives as a *net.OpError "remote error".
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return true
	}
	return false
}
