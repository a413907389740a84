package group

import (
	"fmt"
	"slices"
)

// generalBuilder is AbstractStickyAssignor.GeneralAssignmentBuilder, used
// when members subscribe to different topics:
//
//  1. keep every valid previous assignment (with racks, only rack-matching);
//  2. drop assignments of topics a member no longer subscribes to;
//  3. with racks, give unassigned partitions to the least loaded member on
//     a replica's rack, then the rest to the least loaded subscriber;
//  4. move partitions from the most to the least loaded members until
//     balanced, preferring to move a partition back to its previous owner,
//     and keep the result only if it is better balanced than before.
type generalBuilder struct {
	in             *groupInput
	rack           *stickyRackInfo
	readMemberData func(Subscription) memberData
	maxGeneration  int32

	topic2AllPotentialConsumers map[string][]string
	consumer2AllPotentialTopics map[string][]string
	// currentAssignment is keyed by member; order holds Java's HashMap
	// order (only a broken input with one partition owned twice could
	// make the order of a later iteration visible).
	currentAssignment map[string]*tpList
	order             []string
	// currentPartitionConsumer maps each partition to its member.
	currentPartitionConsumer map[TopicPartition]string
	sortedAllPartitions      []TopicPartition
	// sorted is the TreeSet of members ordered by assignment size, then ID.
	sorted             []string
	revocationRequired bool
	movements          *partitionMovements
	// owner indexes the member holding each partition, for isBalanced. It
	// is kept up to date while no partition has two holders; once one does
	// (only after inputs Java mishandles), ownerStale makes isBalanced
	// rebuild it from the lists on every call, as Java does.
	owner           map[TopicPartition]string
	ownerStale      bool
	totalPartitions int
	err             error // a state in which Java throws; reported by build
}

type consumerGeneration struct {
	consumer   string
	generation int32
}

func newGeneralBuilder(in *groupInput, rack *stickyRackInfo, owned ownedPartitions, maxGeneration int32, readMemberData func(Subscription) memberData) *generalBuilder {
	b := &generalBuilder{
		in:                          in,
		rack:                        rack,
		readMemberData:              readMemberData,
		maxGeneration:               maxGeneration,
		topic2AllPotentialConsumers: make(map[string][]string, len(in.topics)),
		consumer2AllPotentialTopics: make(map[string][]string, len(in.members)),
		currentAssignment:           owned.lists,
		order:                       owned.order,
		currentPartitionConsumer:    make(map[TopicPartition]string),
		movements:                   newPartitionMovements(),
		totalPartitions:             in.totalPartitions(),
	}
	for _, t := range in.topics {
		b.topic2AllPotentialConsumers[t] = []string{}
	}
	for _, m := range in.members {
		topics := []string{}
		for _, t := range m.Subscription.Topics {
			if _, ok := in.counts[t]; ok {
				topics = append(topics, t)
				b.topic2AllPotentialConsumers[t] = append(b.topic2AllPotentialConsumers[t], m.ID)
			}
		}
		b.consumer2AllPotentialTopics[m.ID] = topics
	}
	for _, c := range b.order {
		for _, tp := range b.currentAssignment[c].items {
			b.currentPartitionConsumer[tp] = c
		}
	}

	topics := slices.Clone(in.topics)
	slices.SortFunc(topics, func(x, y string) int {
		if c := cmpInt(len(b.topic2AllPotentialConsumers[x]), len(b.topic2AllPotentialConsumers[y])); c != 0 {
			return c
		}
		return javaCompare(x, y)
	})
	for _, t := range topics {
		for p := range in.counts[t] {
			b.sortedAllPartitions = append(b.sortedAllPartitions, TopicPartition{Topic: t, Partition: p})
		}
	}
	return b
}

func (b *generalBuilder) build() (map[string]*tpList, error) {
	prevAssignment := make(map[TopicPartition]consumerGeneration)
	b.prepopulateCurrentAssignments(prevAssignment)
	assigned := b.assignOwnedPartitions()
	b.owner = make(map[TopicPartition]string, b.totalPartitions)
	for _, c := range b.order {
		for _, tp := range b.currentAssignment[c].items {
			b.noteAdded(c, tp)
		}
	}
	unassigned := b.unassignedPartitions(assigned)
	for _, c := range b.order {
		b.sortedAdd(c)
	}
	b.balance(prevAssignment, unassigned)
	if b.err != nil {
		return nil, b.err
	}
	return b.currentAssignment, nil
}

// prepopulateCurrentAssignments records, for partitions claimed in an older
// generation than the newest, the most recent older claim.
func (b *generalBuilder) prepopulateCurrentAssignments(prev map[TopicPartition]consumerGeneration) {
	for _, m := range b.in.members {
		data := b.readMemberData(m.Subscription)
		switch {
		case data.hasGeneration && data.generation < b.maxGeneration:
			updatePrevAssignment(prev, data.partitions, m.ID, data.generation)
		case !data.hasGeneration && b.maxGeneration > NoGeneration:
			updatePrevAssignment(prev, data.partitions, m.ID, NoGeneration)
		}
	}
}

func updatePrevAssignment(prev map[TopicPartition]consumerGeneration, partitions []TopicPartition, consumer string, generation int32) {
	for _, tp := range partitions {
		if old, ok := prev[tp]; ok && generation <= old.generation {
			continue
		}
		prev[tp] = consumerGeneration{consumer: consumer, generation: generation}
	}
}

// assignOwnedPartitions drops partitions of topics that are gone, or that
// their member no longer subscribes to (or, with racks, on another rack),
// and returns the partitions that stay.
func (b *generalBuilder) assignOwnedPartitions() []TopicPartition {
	var assigned []TopicPartition
	for _, c := range b.order {
		sub := b.in.byID[c].Subscription
		list := b.currentAssignment[c]
		kept := &tpList{}
		for _, tp := range list.items {
			switch {
			case b.topic2AllPotentialConsumers[tp.Topic] == nil:
				delete(b.currentPartitionConsumer, tp)
			case !containsString(sub.Topics, tp.Topic) || b.rack.racksMismatch(c, tp):
				b.revocationRequired = true
			default:
				kept.add(tp)
				assigned = append(assigned, tp)
			}
		}
		b.currentAssignment[c] = kept
	}
	return assigned
}

// unassignedPartitions is Java's two-pointer walk over sortedAllPartitions
// with the assigned partitions sorted the same way (PartitionComparator).
func (b *generalBuilder) unassignedPartitions(assigned []TopicPartition) []TopicPartition {
	if len(assigned) == 0 {
		return slices.Clone(b.sortedAllPartitions)
	}
	slices.SortStableFunc(assigned, func(x, y TopicPartition) int {
		if c := cmpInt(len(b.topic2AllPotentialConsumers[x.Topic]), len(b.topic2AllPotentialConsumers[y.Topic])); c != 0 {
			return c
		}
		if c := javaCompare(x.Topic, y.Topic); c != 0 {
			return c
		}
		return int(x.Partition - y.Partition)
	})
	var unassigned []TopicPartition
	addDirectly := false
	next, i := assigned[0], 1
	for _, tp := range b.sortedAllPartitions {
		if addDirectly || next != tp {
			unassigned = append(unassigned, tp)
			continue
		}
		if i < len(assigned) {
			next, i = assigned[i], i+1
		} else {
			addDirectly = true
		}
	}
	return unassigned
}

func (b *generalBuilder) balance(prev map[TopicPartition]consumerGeneration, unassigned []TopicPartition) {
	initializing := b.size(b.sorted[len(b.sorted)-1]) == 0

	// First with rack matching, then whatever is left without.
	toAssign := unassigned
	if len(b.rack.consumerRacks) > 0 {
		toAssign = slices.Clone(unassigned)
		toAssign = b.maybeAssign(toAssign, true, true)
	}
	b.maybeAssign(toAssign, false, false)

	// Only partitions of topics with two or more potential members, and
	// only members that could gain or lose, take part in reassignment.
	fixedPartitions := make(map[TopicPartition]bool)
	for t, consumers := range b.topic2AllPotentialConsumers {
		if len(consumers) < 2 {
			for p := range b.in.counts[t] {
				fixedPartitions[TopicPartition{Topic: t, Partition: p}] = true
			}
		}
	}
	notFixed := func(tp TopicPartition) bool { return !fixedPartitions[tp] }
	sortedAllPartitions := filter(b.sortedAllPartitions, notFixed)
	unassigned = filter(unassigned, notFixed)

	fixedAssignments := make(map[string]*tpList)
	var fixedOrder []string
	for _, c := range b.order {
		if !b.canConsumerParticipateInReassignment(c) {
			b.sortedRemove(c)
			fixedAssignments[c] = b.currentAssignment[c]
			fixedOrder = append(fixedOrder, c)
			delete(b.currentAssignment, c)
			for _, tp := range fixedAssignments[c].items {
				b.noteRemoved(c, tp)
			}
		}
	}

	preBalanceAssignment := make(map[string]*tpList, len(b.currentAssignment))
	for c, list := range b.currentAssignment {
		preBalanceAssignment[c] = list.clone()
	}
	preBalancePartitionConsumers := make(map[TopicPartition]string, len(b.currentPartitionConsumer))
	for tp, c := range b.currentPartitionConsumer {
		preBalancePartitionConsumers[tp] = c
	}

	// Without a revocation forced by subscription changes, first try moving
	// only the newly assigned partitions.
	if !b.revocationRequired {
		b.performReassignments(unassigned, prev)
	}
	reassigned := b.performReassignments(sortedAllPartitions, prev)

	// Keep the moves only if they improved the balance (unless this is the
	// group's first assignment).
	if !initializing && reassigned && balanceScore(b.currentAssignment) >= balanceScore(preBalanceAssignment) {
		b.currentAssignment = preBalanceAssignment
		b.currentPartitionConsumer = preBalancePartitionConsumers
	}
	for _, c := range fixedOrder {
		b.currentAssignment[c] = fixedAssignments[c]
	}
}

func filter(tps []TopicPartition, keep func(TopicPartition) bool) []TopicPartition {
	out := make([]TopicPartition, 0, len(tps))
	for _, tp := range tps {
		if keep(tp) {
			out = append(out, tp)
		}
	}
	return out
}

// maybeAssign gives each partition to the least loaded potential member (on
// a replica's rack when matchRacks). With removeAssigned, it returns the
// partitions it could not assign; otherwise it returns tps.
func (b *generalBuilder) maybeAssign(tps []TopicPartition, matchRacks, removeAssigned bool) []TopicPartition {
	left := tps[:0:0]
	for _, tp := range tps {
		if len(b.topic2AllPotentialConsumers[tp.Topic]) == 0 {
			left = append(left, tp)
			continue
		}
		if !b.maybeAssignPartition(tp, matchRacks) || !removeAssigned {
			left = append(left, tp)
		}
	}
	return left
}

func (b *generalBuilder) maybeAssignPartition(tp TopicPartition, matchRacks bool) bool {
	for _, c := range b.sorted {
		if !containsString(b.consumer2AllPotentialTopics[c], tp.Topic) {
			continue
		}
		if matchRacks && b.rack.racksMismatch(c, tp) {
			continue
		}
		b.sortedRemove(c)
		b.currentAssignment[c].add(tp)
		b.noteAdded(c, tp)
		b.currentPartitionConsumer[tp] = c
		b.sortedAdd(c)
		return true
	}
	return false
}

func (b *generalBuilder) canConsumerParticipateInReassignment(c string) bool {
	list := b.currentAssignment[c]
	if list.len() < b.maxAssignmentSize(b.consumer2AllPotentialTopics[c]) {
		return true
	}
	for _, tp := range list.items {
		if len(b.topic2AllPotentialConsumers[tp.Topic]) >= 2 {
			return true
		}
	}
	return false
}

// maxAssignmentSize is the number of partitions of the given topics (the
// total when the list is as long as the topic list, as in Java).
func (b *generalBuilder) maxAssignmentSize(topics []string) int {
	if len(topics) == len(b.in.counts) {
		return b.totalPartitions
	}
	n := 0
	for _, t := range topics {
		n += int(b.in.counts[t])
	}
	return n
}

// isBalanced: sizes differ by at most one, or no member could take a
// partition from a member with at least two more.
func (b *generalBuilder) isBalanced() bool {
	if b.size(b.sorted[0]) >= b.size(b.sorted[len(b.sorted)-1])-1 {
		return true
	}
	if b.ownerStale {
		// Java's map of partition to member: the last list holding it wins.
		clear(b.owner)
		for _, c := range b.order {
			if list, ok := b.currentAssignment[c]; ok {
				for _, tp := range list.items {
					b.owner[tp] = c
				}
			}
		}
	}
	for _, c := range b.sorted {
		list := b.currentAssignment[c]
		count := list.len()
		topics := b.consumer2AllPotentialTopics[c]
		if count == b.maxAssignmentSize(topics) {
			continue
		}
		for _, t := range topics {
			for p := range b.in.counts[t] {
				tp := TopicPartition{Topic: t, Partition: p}
				if list.contains(tp) {
					continue
				}
				other, ok := b.owner[tp]
				if !ok {
					b.fail("partition %s has no member", tp)
					return true
				}
				if count+1 < b.size(other) {
					return false
				}
			}
		}
	}
	return true
}

// noteAdded records that c's list now holds tp.
func (b *generalBuilder) noteAdded(c string, tp TopicPartition) {
	if _, held := b.owner[tp]; held {
		b.ownerStale = true
		return
	}
	b.owner[tp] = c
}

// noteRemoved records that c's list dropped tp (or left the reassignment).
func (b *generalBuilder) noteRemoved(c string, tp TopicPartition) {
	if !b.ownerStale && b.owner[tp] == c {
		delete(b.owner, tp)
	}
}

func balanceScore(assignment map[string]*tpList) int {
	sizes := make([]int, 0, len(assignment))
	for _, list := range assignment {
		sizes = append(sizes, list.len())
	}
	score := 0
	for i := range sizes {
		for j := i + 1; j < len(sizes); j++ {
			score += max(sizes[i]-sizes[j], sizes[j]-sizes[i])
		}
	}
	return score
}

// performReassignments moves partitions until balanced or no move helps,
// and reports whether it moved any.
func (b *generalBuilder) performReassignments(partitions []TopicPartition, prev map[TopicPartition]consumerGeneration) bool {
	performed := false
	for modified := true; modified && b.err == nil; {
		modified = false
		for _, tp := range partitions {
			if b.err != nil || b.isBalanced() {
				break
			}
			consumer := b.currentPartitionConsumer[tp]
			if p, ok := prev[tp]; ok && b.size(consumer) > b.size(p.consumer)+1 {
				b.reassignPartitionTo(tp, p.consumer)
				performed, modified = true, true
				continue
			}

			// A better-suited member, on the partition's rack if possible.
			found := false
			if consumerRack, ok := b.rack.consumerRacks[consumer]; ok {
				partitionRacks := b.rack.partitionRacks[tp]
				if partitionRacks == nil {
					b.fail("partition %s has no rack information", tp)
					break
				}
				if len(partitionRacks) > 0 && partitionRacks[consumerRack] {
					for _, other := range b.topic2AllPotentialConsumers[tp.Topic] {
						otherRack, ok := b.rack.consumerRacks[other]
						if !ok || !partitionRacks[otherRack] {
							continue
						}
						if b.size(consumer) > b.size(other)+1 {
							b.reassignPartition(tp)
							performed, modified, found = true, true, true
							break
						}
					}
				}
			}
			if !found {
				for _, other := range b.topic2AllPotentialConsumers[tp.Topic] {
					if b.size(consumer) > b.size(other)+1 {
						b.reassignPartition(tp)
						performed, modified = true, true
						break
					}
				}
			}
		}
	}
	return performed
}

// reassignPartition moves tp to the least loaded member subscribed to its topic.
func (b *generalBuilder) reassignPartition(tp TopicPartition) {
	for _, c := range b.sorted {
		if containsString(b.consumer2AllPotentialTopics[c], tp.Topic) {
			b.reassignPartitionTo(tp, c)
			return
		}
	}
	b.fail("no member for partition %s", tp)
}

func (b *generalBuilder) reassignPartitionTo(tp TopicPartition, newConsumer string) {
	consumer := b.currentPartitionConsumer[tp]
	// Moving a partition back along a previous movement keeps stickiness.
	toMove := b.movements.actualPartitionToBeMoved(tp, consumer, newConsumer)
	b.processPartitionMovement(toMove, newConsumer)
}

func (b *generalBuilder) processPartitionMovement(tp TopicPartition, newConsumer string) {
	oldConsumer := b.currentPartitionConsumer[tp]
	if b.currentAssignment[oldConsumer] == nil || b.currentAssignment[newConsumer] == nil {
		b.fail("moving %s from %q to %q, a member outside the reassignment", tp, oldConsumer, newConsumer)
		return
	}
	b.sortedRemove(oldConsumer)
	b.sortedRemove(newConsumer)
	b.movements.movePartition(tp, oldConsumer, newConsumer)
	b.currentAssignment[oldConsumer].removeFirst(tp)
	b.noteRemoved(oldConsumer, tp)
	b.currentAssignment[newConsumer].add(tp)
	b.noteAdded(newConsumer, tp)
	b.currentPartitionConsumer[tp] = newConsumer
	b.sortedAdd(newConsumer)
	b.sortedAdd(oldConsumer)
}

// size is the member's assignment size; a member outside currentAssignment
// is where Java throws a NullPointerException.
func (b *generalBuilder) size(c string) int {
	list, ok := b.currentAssignment[c]
	if !ok {
		b.fail("member %q has no current assignment", c)
		return 0
	}
	return list.len()
}

func (b *generalBuilder) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("%w: %s", errAssignorState, fmt.Sprintf(format, args...))
	}
}

// compareSubscriptions is SubscriptionComparator: assignment size, then ID.
func (b *generalBuilder) compareSubscriptions(x, y string) int {
	if c := cmpInt(b.currentAssignment[x].len(), b.currentAssignment[y].len()); c != 0 {
		return c
	}
	return javaCompare(x, y)
}

// sortedAdd inserts c into the TreeSet (a sorted slice) unless present.
func (b *generalBuilder) sortedAdd(c string) {
	i, found := slices.BinarySearchFunc(b.sorted, c, b.compareSubscriptions)
	if !found {
		b.sorted = slices.Insert(b.sorted, i, c)
	}
}

// sortedRemove removes c; sizes are unchanged since c was inserted, as Java
// always removes a member before changing its assignment.
func (b *generalBuilder) sortedRemove(c string) {
	if i, found := slices.BinarySearchFunc(b.sorted, c, b.compareSubscriptions); found {
		b.sorted = slices.Delete(b.sorted, i, i+1)
	}
}
