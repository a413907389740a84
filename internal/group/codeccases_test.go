package group

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"unicode/utf8"
)

// Codec cases for comparing the Go codec with Java's ConsumerProtocol:
// encodings of subscriptions and assignments, and decodings of valid,
// newer-version, truncated and corrupted bytes.

func strPtr(s string) *string { return &s }

// subscriptionRequest asks the oracle to encode s at version.
func subscriptionRequest(name string, s Subscription, version int16) codecRequest {
	r := codecRequest{Op: "encodeSubscription", Name: name, Version: version, Topics: s.Topics,
		UserData: s.UserData, Owned: toJSONTPs(s.OwnedPartitions), Generation: s.GenerationID}
	if r.Topics == nil {
		r.Topics = []string{}
	}
	if s.RackID != "" {
		r.Rack = strPtr(s.RackID)
	}
	return r
}

func assignmentRequest(name string, a Assignment, version int16) codecRequest {
	return codecRequest{Op: "encodeAssignment", Name: name, Version: version,
		Partitions: toJSONTPs(a.Partitions), UserData: a.UserData}
}

func decodeRequest(op, name string, b []byte) codecRequest {
	return codecRequest{Op: op, Name: name, Bytes: b}
}

func randomSubscription(rng *rand.Rand) Subscription {
	s := Subscription{GenerationID: NoGeneration}
	names := randomTopicNames(rng, rng.IntN(5))
	if rng.IntN(8) == 0 {
		names = append(names, "ünïcödé-"+fmt.Sprint(rng.IntN(9)), "\U0001F600") // sort order differs from Go's
	}
	s.Topics = names
	switch rng.IntN(3) {
	case 0:
	case 1:
		s.UserData = []byte{}
	default:
		s.UserData = randomBytes(rng, 1+rng.IntN(20))
	}
	for range rng.IntN(12) {
		t := "extra"
		if len(names) > 0 && rng.IntN(4) > 0 {
			t = names[rng.IntN(len(names))]
		}
		s.OwnedPartitions = append(s.OwnedPartitions, TopicPartition{Topic: t, Partition: int32(rng.IntN(40))})
	}
	if rng.IntN(3) > 0 {
		s.GenerationID = int32(rng.IntN(1000))
	}
	if rng.IntN(2) == 0 {
		s.RackID = []string{"rack-a", "us-east-1b", "r"}[rng.IntN(3)]
	}
	return s
}

func randomAssignment(rng *rand.Rand) Assignment {
	var a Assignment
	names := randomTopicNames(rng, 1+rng.IntN(4))
	for range rng.IntN(15) {
		a.Partitions = append(a.Partitions, TopicPartition{Topic: names[rng.IntN(len(names))], Partition: int32(rng.IntN(40))})
	}
	if rng.IntN(2) == 0 {
		a.UserData = randomBytes(rng, rng.IntN(10))
	}
	return a
}

// corruptions derives undecodable or odd byte strings from a valid encoding:
// every truncation, newer versions with trailing bytes, a negative version,
// and random byte flips.
func corruptions(rng *rand.Rand, b []byte) [][]byte {
	var out [][]byte
	for n := 0; n < len(b); n++ {
		out = append(out, slices.Clone(b[:n]))
	}
	for _, v := range []int16{4, 9, 0x7fff} {
		newer := binary.BigEndian.AppendUint16(nil, uint16(v))
		newer = append(newer, b[2:]...)
		out = append(out, newer, append(slices.Clone(newer), 0, 0, 0, 1, 0xff))
	}
	out = append(out, append(binary.BigEndian.AppendUint16(nil, 0xffff), b[2:]...))
	for range 8 {
		c := slices.Clone(b)
		if len(c) > 2 {
			c[2+rng.IntN(len(c)-2)] ^= byte(1 + rng.IntN(255))
		}
		out = append(out, c)
	}
	return out
}

// codecCases returns the codec requests: hand-written ones, then n random
// subscriptions and assignments with their encodings at every version and
// corruptions of those.
func codecCases(rng *rand.Rand, n int) []codecRequest {
	var out []codecRequest
	// The Java member's first subscription, and one with everything set.
	first := Subscription{Topics: []string{"orders"}, UserData: CooperativeStickyUserData(NoGeneration), GenerationID: NoGeneration}
	full := Subscription{Topics: []string{"b", "a", "c"}, UserData: []byte{1, 2, 3},
		OwnedPartitions: tps("c:2 a:1,0 b:5"), GenerationID: 42, RackID: "rack-1"}
	for v := int16(0); v <= MaxVersion; v++ {
		out = append(out, subscriptionRequest(fmt.Sprintf("first-v%d", v), first, v))
		out = append(out, subscriptionRequest(fmt.Sprintf("full-v%d", v), full, v))
		out = append(out, subscriptionRequest(fmt.Sprintf("empty-v%d", v), Subscription{GenerationID: NoGeneration}, v))
		out = append(out, assignmentRequest(fmt.Sprintf("interleaved-v%d", v),
			Assignment{Partitions: tps("b:1 a:0 b:0 a:3"), UserData: []byte{}}, v))
	}
	// kafka-go's subscription: version 1 without the owned partitions field.
	kafkaGo := []byte{0, 1, 0, 0, 0, 1, 0, 6, 'o', 'r', 'd', 'e', 'r', 's', 0xff, 0xff, 0xff, 0xff}
	out = append(out, decodeRequest("decodeSubscription", "kafka-go-v1", kafkaGo))
	// A null topics array, a null topic, an empty rack, a huge array length.
	out = append(out,
		decodeRequest("decodeSubscription", "null-topics", []byte{0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
		decodeRequest("decodeSubscription", "null-topic", []byte{0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
		decodeRequest("decodeSubscription", "empty-rack", []byte{0, 3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}),
		decodeRequest("decodeSubscription", "huge-array", []byte{0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0}),
		decodeRequest("decodeAssignment", "null-partitions", []byte{0, 0, 0, 0, 0, 1, 0, 1, 't', 0xff, 0xff, 0xff, 0xff}),
		decodeRequest("decodeAssignment", "empty", nil),
	)

	for i := range n {
		s := randomSubscription(rng)
		a := randomAssignment(rng)
		for v := int16(0); v <= MaxVersion; v++ {
			out = append(out, subscriptionRequest(fmt.Sprintf("random-%d-v%d", i, v), s, v))
			out = append(out, assignmentRequest(fmt.Sprintf("random-%d-v%d", i, v), a, v))
		}
		v := int16(rng.IntN(4))
		sb, err := EncodeSubscription(s, v)
		if err != nil {
			panic(err)
		}
		ab, err := EncodeAssignment(a, v)
		if err != nil {
			panic(err)
		}
		out = append(out, decodeRequest("decodeSubscription", fmt.Sprintf("random-%d", i), sb))
		out = append(out, decodeRequest("decodeAssignment", fmt.Sprintf("random-%d", i), ab))
		if i%4 == 0 {
			for j, c := range corruptions(rng, sb) {
				out = append(out, decodeRequest("decodeSubscription", fmt.Sprintf("random-%d-corrupt-%d", i, j), c))
			}
			for j, c := range corruptions(rng, ab) {
				out = append(out, decodeRequest("decodeAssignment", fmt.Sprintf("random-%d-corrupt-%d", i, j), c))
			}
		}
	}
	return out
}

// runGoCodec performs the request with the Go codec, shaped like the oracle's answer.
func (r *codecRequest) runGo() codecResponse {
	switch r.Op {
	case "encodeSubscription":
		s := Subscription{Topics: r.Topics, UserData: r.UserData, OwnedPartitions: fromJSONTPs(r.Owned), GenerationID: r.Generation}
		if r.Rack != nil {
			s.RackID = *r.Rack
		}
		b, err := EncodeSubscription(s, r.Version)
		if err != nil {
			return codecResponse{Error: err.Error()}
		}
		return codecResponse{Bytes: b}
	case "encodeAssignment":
		b, err := EncodeAssignment(Assignment{Partitions: fromJSONTPs(r.Partitions), UserData: r.UserData}, r.Version)
		if err != nil {
			return codecResponse{Error: err.Error()}
		}
		return codecResponse{Bytes: b}
	case "decodeSubscription":
		s, v, err := DecodeSubscription(r.Bytes)
		if err != nil {
			return codecResponse{Error: err.Error()}
		}
		resp := codecResponse{Version: v, Topics: s.Topics, UserData: s.UserData, Owned: toJSONTPs(s.OwnedPartitions), Generation: s.GenerationID}
		if s.RackID != "" {
			resp.Rack = strPtr(s.RackID)
		}
		return resp
	case "decodeAssignment":
		a, v, err := DecodeAssignment(r.Bytes)
		if err != nil {
			return codecResponse{Error: err.Error()}
		}
		return codecResponse{Version: v, Partitions: toJSONTPs(a.Partitions), UserData: a.UserData}
	}
	return codecResponse{Error: "unknown op " + r.Op}
}

// diffCodec describes how the Go result differs from Java's, or returns "".
// Strings that are not valid UTF-8 (from corrupted bytes) are compared only
// by presence: Java decodes them with replacement characters.
func diffCodec(java, got codecResponse) string {
	if (java.Error != "") != (got.Error != "") {
		return fmt.Sprintf("java error %q, go error %q", java.Error, got.Error)
	}
	if java.Error != "" {
		return ""
	}
	if !bytes.Equal(java.Bytes, got.Bytes) {
		return fmt.Sprintf("bytes\n java %x\n go   %x", java.Bytes, got.Bytes)
	}
	if java.Version != got.Version || java.Generation != got.Generation {
		return fmt.Sprintf("version/generation: java %d/%d, go %d/%d", java.Version, java.Generation, got.Version, got.Generation)
	}
	if (java.UserData == nil) != (got.UserData == nil) || !bytes.Equal(java.UserData, got.UserData) {
		return fmt.Sprintf("user data: java %x (nil %t), go %x (nil %t)", java.UserData, java.UserData == nil, got.UserData, got.UserData == nil)
	}
	if (java.Rack == nil) != (got.Rack == nil) || (java.Rack != nil && !sameText(*java.Rack, *got.Rack)) {
		return fmt.Sprintf("rack: java %v, go %v", java.Rack, got.Rack)
	}
	if !slices.EqualFunc(java.Topics, got.Topics, sameText) {
		return fmt.Sprintf("topics: java %q, go %q", java.Topics, got.Topics)
	}
	sameTP := func(a, b jsonTP) bool { return a.Partition == b.Partition && sameText(a.Topic, b.Topic) }
	if !slices.EqualFunc(java.Owned, got.Owned, sameTP) || !slices.EqualFunc(java.Partitions, got.Partitions, sameTP) {
		return fmt.Sprintf("partitions: java %v %v, go %v %v", java.Owned, java.Partitions, got.Owned, got.Partitions)
	}
	return ""
}

func sameText(java, got string) bool {
	if !utf8.ValidString(got) {
		return true
	}
	return java == got
}
