package mq

import (
	"testing"

	"github.com/mqkit/mq/internal/group"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// firstTakesAll is a caller's kafka-go balancer: the first member gets
// every partition.
type firstTakesAll struct{}

func (firstTakesAll) ProtocolName() string      { return "first-takes-all" }
func (firstTakesAll) UserData() ([]byte, error) { return []byte("ud"), nil }
func (firstTakesAll) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	out := kafka.GroupMemberAssignments{}
	for _, m := range members {
		out[m.ID] = map[string][]int{}
	}
	for _, p := range partitions {
		out[members[0].ID][p.Topic] = append(out[members[0].ID][p.Topic], p.ID)
	}
	return out
}

func TestAssignorsFromOptions(t *testing.T) {
	names := func(c consumerConfig) []string {
		var out []string
		for _, a := range c.assignors() {
			out = append(out, a.Name())
		}
		return out
	}
	c := defaultConsumerConfig()
	assert.Equal(t, []string{"range", "cooperative-sticky"}, names(c), "Java's default")
	c.groupProtocols = []GroupProtocol{GroupProtocolCooperativeSticky, GroupProtocolRoundRobin}
	assert.Equal(t, []string{"cooperative-sticky", "roundrobin"}, names(c))
	c = defaultConsumerConfig()
	c.groupBalancers = []kafka.GroupBalancer{kafka.RoundRobinGroupBalancer{}, &kafka.RangeGroupBalancer{}, firstTakesAll{}}
	assert.Equal(t, []string{"roundrobin", "range", "first-takes-all"}, names(c))
}

// A caller's kafka-go balancer runs as an assignor: members and partitions
// in, every member in the result, partitions sorted.
func TestBalancerAssignor(t *testing.T) {
	a := balancerAssignor{firstTakesAll{}}
	ud, err := a.UserData()
	require.NoError(t, err)
	assert.Equal(t, "ud", string(ud))
	out, err := a.Assign([]group.Member{
		{ID: "m1", Subscription: group.Subscription{Topics: []string{"a", "b"}}},
		{ID: "m2", Subscription: group.Subscription{Topics: []string{"a"}}},
	}, group.Metadata{Partitions: map[string]int32{"a": 2, "b": 1}})
	require.NoError(t, err)
	assert.Equal(t, []group.TopicPartition{{Topic: "a", Partition: 0}, {Topic: "a", Partition: 1}, {Topic: "b", Partition: 0}},
		out["m1"].Partitions)
	assert.Contains(t, out, "m2")
	assert.Empty(t, out["m2"].Partitions)
}
