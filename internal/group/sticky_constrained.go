package group

import (
	"fmt"
	"slices"
)

// constrainedBuilder is AbstractStickyAssignor.ConstrainedAssignmentBuilder,
// used when every member subscribes to the same topics:
//
//  1. each member keeps its previously owned partitions up to its quota
//     (minQuota, or maxQuota for the first members that can while members
//     over minQuota are still needed); with racks, only rack-matching ones;
//  2. with racks, unassigned partitions go round-robin to unfilled members
//     on a replica's rack;
//  3. the rest go round-robin to unfilled members.
type constrainedBuilder struct {
	in                *groupInput
	rack              *stickyRackInfo
	currentAssignment ownedPartitions
	multiple          map[TopicPartition]bool
	maybeRevoked      map[TopicPartition]string

	// Java's LinkedLists of members that may still get partitions.
	unfilledUnderMin   []string
	unfilledExactlyMin []string

	minQuota, maxQuota int
	// expectedOverMin members end with maxQuota (0 when min == max);
	// currentOverMin have reached it so far.
	expectedOverMin, currentOverMin int

	assignment         map[string]*tpList
	assignedPartitions []TopicPartition
	// transferring is partitionsTransferringOwnership: partitions given to
	// a member other than the one that owned them.
	transferring map[TopicPartition]string
}

func newConstrainedBuilder(in *groupInput, rack *stickyRackInfo, owned ownedPartitions, multiple map[TopicPartition]bool) *constrainedBuilder {
	b := &constrainedBuilder{
		in:                in,
		rack:              rack,
		currentAssignment: owned,
		multiple:          multiple,
		maybeRevoked:      make(map[TopicPartition]string),
		assignment:        make(map[string]*tpList, len(owned.order)),
		transferring:      make(map[TopicPartition]string),
	}
	if n := len(owned.order); n > 0 {
		total := in.totalPartitions()
		b.minQuota = total / n
		b.maxQuota = (total + n - 1) / n
		b.expectedOverMin = total % n
	}
	for _, c := range owned.order {
		b.assignment[c] = &tpList{}
	}
	return b
}

func (b *constrainedBuilder) build() (map[string]*tpList, error) {
	b.assignOwnedPartitions()
	unassigned := b.unassignedPartitions()
	slices.SortFunc(b.unfilledUnderMin, javaCompare)
	slices.SortFunc(b.unfilledExactlyMin, javaCompare)
	unassigned = b.rack.sortPartitionsByRackConsumers(unassigned)

	unassigned = b.assignRackAwareRoundRobin(unassigned)
	if err := b.assignRoundRobin(unassigned); err != nil {
		return nil, err
	}
	if err := b.verifyUnfilledMembers(); err != nil {
		return nil, err
	}
	return b.assignment, nil
}

// assignOwnedPartitions lets each member keep owned partitions up to its quota.
func (b *constrainedBuilder) assignOwnedPartitions() {
	for _, c := range b.currentAssignment.order {
		var owned []TopicPartition
		for _, tp := range b.currentAssignment.lists[c].items {
			if b.rack.racksMismatch(c, tp) {
				b.maybeRevoked[tp] = c
				continue
			}
			owned = append(owned, tp)
		}
		slices.SortStableFunc(owned, func(a, b TopicPartition) int {
			if c := cmpInt32(a.Partition, b.Partition); c != 0 {
				return c
			}
			return javaCompare(a.Topic, b.Topic)
		})
		for tp := range b.multiple {
			owned, _ = removeFirst(owned, tp)
		}

		mine := b.assignment[c]
		switch {
		case len(owned) < b.minQuota:
			for _, tp := range owned {
				mine.add(tp)
			}
			b.assignedPartitions = append(b.assignedPartitions, owned...)
			b.unfilledUnderMin = append(b.unfilledUnderMin, c)
		case len(owned) >= b.maxQuota && b.currentOverMin < b.expectedOverMin:
			b.currentOverMin++
			if b.currentOverMin == b.expectedOverMin {
				b.unfilledExactlyMin = nil
			}
			b.keep(c, owned, b.maxQuota)
		default:
			b.keep(c, owned, b.minQuota)
			if b.currentOverMin < b.expectedOverMin {
				b.unfilledExactlyMin = append(b.unfilledExactlyMin, c)
			}
		}
	}
}

// keep assigns the first n owned partitions to c; the rest may be revoked.
func (b *constrainedBuilder) keep(c string, owned []TopicPartition, n int) {
	mine := b.assignment[c]
	for _, tp := range owned[:n] {
		mine.add(tp)
	}
	b.assignedPartitions = append(b.assignedPartitions, owned[:n]...)
	for _, tp := range owned[n:] {
		b.maybeRevoked[tp] = c
	}
}

// unassignedPartitions lists, by topic name then partition, the partitions
// not in assignedPartitions: Java's two-pointer walk, kept as is (an owned
// partition beyond a topic's count stalls the walk, as in Java).
func (b *constrainedBuilder) unassignedPartitions() []TopicPartition {
	topics := slices.Clone(b.in.topics)
	slices.SortFunc(topics, javaCompare)
	total := b.in.totalPartitions()
	if len(b.assignedPartitions) == 0 {
		all := make([]TopicPartition, 0, total)
		for _, t := range topics {
			for p := range b.in.counts[t] {
				all = append(all, TopicPartition{Topic: t, Partition: p})
			}
		}
		return all
	}
	assigned := b.assignedPartitions
	slices.SortStableFunc(assigned, func(a, b TopicPartition) int {
		if c := javaCompare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return cmpInt32(a.Partition, b.Partition)
	})
	unassigned := make([]TopicPartition, 0, max(0, total-len(assigned)))
	addDirectly := false
	next, i := assigned[0], 1
	for _, t := range topics {
		for p := range b.in.counts[t] {
			if addDirectly || next.Topic != t || next.Partition != p {
				unassigned = append(unassigned, TopicPartition{Topic: t, Partition: p})
				continue
			}
			if i < len(assigned) {
				next, i = assigned[i], i+1
			} else {
				addDirectly = true
			}
		}
	}
	return unassigned
}

// assignRackAwareRoundRobin gives unassigned partitions to unfilled members
// on a replica's rack, up to their quotas, and returns those left.
func (b *constrainedBuilder) assignRackAwareRoundRobin(unassigned []TopicPartition) []TopicPartition {
	if len(b.rack.consumerRacks) == 0 {
		return unassigned
	}
	left := unassigned[:0:0]
	nextIndex := 0
	for _, tp := range unassigned {
		consumer, found := "", false
		if index := b.rack.nextRackConsumer(tp, b.unfilledUnderMin, nextIndex); index >= 0 {
			consumer, found = b.unfilledUnderMin[index], true
			count := b.assignment[consumer].len() + 1
			if count >= b.minQuota {
				b.unfilledUnderMin, _ = removeFirst(b.unfilledUnderMin, consumer)
				if count < b.maxQuota && b.currentOverMin < b.expectedOverMin {
					b.unfilledExactlyMin = append(b.unfilledExactlyMin, consumer)
				}
			} else {
				index++
			}
			if len(b.unfilledUnderMin) == 0 {
				nextIndex = 0
			} else {
				nextIndex = index % len(b.unfilledUnderMin)
			}
		} else if len(b.unfilledExactlyMin) > 0 {
			if first := b.rack.nextRackConsumer(tp, b.unfilledExactlyMin, 0); first >= 0 {
				consumer, found = b.unfilledExactlyMin[first], true
				if b.assignment[consumer].len()+1 == b.maxQuota {
					b.unfilledExactlyMin = slices.Delete(b.unfilledExactlyMin, first, first+1)
					b.currentOverMin++
					if b.currentOverMin == b.expectedOverMin {
						b.unfilledExactlyMin = nil
					}
				}
			}
		}
		if found {
			b.assignNewPartition(tp, consumer)
		} else {
			left = append(left, tp)
		}
	}
	return left
}

// assignRoundRobin deals the remaining partitions to the unfilled members,
// reproducing Java's iterator over the LinkedList of members under minQuota.
func (b *constrainedBuilder) assignRoundRobin(unassigned []TopicPartition) error {
	next, last := 0, -1 // the iterator's cursor and last returned index
	for _, tp := range unassigned {
		var consumer string
		switch {
		case next < len(b.unfilledUnderMin):
			consumer, last = b.unfilledUnderMin[next], next
			next++
		case len(b.unfilledUnderMin) == 0 && len(b.unfilledExactlyMin) == 0:
			return fmt.Errorf("%w: no more unfilled consumers to be assigned", errAssignorState)
		case len(b.unfilledUnderMin) == 0:
			consumer = b.unfilledExactlyMin[0]
			b.unfilledExactlyMin = b.unfilledExactlyMin[1:]
		default:
			consumer, last, next = b.unfilledUnderMin[0], 0, 1
		}

		count := b.assignNewPartition(tp, consumer)
		if count == b.minQuota {
			if last < 0 {
				return fmt.Errorf("%w: iterator removal without a current element", errAssignorState)
			}
			b.unfilledUnderMin = slices.Delete(b.unfilledUnderMin, last, last+1)
			next, last = last, -1
			b.unfilledExactlyMin = append(b.unfilledExactlyMin, consumer)
		} else if count == b.maxQuota {
			b.currentOverMin++
		}
	}
	return nil
}

func (b *constrainedBuilder) assignNewPartition(tp TopicPartition, consumer string) int {
	mine := b.assignment[consumer]
	mine.add(tp)
	if owner, ok := b.maybeRevoked[tp]; (ok && owner != consumer) || b.multiple[tp] {
		b.transferring[tp] = consumer
	}
	return mine.len()
}

func (b *constrainedBuilder) verifyUnfilledMembers() error {
	if len(b.unfilledUnderMin) == 0 {
		return nil
	}
	if b.currentOverMin != b.expectedOverMin {
		return fmt.Errorf("%w: %d members over minQuota, %d expected, and no partitions left for %v",
			errAssignorState, b.currentOverMin, b.expectedOverMin, b.unfilledUnderMin)
	}
	for _, c := range b.unfilledUnderMin {
		if n := b.assignment[c].len(); n != b.minQuota {
			return fmt.Errorf("%w: consumer %s has %d partitions, below minQuota %d", errAssignorState, c, n, b.minQuota)
		}
	}
	return nil
}
