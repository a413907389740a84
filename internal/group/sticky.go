package group

import (
	"errors"
)

// This file is the shared part of Java's AbstractStickyAssignor: reading each
// member's previously owned partitions and generation, resolving conflicting
// claims, and choosing between the constrained builder (all members subscribe
// to the same topics) and the general one.

// memberData is AbstractStickyAssignor.MemberData: what a member says it
// owned, and in which generation (absent for old members).
type memberData struct {
	partitions    []TopicPartition
	generation    int32
	hasGeneration bool
}

func (d memberData) generationOrDefault() int32 {
	if d.hasGeneration {
		return d.generation
	}
	return NoGeneration
}

// errAssignorState reports a state Java's sticky assignor rejects with an
// IllegalStateException (or would fail on with a NullPointerException); it
// does not occur for inputs a real group produces.
var errAssignorState = errors.New("group: sticky assignor reached an inconsistent state")

// stickyResult is what AbstractStickyAssignor.assignPartitions leaves behind.
type stickyResult struct {
	assignment map[string]*tpList
	// transferring is partitionsTransferringOwnership: set by the
	// constrained builder, nil after the general one.
	transferring map[TopicPartition]string
}

// stickyAssign is AbstractStickyAssignor.assignPartitions.
func stickyAssign(in *groupInput, readMemberData func(Subscription) memberData) (stickyResult, error) {
	rack := newStickyRackInfo(in)
	owned, multiple, maxGeneration, allEqual := allSubscriptionsEqual(in, readMemberData)
	if allEqual {
		b := newConstrainedBuilder(in, rack, owned, multiple)
		assignment, err := b.build()
		return stickyResult{assignment: assignment, transferring: b.transferring}, err
	}
	b := newGeneralBuilder(in, rack, owned, maxGeneration, readMemberData)
	assignment, err := b.build()
	return stickyResult{assignment: assignment}, err
}

// ownedPartitions is consumerToOwnedPartitions: each member's previously
// owned, still subscribed-to partitions, members in Java's HashMap order.
type ownedPartitions struct {
	order []string
	lists map[string]*tpList
}

// allSubscriptionsEqual reports whether all members subscribe to the same
// topics, and collects each member's valid previously owned partitions: a
// partition claimed by two members of the same generation is owned by
// neither (and recorded in multiple); between different generations the
// higher one keeps it. Members are visited in Java's HashMap order, which
// decides the outcome when three members claim one partition.
func allSubscriptionsEqual(in *groupInput, readMemberData func(Subscription) memberData) (owned ownedPartitions, multiple map[TopicPartition]bool, maxGeneration int32, allEqual bool) {
	allEqual = true
	maxGeneration = NoGeneration
	multiple = make(map[TopicPartition]bool)
	owned = ownedPartitions{lists: make(map[string]*tpList, len(in.members))}
	subscribed := make(map[string]bool)
	previousOwner := make(map[TopicPartition]string)

	for _, m := range in.members {
		topics := m.Subscription.Topics
		if len(subscribed) == 0 {
			for _, t := range topics {
				subscribed[t] = true
			}
		} else if allEqual && !(len(topics) == len(subscribed) && containsAll(subscribed, topics)) {
			allEqual = false
		}

		data := readMemberData(m.Subscription)
		generation := data.generationOrDefault()
		maxGeneration = max(maxGeneration, generation)

		mine := &tpList{}
		owned.order = append(owned.order, m.ID)
		owned.lists[m.ID] = mine

		for _, tp := range data.partitions {
			if _, ok := in.counts[tp.Topic]; !ok {
				continue
			}
			other, claimed := previousOwner[tp]
			if !claimed {
				mine.add(tp)
				previousOwner[tp] = m.ID
				continue
			}
			// Java reads the other member's generation from its
			// subscription, not from its member data.
			otherGeneration := max(in.byID[other].Subscription.GenerationID, NoGeneration)
			switch {
			case generation == otherGeneration:
				multiple[tp] = true
				owned.lists[other].removeFirst(tp)
				previousOwner[tp] = m.ID
			case generation > otherGeneration:
				mine.add(tp)
				owned.lists[other].removeFirst(tp)
				previousOwner[tp] = m.ID
			}
		}
	}
	return owned, multiple, maxGeneration, allEqual
}

func containsAll(set map[string]bool, list []string) bool {
	for _, s := range list {
		if !set[s] {
			return false
		}
	}
	return true
}

// tpList is a java.util.ArrayList of partitions with a count index, so that
// contains is O(1) while order and remove(Object)'s first-occurrence
// semantics stay Java's.
type tpList struct {
	items []TopicPartition
	count map[TopicPartition]int
}

func newTPList(items []TopicPartition) *tpList {
	l := &tpList{}
	for _, tp := range items {
		l.add(tp)
	}
	return l
}

func (l *tpList) len() int {
	if l == nil {
		return 0
	}
	return len(l.items)
}

func (l *tpList) add(tp TopicPartition) {
	if l.count == nil {
		l.count = make(map[TopicPartition]int)
	}
	l.items = append(l.items, tp)
	l.count[tp]++
}

func (l *tpList) contains(tp TopicPartition) bool { return l != nil && l.count[tp] > 0 }

// removeFirst removes the first occurrence of tp, if any.
func (l *tpList) removeFirst(tp TopicPartition) bool {
	if !l.contains(tp) {
		return false
	}
	l.items, _ = removeFirst(l.items, tp)
	if l.count[tp]--; l.count[tp] == 0 {
		delete(l.count, tp)
	}
	return true
}

func (l *tpList) clone() *tpList { return newTPList(l.items) }
