package group

import (
	"slices"
)

// Range returns the "range" assignor, a port of Java's RangeAssignor: each
// topic on its own, its partitions split into contiguous ranges over the
// topic's subscribers sorted by instance ID (static members first) then member
// ID, the first partitions%subscribers members getting one extra.
//
// With member racks (subscription v3) and replica racks in Metadata, it also
// follows Java's rack-aware variant (KIP-881): partitions whose replicas share
// a member's rack go to that member first, co-partitioned topics (same
// subscribers and partition count) together, within the same per-member
// quotas; then each member's list is sorted by topic and partition, as Java
// does in that case.
func Range() Assignor { return rangeAssignor{} }

type rangeAssignor struct{}

func (rangeAssignor) Name() string { return "range" }

func (rangeAssignor) Assign(members []Member, md Metadata) (map[string]Assignment, error) {
	in, err := newGroupInput(members, md)
	if err != nil {
		return nil, err
	}

	// consumersPerTopic: the subscribers of each topic in subscription order
	// (a member listing a topic twice is listed twice, then merged below).
	consumersPerTopic := make(map[string][]*Member)
	consumerRacks := make(map[string]string)
	for _, m := range in.members {
		for _, t := range m.Subscription.Topics {
			consumersPerTopic[t] = append(consumersPerTopic[t], m)
		}
		if m.Subscription.RackID != "" {
			consumerRacks[m.ID] = m.Subscription.RackID
		}
	}

	states := make([]*rangeTopicState, 0, len(in.topics))
	for _, t := range in.topics {
		states = append(states, newRangeTopicState(t, in.counts[t], consumersPerTopic[t], consumerRacks, in.racks))
	}

	assignment := in.emptyAssignments()
	useRackAware := false
	for _, s := range states {
		if s.needsRackAwareAssignment {
			useRackAware = true
		}
	}
	if useRackAware {
		assignWithRackMatching(states, assignment)
	}
	for _, s := range states {
		s.assignRanges(func(string, int32) bool { return true }, assignment)
	}
	if useRackAware {
		for _, list := range assignment {
			slices.SortStableFunc(list, compareTopicPartition)
		}
	}
	return toAssignments(assignment), nil
}

// assignWithRackMatching groups topics by subscribers, then by partition
// count; a group of several topics is co-partitioned and assigned partition
// by partition to one member for all its topics. Groups touch disjoint topics
// and the lists are sorted afterwards, so the order of groups (a HashMap's in
// Java) does not change the outcome.
func assignWithRackMatching(states []*rangeTopicState, assignment map[string][]TopicPartition) {
	type key struct {
		consumers string
		n         int
	}
	var order []key
	groups := make(map[key][]*rangeTopicState)
	for _, s := range states {
		k := key{s.consumersKey(), len(s.partitionRacks)}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], s)
	}
	for _, k := range order {
		group := groups[k]
		if len(group) > 1 {
			assignCoPartitionedWithRackMatching(group[0].consumers, k.n, group, assignment)
			continue
		}
		s := group[0]
		if s.needsRackAwareAssignment {
			s.assignRanges(s.racksMatch, assignment)
		}
	}
}

func assignCoPartitionedWithRackMatching(consumers []string, numPartitions int, states []*rangeTopicState, assignment map[string][]TopicPartition) {
	remaining := slices.Clone(consumers)
	for p := range int32(numPartitions) {
		idx := slices.IndexFunc(remaining, func(c string) bool {
			for _, s := range states {
				if !s.racksMatch(c, p) || s.maxAssignable(c) <= 0 {
					return false
				}
			}
			return true
		})
		if idx < 0 {
			continue
		}
		matching := remaining[idx]
		for _, s := range states {
			s.assign(matching, []TopicPartition{{Topic: s.topic, Partition: p}}, assignment)
		}
		none := true
		for _, s := range states {
			if s.maxAssignable(matching) > 0 {
				none = false
				break
			}
		}
		if none {
			remaining, _ = removeFirst(remaining, matching)
			if len(remaining) == 0 {
				break
			}
		}
	}
}

// rangeTopicState is RangeAssignor.TopicAssignmentState.
type rangeTopicState struct {
	topic string
	// consumers are the topic's subscribers, sorted, each once.
	consumers     []string
	consumerRacks map[string]string // rack of each subscriber that has one
	// partitionRacks holds every partition's replica racks when some
	// subscriber has a rack, and is empty otherwise.
	partitionRacks           map[int32]map[string]bool
	needsRackAwareAssignment bool

	unassigned                           []bool // by partition: still unassigned
	numUnassigned                        int
	numAssignedByConsumer                map[string]int
	numPartitionsPerConsumer             int
	remainingConsumersWithExtraPartition int
}

func newRangeTopicState(topic string, numPartitions int32, members []*Member, consumerRacks map[string]string, replicaRacks map[TopicPartition][]string) *rangeTopicState {
	sorted := slices.Clone(members)
	slices.SortStableFunc(sorted, compareMemberInfo)
	s := &rangeTopicState{
		topic:                 topic,
		consumerRacks:         make(map[string]string),
		numAssignedByConsumer: make(map[string]int),
		unassigned:            make([]bool, numPartitions),
		numUnassigned:         int(numPartitions),
	}
	for _, m := range sorted {
		if _, dup := s.numAssignedByConsumer[m.ID]; dup {
			continue
		}
		s.consumers = append(s.consumers, m.ID)
		s.numAssignedByConsumer[m.ID] = 0
		if r, ok := consumerRacks[m.ID]; ok {
			s.consumerRacks[m.ID] = r
		}
	}
	for p := range s.unassigned {
		s.unassigned[p] = true
	}
	if n := len(s.consumers); n > 0 {
		s.numPartitionsPerConsumer = int(numPartitions) / n
		s.remainingConsumersWithExtraPartition = int(numPartitions) % n
	}

	allConsumerRacks := make(map[string]bool)
	for _, r := range s.consumerRacks {
		allConsumerRacks[r] = true
	}
	allPartitionRacks := make(map[string]bool)
	s.partitionRacks = make(map[int32]map[string]bool)
	racksPerPartition := make(map[TopicPartition]map[string]bool)
	if len(allConsumerRacks) > 0 {
		for p := range numPartitions {
			tp := TopicPartition{Topic: topic, Partition: p}
			racks := make(map[string]bool)
			for _, r := range replicaRacks[tp] {
				racks[r] = true
				allPartitionRacks[r] = true
			}
			s.partitionRacks[p] = racks
			racksPerPartition[tp] = racks
		}
	}
	s.needsRackAwareAssignment = useRackAwareAssignment(allConsumerRacks, allPartitionRacks, racksPerPartition)
	return s
}

// consumersKey identifies the subscribers and their racks (Java groups the
// topics by the LinkedHashMap of consumer -> rack, compared by content).
func (s *rangeTopicState) consumersKey() string {
	key := make([]byte, 0, 64)
	for _, c := range s.consumers {
		key = appendLenPrefixed(key, c)
		r, ok := s.consumerRacks[c]
		if ok {
			key = append(key, 1)
			key = appendLenPrefixed(key, r)
		} else {
			key = append(key, 0)
		}
	}
	return string(key)
}

func appendLenPrefixed(b []byte, s string) []byte {
	b = append(b, byte(len(s)>>24), byte(len(s)>>16), byte(len(s)>>8), byte(len(s)))
	return append(b, s...)
}

func (s *rangeTopicState) racksMatch(consumer string, p int32) bool {
	rack, ok := s.consumerRacks[consumer]
	if !ok {
		return true
	}
	racks, ok := s.partitionRacks[p]
	return ok && racks[rack]
}

func (s *rangeTopicState) maxAssignable(consumer string) int {
	extra := 0
	if s.remainingConsumersWithExtraPartition > 0 {
		extra = 1
	}
	return max(0, s.numPartitionsPerConsumer+extra-s.numAssignedByConsumer[consumer])
}

// assignRanges gives each subscriber, in order, the first unassigned
// partitions it may take, up to its quota.
func (s *rangeTopicState) assignRanges(mayAssign func(string, int32) bool, assignment map[string][]TopicPartition) {
	for _, c := range s.consumers {
		if s.numUnassigned == 0 {
			break
		}
		limit := s.maxAssignable(c)
		var assignable []TopicPartition
		for p, free := range s.unassigned {
			if len(assignable) >= limit {
				break
			}
			if free && mayAssign(c, int32(p)) {
				assignable = append(assignable, TopicPartition{Topic: s.topic, Partition: int32(p)})
			}
		}
		if len(assignable) == 0 {
			continue
		}
		s.assign(c, assignable, assignment)
	}
}

func (s *rangeTopicState) assign(consumer string, tps []TopicPartition, assignment map[string][]TopicPartition) {
	assignment[consumer] = append(assignment[consumer], tps...)
	s.numAssignedByConsumer[consumer] += len(tps)
	if s.numAssignedByConsumer[consumer] > s.numPartitionsPerConsumer {
		s.remainingConsumersWithExtraPartition--
	}
	for _, tp := range tps {
		if s.unassigned[tp.Partition] {
			s.unassigned[tp.Partition] = false
			s.numUnassigned--
		}
	}
}
