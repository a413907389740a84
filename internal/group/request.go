package group

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go/protocol"
)

// roundTrip sends req at a version no higher than max and decodes the
// response with kafka-go's types. A broken connection or a request that
// timed out makes the member find the coordinator again.
func (m *Membership) roundTrip(ctx context.Context, conn *wire.Conn, req protocol.Message, max int16) (protocol.Message, error) {
	return m.exchange(ctx, conn, req, max, false)
}

// roundTripRaw is roundTrip for responses kafka-go decodes wrongly
// (Heartbeat and LeaveGroup v1+: kafka-go reads the error code before the
// throttle time; the schema has them the other way round).
func (m *Membership) roundTripRaw(ctx context.Context, conn *wire.Conn, req protocol.Message, max int16) (*wire.RawResponse, error) {
	res, err := m.exchange(ctx, conn, req, max, true)
	if err != nil {
		return nil, err
	}
	return res.(*wire.RawResponse), nil
}

func (m *Membership) exchange(ctx context.Context, conn *wire.Conn, req protocol.Message, max int16, raw bool) (protocol.Message, error) {
	p, err := conn.SendMax(ctx, req, max, raw)
	if err == nil {
		var res protocol.Message
		res, err = p.Wait(ctx)
		if err == nil {
			return res, nil
		}
	}
	if ctx.Err() != nil {
		// The request may still be held by the coordinator (a JoinGroup
		// waits for the whole group): Kafka answers a connection's requests
		// in order, so everything sent after it on this connection (a
		// LeaveGroup at shutdown) would wait too. Start afresh.
		_ = conn.Close()
	}
	if errors.Is(err, wire.ErrConnClosed) || ctx.Err() != nil {
		m.coordinatorGone(conn.Addr())
	}
	return nil, err
}

// throttleAndError reads the head of a Heartbeat or LeaveGroup response of
// version 1 to 3: throttle_time_ms int32, error_code int16.
func throttleAndError(res *wire.RawResponse) (int16, []byte, error) {
	b := res.Body
	if res.Version == 0 {
		if len(b) < 2 {
			return 0, nil, fmt.Errorf("group: %s v0 response: %d bytes: %w", res.Key, len(b), ErrMalformed)
		}
		return int16(binary.BigEndian.Uint16(b)), b[2:], nil
	}
	if len(b) < 6 {
		return 0, nil, fmt.Errorf("group: %s v%d response: %d bytes: %w", res.Key, res.Version, len(b), ErrMalformed)
	}
	return int16(binary.BigEndian.Uint16(b[4:])), b[6:], nil
}
