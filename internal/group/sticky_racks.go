package group

import (
	"slices"
)

// stickyRackInfo is AbstractStickyAssignor.RackInfo: member racks and
// partition replica racks when rack-aware assignment applies, and for every
// partition the number of members on its replicas' racks.
type stickyRackInfo struct {
	// consumerRacks and partitionRacks are empty unless rack-aware
	// assignment is used.
	consumerRacks  map[string]string
	partitionRacks map[TopicPartition]map[string]bool
	// numConsumersByPartition is filled whenever some member has a rack,
	// even if rack-aware assignment is not used (as in Java).
	numConsumersByPartition map[TopicPartition]int
}

func newStickyRackInfo(in *groupInput) *stickyRackInfo {
	info := &stickyRackInfo{
		consumerRacks:           map[string]string{},
		partitionRacks:          map[TopicPartition]map[string]bool{},
		numConsumersByPartition: map[TopicPartition]int{},
	}
	consumersByRack := make(map[string]int)
	rackOf := make(map[string]string)
	for _, m := range in.members {
		if r := m.Subscription.RackID; r != "" {
			consumersByRack[r]++
			rackOf[m.ID] = r
		}
	}
	if len(consumersByRack) == 0 {
		return info
	}

	partitionRacks := make(map[TopicPartition]map[string]bool, in.totalPartitions())
	allPartitionRacks := make(map[string]bool)
	for _, t := range in.topics {
		for p := range in.counts[t] {
			tp := TopicPartition{Topic: t, Partition: p}
			racks := make(map[string]bool)
			for _, r := range in.racks[tp] {
				racks[r] = true
				allPartitionRacks[r] = true
			}
			partitionRacks[tp] = racks
		}
	}
	consumerRackSet := make(map[string]bool, len(consumersByRack))
	for r := range consumersByRack {
		consumerRackSet[r] = true
	}
	if useRackAwareAssignment(consumerRackSet, allPartitionRacks, partitionRacks) {
		info.consumerRacks = rackOf
		info.partitionRacks = partitionRacks
	}
	for tp, racks := range partitionRacks {
		n := 0
		for r := range racks {
			n += consumersByRack[r]
		}
		info.numConsumersByPartition[tp] = n
	}
	return info
}

// racksMismatch: the member has a rack and the partition has no replica on it.
func (r *stickyRackInfo) racksMismatch(consumer string, tp TopicPartition) bool {
	rack, ok := r.consumerRacks[consumer]
	if !ok {
		return false
	}
	racks, ok := r.partitionRacks[tp]
	return !ok || !racks[rack]
}

// sortPartitionsByRackConsumers orders partitions by how many members share
// a rack with their replicas, fewest first (a stable sort, as Java's).
func (r *stickyRackInfo) sortPartitionsByRackConsumers(tps []TopicPartition) []TopicPartition {
	if len(r.numConsumersByPartition) == 0 {
		return tps
	}
	sorted := slices.Clone(tps)
	slices.SortStableFunc(sorted, func(a, b TopicPartition) int {
		return cmpInt(r.numConsumersByPartition[a], r.numConsumersByPartition[b])
	})
	return sorted
}

// nextRackConsumer returns the index of the first member at or after
// firstIndex (circularly) whose rack holds a replica of tp, or -1.
func (r *stickyRackInfo) nextRackConsumer(tp TopicPartition, consumers []string, firstIndex int) int {
	racks := r.partitionRacks[tp]
	if len(racks) == 0 {
		return -1
	}
	for i := range consumers {
		index := (firstIndex + i) % len(consumers)
		if rack, ok := r.consumerRacks[consumers[index]]; ok && racks[rack] {
			return index
		}
	}
	return -1
}
