package group

import (
	"fmt"
	"strings"
)

// Hand-written scenarios for the corners of Java's assignors: the examples
// of their javadoc, conflicting claims, old protocol versions, static
// members, racks, unusual IDs and inputs Java handles in surprising ways.

// sub is a shorthand for a subscription.
func sub(topics []string, owned []TopicPartition, generation int32) Subscription {
	return Subscription{Topics: topics, OwnedPartitions: owned, GenerationID: generation}
}

func tps(spec string) []TopicPartition {
	// "t0:0,2 t1:1" -> t0-0, t0-2, t1-1
	var out []TopicPartition
	for _, group := range strings.Fields(spec) {
		topic, parts, _ := strings.Cut(group, ":")
		for _, p := range strings.Split(parts, ",") {
			var n int32
			fmt.Sscan(p, &n)
			out = append(out, TopicPartition{Topic: topic, Partition: n})
		}
	}
	return out
}

func member(id string, s Subscription) scenarioMember {
	return scenarioMember{id: id, version: MaxVersion, sub: s}
}

func topicsOf(counts ...any) []oracleTopic {
	var out []oracleTopic
	for i := 0; i < len(counts); i += 2 {
		out = append(out, oracleTopic{Name: counts[i].(string), Partitions: int32(counts[i+1].(int))})
	}
	return out
}

func edgeScenarios() []scenario {
	all3 := []string{"t0", "t1", "t2"}
	var out []scenario
	add := func(s scenario) { out = append(out, s) }

	// Javadoc of RoundRobinAssignor and RangeAssignor.
	add(scenario{name: "javadoc-two-members-two-topics", topics: topicsOf("t0", 3, "t1", 3),
		members: []scenarioMember{
			member("C0", sub([]string{"t0", "t1"}, nil, -1)),
			member("C1", sub([]string{"t0", "t1"}, nil, -1)),
		}})
	add(scenario{name: "javadoc-unequal-subscriptions", topics: topicsOf("t0", 1, "t1", 2, "t2", 3),
		members: []scenarioMember{
			member("C0", sub([]string{"t0"}, nil, -1)),
			member("C1", sub([]string{"t0", "t1"}, nil, -1)),
			member("C2", sub(all3, nil, -1)),
		}})
	// Javadoc of StickyAssignor, example 1 after C1 left, and example 2
	// after C0 left, with the previous assignment as owned partitions.
	add(scenario{name: "javadoc-sticky-1-after-leave", topics: topicsOf("t0", 2, "t1", 2, "t2", 2, "t3", 2),
		members: []scenarioMember{
			member("C0", sub([]string{"t0", "t1", "t2", "t3"}, tps("t0:0 t1:1 t3:0"), 1)),
			member("C2", sub([]string{"t0", "t1", "t2", "t3"}, tps("t1:0 t2:1"), 1)),
		}})
	add(scenario{name: "javadoc-sticky-2-after-leave", topics: topicsOf("t0", 1, "t1", 2, "t2", 3),
		members: []scenarioMember{
			member("C1", sub([]string{"t0", "t1"}, tps("t1:0,1"), 1)),
			member("C2", sub(all3, tps("t2:0,1,2"), 1)),
		}})

	// Sizes.
	add(scenario{name: "one-member-one-partition", topics: topicsOf("t", 1),
		members: []scenarioMember{member("a", sub([]string{"t"}, nil, -1))}})
	add(scenario{name: "more-members-than-partitions", topics: topicsOf("t", 2),
		members: []scenarioMember{
			member("a", sub([]string{"t"}, nil, -1)), member("b", sub([]string{"t"}, nil, -1)),
			member("c", sub([]string{"t"}, tps("t:1"), 3)), member("d", sub([]string{"t"}, tps("t:0"), 3)),
		}})
	add(scenario{name: "no-members-subscribed", topics: topicsOf("t", 3),
		members: []scenarioMember{member("a", sub(nil, nil, -1)), member("b", sub(nil, nil, -1))}})
	add(scenario{name: "first-member-subscribes-nothing", topics: topicsOf("t", 3),
		members: []scenarioMember{member("a", sub(nil, nil, -1)), member("b", sub([]string{"t"}, nil, -1))}})
	add(scenario{name: "missing-topic", topics: topicsOf("t", 3),
		members: []scenarioMember{
			member("a", sub([]string{"t", "gone"}, nil, -1)), member("b", sub([]string{"gone"}, nil, -1)),
		}})
	add(scenario{name: "topic-with-zero-partitions", topics: topicsOf("t", 3, "empty", 0),
		members: []scenarioMember{member("a", sub([]string{"t", "empty"}, nil, -1)), member("b", sub([]string{"t"}, nil, -1))}})

	// Conflicting claims.
	add(scenario{name: "same-generation-conflict", topics: topicsOf("t", 4),
		members: []scenarioMember{
			member("a", sub([]string{"t"}, tps("t:0,1"), 5)),
			member("b", sub([]string{"t"}, tps("t:1,2"), 5)),
			member("c", sub([]string{"t"}, tps("t:3"), 5)),
		}})
	add(scenario{name: "three-claims-mixed-generations", topics: topicsOf("t", 3),
		members: []scenarioMember{
			member("a", sub([]string{"t"}, tps("t:0,1,2"), 4)),
			member("b", sub([]string{"t"}, tps("t:0,1"), 5)),
			member("c", sub([]string{"t"}, tps("t:0"), 5)),
		}})
	add(scenario{name: "stale-generation-loses", topics: topicsOf("t", 4),
		members: []scenarioMember{
			member("a", sub([]string{"t"}, tps("t:0,1,2,3"), 2)),
			member("b", sub([]string{"t"}, tps("t:2,3"), 3)),
		}})
	add(scenario{name: "owned-twice-by-one-member", topics: topicsOf("t", 3),
		members: []scenarioMember{
			member("a", sub([]string{"t"}, tps("t:0,0,1"), 2)),
			member("b", sub([]string{"t"}, nil, -1)),
		}})
	add(scenario{name: "owned-unsubscribed-topic", topics: topicsOf("t0", 3, "t1", 3),
		members: []scenarioMember{
			member("a", sub([]string{"t0"}, tps("t0:0,1,2 t1:0,1,2"), 2)),
			member("b", sub([]string{"t0", "t1"}, nil, 2)),
		}})

	// Old versions: the generation travels in the cooperative user data.
	old := func(id string, version int16, s Subscription, userData []byte) scenarioMember {
		s.UserData = userData
		return scenarioMember{id: id, version: version, sub: s}
	}
	add(scenario{name: "v0-v1-userdata-generations", topics: topicsOf("t", 6),
		members: []scenarioMember{
			old("a", 1, sub([]string{"t"}, tps("t:0,1,2"), -1), CooperativeStickyUserData(3)),
			old("b", 1, sub([]string{"t"}, tps("t:2,3,4,5"), -1), CooperativeStickyUserData(4)),
			old("c", 0, sub([]string{"t"}, nil, -1), nil),
		}})
	add(scenario{name: "v1-garbage-userdata", topics: topicsOf("t", 4),
		members: []scenarioMember{
			old("a", 1, sub([]string{"t"}, tps("t:0,1"), -1), []byte{1, 2}),
			old("b", 1, sub([]string{"t"}, tps("t:1,2,3"), -1), nil),
			old("c", 2, sub([]string{"t"}, tps("t:3"), 7), []byte{0, 0, 0, 9}),
		}})
	add(scenario{name: "v1-general-prev-assignment", topics: topicsOf("t0", 4, "t1", 2),
		members: []scenarioMember{
			old("a", 1, sub([]string{"t0"}, tps("t0:0,1,2,3"), -1), CooperativeStickyUserData(2)),
			old("b", 1, sub([]string{"t0", "t1"}, tps("t0:0,1 t1:0,1"), -1), CooperativeStickyUserData(1)),
			old("c", 1, sub([]string{"t0", "t1"}, nil, -1), nil),
		}})

	// Static members sort before dynamic ones (range, roundrobin).
	static := func(id, instance string, s Subscription) scenarioMember {
		m := member(id, s)
		m.instance = instance
		return m
	}
	add(scenario{name: "static-members", topics: topicsOf("t0", 5, "t1", 4),
		members: []scenarioMember{
			member("a", sub([]string{"t0", "t1"}, nil, -1)),
			static("z", "i2", sub([]string{"t0", "t1"}, nil, -1)),
			static("y", "i1", sub([]string{"t0", "t1"}, nil, -1)),
			member("b", sub([]string{"t0"}, nil, -1)),
		}})

	// Racks.
	rackMember := func(id, rack string, s Subscription) scenarioMember {
		s.RackID = rack
		return member(id, s)
	}
	// rackAll: every partition on all the racks; alternating: partition p
	// on rack p%3 of ra, rb, rc.
	rackAll := func(n int, racks ...string) []string {
		out := make([]string, n)
		for p := range out {
			out[p] = strings.Join(racks, ",")
		}
		return out
	}
	alternating := func(n int) []string {
		out := make([]string, n)
		for p := range out {
			out[p] = []string{"ra", "rb", "rc"}[p%3]
		}
		return out
	}
	add(scenario{name: "racks-everywhere-no-rack-logic", topics: topicsOf("t", 6),
		racks: oracleRacks{"t": rackAll(6, "ra", "rb")},
		members: []scenarioMember{
			rackMember("a", "ra", sub([]string{"t"}, nil, -1)), rackMember("b", "rb", sub([]string{"t"}, nil, -1)),
		}})
	add(scenario{name: "racks-aligned", topics: topicsOf("t0", 7, "t1", 5),
		racks: oracleRacks{"t0": alternating(7), "t1": alternating(5)},
		members: []scenarioMember{
			rackMember("a", "ra", sub([]string{"t0", "t1"}, nil, -1)),
			rackMember("b", "rb", sub([]string{"t0", "t1"}, nil, -1)),
			rackMember("c", "rc", sub([]string{"t0", "t1"}, nil, -1)),
			member("d", sub([]string{"t0", "t1"}, nil, -1)),
		}})
	add(scenario{name: "racks-co-partitioned", topics: topicsOf("t0", 6, "t1", 6, "t2", 3),
		racks: oracleRacks{"t0": alternating(6), "t1": alternating(6), "t2": alternating(3)},
		members: []scenarioMember{
			rackMember("a", "rb", sub(all3, tps("t0:0,1"), 2)),
			rackMember("b", "ra", sub(all3, tps("t0:2 t1:0,1"), 2)),
			rackMember("c", "rc", sub([]string{"t0", "t1"}, nil, -1)),
		}})
	add(scenario{name: "racks-disjoint", topics: topicsOf("t", 4),
		racks: oracleRacks{"t": alternating(4)},
		members: []scenarioMember{
			rackMember("a", "rx", sub([]string{"t"}, nil, -1)), rackMember("b", "ry", sub([]string{"t"}, nil, -1)),
		}})
	add(scenario{name: "racks-owned-on-wrong-rack", topics: topicsOf("t", 6),
		racks: oracleRacks{"t": alternating(6)},
		members: []scenarioMember{
			rackMember("a", "ra", sub([]string{"t"}, tps("t:0,1,2,3"), 4)),
			rackMember("b", "rb", sub([]string{"t"}, tps("t:4,5"), 4)),
			rackMember("c", "rc", sub([]string{"t"}, nil, -1)),
		}})
	add(scenario{name: "racks-general-builder", topics: topicsOf("t0", 6, "t1", 3),
		racks: oracleRacks{"t0": alternating(6), "t1": alternating(3)},
		members: []scenarioMember{
			rackMember("a", "ra", sub([]string{"t0"}, tps("t0:0,1,2,3,4,5"), 4)),
			rackMember("b", "rb", sub([]string{"t0", "t1"}, nil, -1)),
			rackMember("c", "rc", sub([]string{"t0", "t1"}, tps("t1:0"), 4)),
		}})

	// IDs: non-ASCII member IDs (UTF-16 order and hashes), IDs whose
	// hashes share a bucket, topics with odd names.
	add(scenario{name: "unicode-member-ids", topics: topicsOf("t", 9),
		members: []scenarioMember{
			member("\uFB01-ligature", sub([]string{"t"}, nil, -1)),
			member("\U0001F600-emoji", sub([]string{"t"}, nil, -1)),
			member("é-accent", sub([]string{"t"}, nil, -1)),
			member("plain", sub([]string{"t"}, nil, -1)),
		}})
	add(scenario{name: "colliding-hash-buckets", topics: topicsOf("t", 10),
		members: []scenarioMember{
			// "Aa" and "BB" have the same String.hashCode; so do the rest.
			member("AaAa", sub([]string{"t"}, tps("t:0,1,2,3,4"), 1)),
			member("BBBB", sub([]string{"t"}, tps("t:5,6,7,8,9"), 1)),
			member("AaBB", sub([]string{"t"}, nil, -1)),
			member("BBAa", sub([]string{"t"}, nil, -1)),
		}})
	add(scenario{name: "topic-listed-twice", topics: topicsOf("t0", 4, "t1", 2),
		members: []scenarioMember{
			member("a", sub([]string{"t0", "t0", "t1"}, nil, -1)),
			member("b", sub([]string{"t0", "t1"}, nil, -1)),
		}})
	add(scenario{name: "negative-generation-on-wire", topics: topicsOf("t", 4),
		members: []scenarioMember{
			member("a", sub([]string{"t"}, tps("t:0,1"), -7)),
			member("b", sub([]string{"t"}, tps("t:1,2"), -1)),
		}})
	add(scenario{name: "owned-partition-beyond-count", topics: topicsOf("t0", 3, "t1", 2),
		members: []scenarioMember{
			member("a", sub([]string{"t0", "t1"}, tps("t0:0,7"), 2)),
			member("b", sub([]string{"t0", "t1"}, tps("t1:1"), 2)),
		}})
	add(scenario{name: "owned-partition-beyond-count-general", topics: topicsOf("t0", 3, "t1", 2),
		members: []scenarioMember{
			member("a", sub([]string{"t0"}, tps("t0:0,7"), 2)),
			member("b", sub([]string{"t0", "t1"}, tps("t1:1"), 2)),
		}})
	return out
}
