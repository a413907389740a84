package group

// partitionMovements is AbstractStickyAssignor.PartitionMovements: the
// partitions moved between members during one general assignment, so that a
// move in the opposite direction of an earlier one moves that same partition
// back instead of another one (stickiness).
type partitionMovements struct {
	// byTopic holds, per topic and member pair, the partitions moved from
	// the pair's source to its destination: a java.util.HashSet, whose
	// first element in iteration order is the one moved back.
	byTopic   map[string]map[consumerPair]*javaHashOrder[TopicPartition]
	movements map[TopicPartition]consumerPair
}

type consumerPair struct{ src, dst string }

func newPartitionMovements() *partitionMovements {
	return &partitionMovements{
		byTopic:   make(map[string]map[consumerPair]*javaHashOrder[TopicPartition]),
		movements: make(map[TopicPartition]consumerPair),
	}
}

func (m *partitionMovements) removeMovementRecord(tp TopicPartition) consumerPair {
	pair := m.movements[tp]
	delete(m.movements, tp)
	forTopic := m.byTopic[tp.Topic]
	set := forTopic[pair]
	set.remove(tp)
	if set.len() == 0 {
		delete(forTopic, pair)
	}
	if len(forTopic) == 0 {
		delete(m.byTopic, tp.Topic)
	}
	return pair
}

func (m *partitionMovements) addMovementRecord(tp TopicPartition, pair consumerPair) {
	m.movements[tp] = pair
	forTopic, ok := m.byTopic[tp.Topic]
	if !ok {
		forTopic = make(map[consumerPair]*javaHashOrder[TopicPartition])
		m.byTopic[tp.Topic] = forTopic
	}
	set, ok := forTopic[pair]
	if !ok {
		set = newJavaHashOrder(javaTopicPartitionHash)
		forTopic[pair] = set
	}
	set.add(tp)
}

// movePartition records tp moving from oldConsumer to newConsumer; a
// partition moving back to where it started is no longer a movement.
func (m *partitionMovements) movePartition(tp TopicPartition, oldConsumer, newConsumer string) {
	if _, moved := m.movements[tp]; moved {
		existing := m.removeMovementRecord(tp)
		if existing.src != newConsumer {
			m.addMovementRecord(tp, consumerPair{src: existing.src, dst: newConsumer})
		}
		return
	}
	m.addMovementRecord(tp, consumerPair{src: oldConsumer, dst: newConsumer})
}

// actualPartitionToBeMoved returns the partition to move from oldConsumer to
// newConsumer in place of tp: one that earlier moved the other way, if any.
func (m *partitionMovements) actualPartitionToBeMoved(tp TopicPartition, oldConsumer, newConsumer string) TopicPartition {
	forTopic, ok := m.byTopic[tp.Topic]
	if !ok {
		return tp
	}
	if pair, moved := m.movements[tp]; moved {
		oldConsumer = pair.src
	}
	set, ok := forTopic[consumerPair{src: newConsumer, dst: oldConsumer}]
	if !ok {
		return tp
	}
	first, _ := set.first()
	return first
}
