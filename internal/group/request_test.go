package group

import (
	"testing"

	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go/protocol"
)

// TestThrottleAndError pins the field order of Heartbeat and LeaveGroup
// responses (v1+: throttle_time_ms, then error_code), which kafka-go's
// types read the other way round.
func TestThrottleAndError(t *testing.T) {
	body := []byte{0, 0, 0, 100, 0, 27} // throttle 100 ms, REBALANCE_IN_PROGRESS
	code, rest, err := throttleAndError(&wire.RawResponse{Key: protocol.Heartbeat, Version: 3, Body: body})
	if err != nil || code != 27 || len(rest) != 0 {
		t.Fatalf("v3: code %d rest %v err %v, want 27", code, rest, err)
	}
	code, _, err = throttleAndError(&wire.RawResponse{Key: protocol.Heartbeat, Version: 0, Body: []byte{0, 25}})
	if err != nil || code != 25 {
		t.Fatalf("v0: code %d err %v, want 25", code, err)
	}
	if _, _, err := throttleAndError(&wire.RawResponse{Key: protocol.Heartbeat, Version: 1, Body: body[:5]}); err == nil {
		t.Fatal("a short body must fail")
	}
}

func TestFirstMemberError(t *testing.T) {
	// Two members: ("a", null, 0) and ("bb", "i", 25).
	b := []byte{0, 0, 0, 2,
		0, 1, 'a', 0xff, 0xff, 0, 0,
		0, 2, 'b', 'b', 0, 1, 'i', 0, 25}
	if got := firstMemberError(b); got != 25 {
		t.Fatalf("got %d, want 25", got)
	}
	if got := firstMemberError(b[:10]); got != 0 {
		t.Fatalf("truncated: got %d, want 0", got)
	}
}
