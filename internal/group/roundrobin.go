package group

import (
	"slices"
)

// RoundRobin returns the "roundrobin" assignor, a port of Java's
// RoundRobinAssignor: all partitions of all subscribed topics, sorted by topic
// then partition, dealt in turn to the members sorted by instance ID (static
// members first) then member ID, skipping members not subscribed to the
// partition's topic.
func RoundRobin() Assignor { return roundRobinAssignor{} }

type roundRobinAssignor struct{}

func (roundRobinAssignor) Name() string { return "roundrobin" }

func (roundRobinAssignor) Assign(members []Member, md Metadata) (map[string]Assignment, error) {
	in, err := newGroupInput(members, md)
	if err != nil {
		return nil, err
	}
	assignment := in.emptyAssignments()
	if len(in.members) == 0 {
		return toAssignments(assignment), nil
	}
	sorted := slices.Clone(in.members)
	slices.SortStableFunc(sorted, compareMemberInfo)

	// All subscribed topics in a TreeSet; those with partitions are dealt.
	var topics []string
	seen := make(map[string]bool)
	for _, m := range in.members {
		for _, t := range m.Subscription.Topics {
			if !seen[t] {
				seen[t] = true
				topics = append(topics, t)
			}
		}
	}
	slices.SortFunc(topics, javaCompare)

	next := 0 // Java's CircularIterator over sorted
	for _, t := range topics {
		n, ok := in.counts[t]
		if !ok {
			continue
		}
		for p := range n {
			// A topic comes from some member's subscription, so this ends.
			for !containsString(sorted[next].Subscription.Topics, t) {
				next = (next + 1) % len(sorted)
			}
			id := sorted[next].ID
			assignment[id] = append(assignment[id], TopicPartition{Topic: t, Partition: p})
			next = (next + 1) % len(sorted)
		}
	}
	return toAssignments(assignment), nil
}
