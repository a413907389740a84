package group

import (
	"fmt"
	"testing"
)

// benchGroup returns members subscribing to topics of a group of 1,000
// partitions (10 topics of 100). With rebalance, members own partitions from
// a previous cooperative assignment and one member left since; with
// scaleOut, the first 10 members own everything and 90 joined since.
func benchGroup(b *testing.B, members int, sameSubscriptions, rebalance, scaleOut bool) ([]Member, Metadata) {
	b.Helper()
	md := Metadata{Partitions: map[string]int32{}}
	var topics []string
	for i := range 10 {
		t := fmt.Sprintf("topic-%d", i)
		topics = append(topics, t)
		md.Partitions[t] = 100
	}
	group := make([]Member, members)
	for i := range group {
		sub := topics
		if !sameSubscriptions {
			sub = topics[:5+i%6] // 5 to 10 topics
		}
		group[i] = Member{
			ID:           fmt.Sprintf("consumer-bench-%d-4f1c8c72-662a-1ec2-1ada-60e26e7cd%03d", i, i),
			Subscription: Subscription{Topics: sub, GenerationID: NoGeneration},
		}
	}
	if scaleOut {
		prev, err := CooperativeSticky().Assign(group[:10], md)
		if err != nil {
			b.Fatal(err)
		}
		for i := range group[:10] {
			group[i].Subscription.OwnedPartitions = prev[group[i].ID].Partitions
			group[i].Subscription.GenerationID = 1
		}
		return group, md
	}
	if !rebalance {
		return group, md
	}
	prev, err := CooperativeSticky().Assign(group, md)
	if err != nil {
		b.Fatal(err)
	}
	for i := range group {
		group[i].Subscription.OwnedPartitions = prev[group[i].ID].Partitions
		group[i].Subscription.GenerationID = 1
	}
	return group[1:], md
}

func BenchmarkAssign(b *testing.B) {
	for _, a := range []Assignor{Range(), RoundRobin(), CooperativeSticky()} {
		for _, c := range []struct {
			name                      string
			same, rebalance, scaleOut bool
		}{
			{"same-topics/initial", true, false, false},
			{"same-topics/rebalance", true, true, false},
			{"same-topics/scale-out", true, false, true},
			{"different-topics/initial", false, false, false},
			{"different-topics/rebalance", false, true, false},
			{"different-topics/scale-out", false, false, true},
		} {
			b.Run(fmt.Sprintf("%s/100x1000/%s", a.Name(), c.name), func(b *testing.B) {
				members, md := benchGroup(b, 100, c.same, c.rebalance, c.scaleOut)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := a.Assign(members, md); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
