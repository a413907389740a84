package group

import (
	"encoding/binary"
)

// CooperativeSticky returns the "cooperative-sticky" assignor, a port of
// Java's CooperativeStickyAssignor (KIP-429): the sticky assignment of
// AbstractStickyAssignor (balanced, keeping as many owned partitions as
// possible, rack-aware with member and replica racks), minus every partition
// that moves from one member to another: its owner must revoke it first, and
// it is assigned in the follow-up rebalance.
//
// A member's previous generation comes from its subscription (version 2+)
// or, for versions 0 and 1, from the user data Java's assignor sends
// (CooperativeStickyUserData).
func CooperativeSticky() Assignor { return cooperativeStickyAssignor{} }

type cooperativeStickyAssignor struct{}

func (cooperativeStickyAssignor) Name() string { return "cooperative-sticky" }

func (cooperativeStickyAssignor) Assign(members []Member, md Metadata) (map[string]Assignment, error) {
	in, err := newGroupInput(members, md)
	if err != nil {
		return nil, err
	}
	res, err := stickyAssign(in, cooperativeMemberData)
	if err != nil {
		return nil, err
	}
	transferring := res.transferring
	if transferring == nil {
		transferring = partitionsTransferringOwnership(in, res.assignment)
	}
	for tp, consumer := range transferring {
		res.assignment[consumer].removeFirst(tp)
	}
	out := make(map[string]Assignment, len(res.assignment))
	for id, list := range res.assignment {
		out[id] = Assignment{Partitions: list.items}
	}
	return out, nil
}

// CooperativeStickyUserData is the user data a Java member of the
// cooperative-sticky protocol puts in its subscription: the generation of
// its last assignment (NoGeneration before the first), as one int32. Leaders
// read it only from members whose subscription version has no generation.
func CooperativeStickyUserData(generation int32) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(generation))
}

// cooperativeMemberData is CooperativeStickyAssignor.memberData: owned
// partitions from the subscription, the generation from the subscription
// when present (v2+), else from the user data; user data too short to hold a
// generation counts as NoGeneration, present.
func cooperativeMemberData(s Subscription) memberData {
	if s.GenerationID >= 0 {
		return memberData{partitions: s.OwnedPartitions, generation: s.GenerationID, hasGeneration: true}
	}
	switch {
	case s.UserData == nil:
		return memberData{partitions: s.OwnedPartitions}
	case len(s.UserData) < 4:
		return memberData{partitions: s.OwnedPartitions, generation: NoGeneration, hasGeneration: true}
	}
	return memberData{
		partitions:    s.OwnedPartitions,
		generation:    int32(binary.BigEndian.Uint32(s.UserData)),
		hasGeneration: true,
	}
}

// partitionsTransferringOwnership is computed after the general builder:
// partitions newly assigned to one member that another member owned.
func partitionsTransferringOwnership(in *groupInput, assignment map[string]*tpList) map[TopicPartition]string {
	added := make(map[TopicPartition]string)
	revoked := make(map[TopicPartition]bool)
	for _, m := range in.members {
		list := assignment[m.ID]
		owned := newTPList(m.Subscription.OwnedPartitions)
		for _, tp := range list.items {
			if !owned.contains(tp) {
				added[tp] = m.ID
			}
		}
		for _, tp := range m.Subscription.OwnedPartitions {
			if !list.contains(tp) {
				revoked[tp] = true
			}
		}
	}
	for tp := range added {
		if !revoked[tp] {
			delete(added, tp)
		}
	}
	return added
}
