package group

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// Assignment scenarios for comparing the Go assignors with Java's: a group
// as its leader sees it (members in JoinGroup order with their encoded
// subscriptions, topic partition counts, replica racks).

type scenarioMember struct {
	id, instance string
	version      int16
	sub          Subscription
}

type scenario struct {
	name    string
	members []scenarioMember
	topics  []oracleTopic
	racks   oracleRacks
	golden  bool // recorded in the golden file
}

var assignorNames = []string{"range", "roundrobin", "cooperative-sticky"}

// requests encodes the scenario once per assignor.
func (s scenario) requests() ([]assignRequest, error) {
	members := make([]oracleMember, 0, len(s.members))
	for _, m := range s.members {
		b, err := EncodeSubscription(m.sub, m.version)
		if err != nil {
			return nil, fmt.Errorf("%s: member %s: %w", s.name, m.id, err)
		}
		om := oracleMember{ID: m.id, Metadata: b}
		if m.instance != "" {
			inst := m.instance
			om.Instance = &inst
		}
		members = append(members, om)
	}
	out := make([]assignRequest, 0, len(assignorNames))
	for _, a := range assignorNames {
		out = append(out, assignRequest{Op: "assign", Name: s.name, Assignor: a, Members: members, Topics: s.topics, Racks: s.racks})
	}
	return out, nil
}

func (s scenario) metadata() Metadata {
	r := assignRequest{Topics: s.topics, Racks: s.racks}
	return r.metadata()
}

// groupMembers returns the members as a Go leader decodes them.
func (s scenario) groupMembers() []Member {
	out := make([]Member, 0, len(s.members))
	for _, m := range s.members {
		b, err := EncodeSubscription(m.sub, m.version)
		if err != nil {
			panic(err)
		}
		sub, _, err := DecodeSubscription(b)
		if err != nil {
			panic(err)
		}
		out = append(out, Member{ID: m.id, InstanceID: m.instance, Subscription: sub})
	}
	return out
}

// randomScenario generates one scenario: 1–10 members, 1–5 topics of 1–50
// partitions, random subscriptions (identical or not), random versions, and
// often previous ownership with conflicting claims and mixed generations,
// member racks and replica racks.
func randomScenario(rng *rand.Rand, name string) scenario {
	return randomScenarioSized(rng, name, 10, 5, 50)
}

// randomScenarioSized is randomScenario with up to maxMembers members and
// maxTopics topics of up to maxPartitions partitions.
func randomScenarioSized(rng *rand.Rand, name string, maxMembers, maxTopics, maxPartitions int) scenario {
	s := scenario{name: name}
	topicNames := randomTopicNames(rng, 1+rng.IntN(maxTopics))
	for _, t := range topicNames {
		s.topics = append(s.topics, oracleTopic{Name: t, Partitions: int32(1 + rng.IntN(maxPartitions))})
	}
	subscribable := slices.Clone(topicNames)
	if rng.IntN(10) == 0 {
		subscribable = append(subscribable, "missing-topic") // subscribed, not in metadata
	}

	n := 1 + rng.IntN(maxMembers)
	ids := randomMemberIDs(rng, n)
	static := rng.IntN(4) == 0
	sameSubscription := rng.IntN(2) == 0
	common := randomSubset(rng, subscribable, false)
	versionMode := rng.IntN(3) // 0: all v3, 1: all the same random version, 2: mixed
	sameVersion := int16(rng.IntN(4))
	for i, id := range ids {
		m := scenarioMember{id: id, version: MaxVersion}
		switch versionMode {
		case 1:
			m.version = sameVersion
		case 2:
			m.version = int16(rng.IntN(4))
		}
		if static && rng.IntN(2) == 0 {
			m.instance = fmt.Sprintf("instance-%d", rng.IntN(1000)*16+i) // unique
		}
		if sameSubscription {
			m.sub.Topics = slices.Clone(common)
		} else {
			m.sub.Topics = randomSubset(rng, subscribable, rng.IntN(20) == 0)
		}
		m.sub.GenerationID = NoGeneration
		s.members = append(s.members, m)
	}

	if rng.IntN(10) < 7 {
		randomOwnership(rng, &s)
	}
	if rng.IntN(4) == 0 {
		randomRacks(rng, &s)
	}
	return s
}

// randomOwnership gives members previously owned partitions: most partitions
// owned by one member (not always a subscriber: subscriptions change), some
// claimed twice, generations mostly current, some stale or absent, and for
// versions without a generation field the cooperative user data.
func randomOwnership(rng *rand.Rand, s *scenario) {
	current := int32(1 + rng.IntN(20))
	gens := make([]int32, len(s.members))
	for i := range gens {
		switch r := rng.IntN(10); {
		case r < 6:
			gens[i] = current
		case r < 8:
			gens[i] = current - 1
		case r < 9:
			gens[i] = max(current-2-int32(rng.IntN(3)), 0)
		default:
			gens[i] = NoGeneration
		}
	}
	ownedShare := 0.3 + 0.7*rng.Float64()
	conflictRate := []float64{0, 0.05, 0.2}[rng.IntN(3)]
	for _, t := range s.topics {
		for p := range t.Partitions {
			if rng.Float64() >= ownedShare {
				continue
			}
			tp := TopicPartition{Topic: t.Name, Partition: p}
			i := rng.IntN(len(s.members))
			s.members[i].sub.OwnedPartitions = append(s.members[i].sub.OwnedPartitions, tp)
			if rng.Float64() < conflictRate && len(s.members) > 1 {
				j := rng.IntN(len(s.members))
				s.members[j].sub.OwnedPartitions = append(s.members[j].sub.OwnedPartitions, tp)
			}
		}
	}
	if rng.IntN(20) == 0 {
		m := &s.members[rng.IntN(len(s.members))]
		m.sub.OwnedPartitions = append(m.sub.OwnedPartitions, TopicPartition{Topic: "gone-topic", Partition: 0})
	}
	for i := range s.members {
		m := &s.members[i]
		rng.Shuffle(len(m.sub.OwnedPartitions), func(a, b int) {
			m.sub.OwnedPartitions[a], m.sub.OwnedPartitions[b] = m.sub.OwnedPartitions[b], m.sub.OwnedPartitions[a]
		})
		m.sub.GenerationID = gens[i]
		switch r := rng.IntN(10); {
		case r < 7:
			m.sub.UserData = CooperativeStickyUserData(gens[i])
		case r < 8:
			m.sub.UserData = nil
		default:
			m.sub.UserData = randomBytes(rng, rng.IntN(7))
		}
	}
}

// randomRacks places members (version 3 carries their rack) and partition
// replicas on 1–3 racks.
func randomRacks(rng *rand.Rand, s *scenario) {
	racks := []string{"rack-a", "rack-b", "rack-c"}[:1+rng.IntN(3)]
	for i := range s.members {
		if rng.IntN(5) > 0 {
			s.members[i].sub.RackID = racks[rng.IntN(len(racks))]
		}
	}
	allOnAll := rng.IntN(4) == 0
	s.racks = oracleRacks{}
	for _, t := range s.topics {
		perPartition := make([]string, t.Partitions)
		for p := range perPartition {
			var rs []string
			switch {
			case allOnAll:
				rs = slices.Clone(racks)
			case rng.IntN(10) == 0:
				// no rack known
			default:
				for range 1 + rng.IntN(3) {
					rs = append(rs, racks[rng.IntN(len(racks))])
				}
			}
			perPartition[p] = strings.Join(rs, ",")
		}
		s.racks[t.Name] = perPartition
	}
}

// chainScenario runs a few rebalances of a group with the Go cooperative
// assignor (members owning what they were assigned, generations counting
// up, members joining and leaving) and returns the group's state before the
// next rebalance: the realistic input of a cooperative leader.
func chainScenario(rng *rand.Rand, name string) scenario {
	return chainScenarioSized(rng, name, 10, 5, 50)
}

func chainScenarioSized(rng *rand.Rand, name string, maxMembers, maxTopics, maxPartitions int) scenario {
	s := randomScenarioSized(rng, name, maxMembers, maxTopics, maxPartitions)
	for i := range s.members {
		s.members[i].version = MaxVersion
		s.members[i].sub.OwnedPartitions = nil
		s.members[i].sub.GenerationID = NoGeneration
		s.members[i].sub.UserData = CooperativeStickyUserData(NoGeneration)
	}
	for gen := int32(1); gen <= int32(1+rng.IntN(4)); gen++ {
		result, err := CooperativeSticky().Assign(s.groupMembers(), s.metadata())
		if err != nil {
			return s
		}
		for i := range s.members {
			m := &s.members[i]
			m.sub.OwnedPartitions = slices.Clone(result[m.id].Partitions)
			m.sub.GenerationID = gen
			m.sub.UserData = CooperativeStickyUserData(gen)
		}
		switch r := rng.IntN(4); {
		case r == 0 && len(s.members) > 1:
			i := rng.IntN(len(s.members))
			s.members = slices.Delete(s.members, i, i+1)
		case r == 1 && len(s.members) < maxMembers:
			id := randomMemberIDs(rng, 1)[0]
			if slices.ContainsFunc(s.members, func(m scenarioMember) bool { return m.id == id }) {
				continue
			}
			joiner := scenarioMember{id: id, version: MaxVersion}
			joiner.sub.Topics = slices.Clone(s.members[rng.IntN(len(s.members))].sub.Topics)
			joiner.sub.GenerationID = NoGeneration
			joiner.sub.UserData = CooperativeStickyUserData(NoGeneration)
			at := rng.IntN(len(s.members) + 1)
			s.members = slices.Insert(s.members, at, joiner)
		case r == 2 && len(s.members) > 1:
			// One member missed a generation: it reports an older one.
			s.members[rng.IntN(len(s.members))].sub.GenerationID = gen - 1
		}
	}
	return s
}

func randomTopicNames(rng *rand.Rand, n int) []string {
	names := make([]string, 0, n)
	style := rng.IntN(3)
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
	for len(names) < n {
		var name string
		switch style {
		case 0:
			name = fmt.Sprintf("topic-%d", rng.IntN(100))
		case 1:
			name = fmt.Sprintf("t%d", rng.IntN(20))
		default:
			b := make([]byte, 1+rng.IntN(12))
			for i := range b {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
			name = string(b)
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// randomMemberIDs returns distinct IDs shaped like the broker's
// (client.id-UUID) or short ones.
func randomMemberIDs(rng *rand.Rand, n int) []string {
	ids := make([]string, 0, n)
	style := rng.IntN(3)
	for len(ids) < n {
		var id string
		switch style {
		case 0:
			id = fmt.Sprintf("consumer-group-%d-%08x-%04x-%04x-%04x-%012x", 1+rng.IntN(3),
				rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<16), rng.IntN(1<<16), rng.Uint64()&(1<<48-1))
		case 1:
			id = fmt.Sprintf("m%d", rng.IntN(max(30, 4*n)))
		default:
			id = fmt.Sprintf("mq-%x", rng.Uint32()&0xfffff)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// randomSubset returns a random subset of topics in random order, never
// empty unless allowEmpty.
func randomSubset(rng *rand.Rand, topics []string, allowEmpty bool) []string {
	var out []string
	for _, t := range topics {
		if rng.IntN(3) > 0 {
			out = append(out, t)
		}
	}
	if len(out) == 0 && !allowEmpty {
		out = append(out, topics[rng.IntN(len(topics))])
	}
	rng.Shuffle(len(out), func(a, b int) { out[a], out[b] = out[b], out[a] })
	return out
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}
