package group

import (
	"errors"
	"fmt"
)

// Member is one member of the group as the leader sees it in the JoinGroup
// response: its ID, its static instance ID, and its decoded subscription.
type Member struct {
	// ID is the member ID the coordinator gave the member.
	ID string
	// InstanceID is the member's group.instance.id (KIP-345); "" when the
	// member is not static (the broker never hands out an empty one).
	InstanceID string
	// Subscription is the member's decoded metadata (DecodeSubscription).
	Subscription Subscription
}

// Metadata is what the leader knows of the subscribed topics.
type Metadata struct {
	// Partitions is the partition count of each topic in the cluster. A
	// subscribed topic that is missing, or has no partitions, is not
	// assigned, as in Java ("no metadata is available").
	Partitions map[string]int32
	// ReplicaRacks optionally gives the racks of each partition's replicas
	// (the rack of each replica's broker; "" or a missing partition means
	// no rack). Rack-aware assignment (KIP-881) happens only when members
	// send racks (subscription version 3) and partitions have racks here.
	ReplicaRacks map[TopicPartition][]string
}

// Assignor computes a group's assignment on the leader. Implementations are
// stateless: each call is what a newly created Java assignor of the same name
// returns for the same JoinGroup response and metadata (see doc.go).
type Assignor interface {
	// Name is the protocol name members announce in JoinGroup
	// (partition.assignment.strategy's name() in Java).
	Name() string
	// Assign returns the assignment of every member, keyed by member ID.
	// members must be in the order of the JoinGroup response, which decides
	// ties as it does for a Java leader. The Partitions of an Assignment are
	// in the order Java's assignor produces them.
	Assign(members []Member, md Metadata) (map[string]Assignment, error)
}

// ErrDuplicateMember is returned when two members share an ID.
var ErrDuplicateMember = errors.New("group: duplicate member id")

// groupInput is the leader's view with Java's orders applied: the order in
// which a Java leader iterates its HashMap of subscriptions, and its map of
// topic -> partitions.
type groupInput struct {
	// members in the iteration order of Java's subscriptions HashMap (built
	// in JoinGroup response order by ConsumerCoordinator.onLeaderElected).
	members []*Member
	byID    map[string]*Member
	// topics are the keys of partitionsPerTopic (subscribed topics with at
	// least one partition) in Java's HashMap iteration order.
	topics []string
	counts map[string]int32
	// racks holds each partition's distinct, non-empty replica racks.
	racks map[TopicPartition][]string
}

func newGroupInput(members []Member, md Metadata) (*groupInput, error) {
	in := &groupInput{byID: make(map[string]*Member, len(members)), counts: make(map[string]int32)}
	ids := make([]string, 0, len(members))
	for i := range members {
		m := &members[i]
		if _, dup := in.byID[m.ID]; dup {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateMember, m.ID)
		}
		in.byID[m.ID] = m
		ids = append(ids, m.ID)
	}
	for _, id := range javaStringOrder(ids) {
		in.members = append(in.members, in.byID[id])
	}

	// AbstractPartitionAssignor.assign(Cluster, ...): a HashSet of all
	// subscribed topics, filled member by member, then a HashMap of the
	// topics with partitions, filled in that set's order.
	subscribed := newJavaHashOrder(javaStringHash)
	for _, m := range in.members {
		for _, t := range m.Subscription.Topics {
			subscribed.add(t)
		}
	}
	var withPartitions []string
	for _, t := range subscribed.keys() {
		if n := md.Partitions[t]; n > 0 {
			withPartitions = append(withPartitions, t)
			in.counts[t] = n
		}
	}
	in.topics = javaStringOrder(withPartitions)

	in.racks = make(map[TopicPartition][]string)
	for tp, racks := range md.ReplicaRacks {
		if n, ok := in.counts[tp.Topic]; !ok || tp.Partition < 0 || tp.Partition >= n {
			continue
		}
		var distinct []string
		for _, r := range racks {
			if r != "" && !containsString(distinct, r) {
				distinct = append(distinct, r)
			}
		}
		if len(distinct) > 0 {
			in.racks[tp] = distinct
		}
	}
	return in, nil
}

// totalPartitions is the number of partitions of all topics in partitionsPerTopic.
func (in *groupInput) totalPartitions() int {
	total := 0
	for _, n := range in.counts {
		total += int(n)
	}
	return total
}

// emptyAssignments gives every member an empty assignment, as every Java
// assignor does for members that get nothing.
func (in *groupInput) emptyAssignments() map[string][]TopicPartition {
	out := make(map[string][]TopicPartition, len(in.members))
	for _, m := range in.members {
		out[m.ID] = nil
	}
	return out
}

func toAssignments(lists map[string][]TopicPartition) map[string]Assignment {
	out := make(map[string]Assignment, len(lists))
	for id, tps := range lists {
		out[id] = Assignment{Partitions: tps}
	}
	return out
}

// compareMemberInfo is AbstractPartitionAssignor.MemberInfo.compareTo:
// static members first, by instance ID, then dynamic members by member ID.
func compareMemberInfo(a, b *Member) int {
	switch {
	case a.InstanceID != "" && b.InstanceID != "":
		return javaCompare(a.InstanceID, b.InstanceID)
	case a.InstanceID != "":
		return -1
	case b.InstanceID != "":
		return 1
	}
	return javaCompare(a.ID, b.ID)
}

// compareTopicPartition is Utils.TopicPartitionComparator: topic, then partition.
func compareTopicPartition(a, b TopicPartition) int {
	if a.Topic == b.Topic {
		return int(a.Partition - b.Partition) // Java subtracts ints; same wrap-around
	}
	return javaCompare(a.Topic, b.Topic)
}

// useRackAwareAssignment is AbstractPartitionAssignor.useRackAwareAssignment
// (without the test-only preferRackAwareLogic): racks are used when some
// member rack is also a replica rack and not every partition has replicas on
// every rack.
func useRackAwareAssignment(consumerRacks, partitionRacks map[string]bool, racksPerPartition map[TopicPartition]map[string]bool) bool {
	if len(consumerRacks) == 0 {
		return false
	}
	disjoint := true
	for r := range consumerRacks {
		if partitionRacks[r] {
			disjoint = false
			break
		}
	}
	if disjoint {
		return false
	}
	for _, racks := range racksPerPartition {
		if !sameSet(racks, partitionRacks) {
			return true
		}
	}
	return false
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// removeFirst removes the first occurrence of v, like java.util.List.remove(Object).
func removeFirst[T comparable](list []T, v T) ([]T, bool) {
	for i, x := range list {
		if x == v {
			return append(list[:i], list[i+1:]...), true
		}
	}
	return list, false
}
