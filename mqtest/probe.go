package mqtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// probeBrokers checks that every address that accepts a connection speaks
// the Kafka protocol, and that at least one does.
//
// This guards against a kafka-go v0.4.51 problem: when an address answers
// with something that is not Kafka (an HTTP server or proxy, say), kafka-go's
// connection handshake decodes the reply as an ApiVersions response and its
// goroutine keeps spinning long after the caller gave up. Addresses that
// refuse the connection are tolerated as long as another one works, as a
// Kafka client would.
func probeBrokers(ctx context.Context, addrs []string) error {
	var errs []error
	ok := 0
	for _, a := range addrs {
		err := probeKafka(ctx, a)
		var notKafka *notKafkaError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &notKafka):
			return err
		default:
			errs = append(errs, err)
		}
	}
	if ok == 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

type notKafkaError struct {
	addr   string
	reason string
}

func (e *notKafkaError) Error() string {
	return fmt.Sprintf("%s does not answer like a Kafka broker: %s", e.addr, e.reason)
}

// probeKafka sends an ApiVersions v0 request to addr and checks that the
// reply is framed like a Kafka response to it.
func probeKafka(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}

	const (
		apiVersionsKey = 18
		correlationID  = 0x6d717465 // "mqte"
		clientID       = "mqtest-probe"
	)
	req := binary.BigEndian.AppendUint32(nil, 0) // size, filled in below
	req = binary.BigEndian.AppendUint16(req, apiVersionsKey)
	req = binary.BigEndian.AppendUint16(req, 0) // version 0
	req = binary.BigEndian.AppendUint32(req, correlationID)
	req = binary.BigEndian.AppendUint16(req, uint16(len(clientID)))
	req = append(req, clientID...)
	binary.BigEndian.PutUint32(req, uint32(len(req)-4))
	if _, err := conn.Write(req); err != nil {
		return fmt.Errorf("%s: writing probe: %w", addr, err)
	}

	var hdr [8]byte // size, correlation ID
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &notKafkaError{addr, "connection closed without a response"}
		}
		return fmt.Errorf("%s: reading probe response: %w", addr, err)
	}
	size := binary.BigEndian.Uint32(hdr[:4])
	if size < 4 || size > 1<<20 {
		return &notKafkaError{addr, fmt.Sprintf("response starts with %q", hdr[:])}
	}
	if got := binary.BigEndian.Uint32(hdr[4:]); got != correlationID {
		return &notKafkaError{addr, fmt.Sprintf("response starts with %q", hdr[:])}
	}
	return nil
}
