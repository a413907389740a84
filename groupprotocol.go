package mq

import (
	"slices"

	"github.com/mqkit/mq/internal/group"
	"github.com/segmentio/kafka-go"
)

// defaultGroupProtocols are Java's default partition.assignment.strategy:
// eager range unless every member offers cooperative-sticky first.
var defaultGroupProtocols = []GroupProtocol{GroupProtocolRange, GroupProtocolCooperativeSticky}

// assignors returns the assignors the member offers, in order of preference.
func (c *consumerConfig) assignors() []group.Assignor {
	if len(c.groupBalancers) > 0 {
		out := make([]group.Assignor, 0, len(c.groupBalancers))
		for _, b := range c.groupBalancers {
			switch b.(type) {
			case kafka.RangeGroupBalancer, *kafka.RangeGroupBalancer:
				out = append(out, group.Range())
			case kafka.RoundRobinGroupBalancer, *kafka.RoundRobinGroupBalancer:
				out = append(out, group.RoundRobin())
			default:
				out = append(out, balancerAssignor{b})
			}
		}
		return out
	}
	protocols := c.groupProtocols
	if len(protocols) == 0 {
		protocols = defaultGroupProtocols
	}
	out := make([]group.Assignor, 0, len(protocols))
	for _, p := range protocols {
		switch p {
		case GroupProtocolRange:
			out = append(out, group.Range())
		case GroupProtocolRoundRobin:
			out = append(out, group.RoundRobin())
		case GroupProtocolCooperativeSticky:
			out = append(out, group.CooperativeSticky())
		}
	}
	return out
}

// balancerAssignor runs a kafka-go GroupBalancer of the caller's as an
// eager assignor under its own protocol name.
type balancerAssignor struct{ b kafka.GroupBalancer }

func (a balancerAssignor) Name() string { return a.b.ProtocolName() }

// UserData is the balancer's user data, sent in the member's subscription.
func (a balancerAssignor) UserData() ([]byte, error) { return a.b.UserData() }

func (a balancerAssignor) Assign(members []group.Member, md group.Metadata) (map[string]group.Assignment, error) {
	gm := make([]kafka.GroupMember, len(members))
	for i, m := range members {
		gm[i] = kafka.GroupMember{ID: m.ID, Topics: m.Subscription.Topics, UserData: m.Subscription.UserData}
	}
	topics := make([]string, 0, len(md.Partitions))
	for t := range md.Partitions {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	var parts []kafka.Partition
	for _, t := range topics {
		for p := int32(0); p < md.Partitions[t]; p++ {
			kp := kafka.Partition{Topic: t, ID: int(p)}
			for _, r := range md.ReplicaRacks[group.TopicPartition{Topic: t, Partition: p}] {
				kp.Replicas = append(kp.Replicas, kafka.Broker{Rack: r})
			}
			parts = append(parts, kp)
		}
	}
	res := a.b.AssignGroups(gm, parts)
	out := make(map[string]group.Assignment, len(members))
	for _, m := range members {
		var tps []group.TopicPartition
		byTopic := res[m.ID]
		names := make([]string, 0, len(byTopic))
		for t := range byTopic {
			names = append(names, t)
		}
		slices.Sort(names)
		for _, t := range names {
			ids := slices.Clone(byTopic[t])
			slices.Sort(ids)
			for _, id := range ids {
				tps = append(tps, group.TopicPartition{Topic: t, Partition: int32(id)})
			}
		}
		out[m.ID] = group.Assignment{Partitions: tps}
	}
	return out, nil
}
