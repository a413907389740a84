package group

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/leavegroup"
)

// leave sends LeaveGroup for member id (a dynamic member: static members
// never leave on close).
func (m *Membership) leave(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	conn, err := m.conn(ctx)
	if err != nil {
		return err
	}
	req := &leavegroup.Request{GroupID: m.cfg.Group, Members: []leavegroup.RequestMember{{MemberID: id}}}
	res, err := m.roundTripRaw(ctx, conn, req, leaveGroupVersion)
	if err != nil {
		return fmt.Errorf("group %q: leave: %w", m.cfg.Group, err)
	}
	code, rest, err := throttleAndError(res)
	if err != nil {
		return err
	}
	if code == 0 && res.Version >= 3 {
		code = firstMemberError(rest)
	}
	if code != 0 {
		if kafka.Error(code) == kafka.UnknownMemberId {
			return nil // already gone
		}
		return m.groupError(conn.Addr(), "leave", code)
	}
	return nil
}

// firstMemberError reads the members of a LeaveGroup v3 response
// (member_id string, group_instance_id nullable string, error_code int16)
// and returns the first non-zero error code.
func firstMemberError(b []byte) int16 {
	if len(b) < 4 {
		return 0
	}
	n := int32(binary.BigEndian.Uint32(b))
	b = b[4:]
	str := func() bool {
		if len(b) < 2 {
			return false
		}
		l := int16(binary.BigEndian.Uint16(b))
		b = b[2:]
		if l < 0 {
			return true
		}
		if len(b) < int(l) {
			return false
		}
		b = b[l:]
		return true
	}
	for i := int32(0); i < n; i++ {
		for range 2 { // member_id, group_instance_id
			if !str() {
				return 0
			}
		}
		if len(b) < 2 {
			return 0
		}
		if code := int16(binary.BigEndian.Uint16(b)); code != 0 {
			return code
		}
		b = b[2:]
	}
	return 0
}
