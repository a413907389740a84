package group

import (
	"errors"
	"slices"
	"testing"
)

// The decoders never panic; whatever they accept re-encodes (at the version
// read, capped at MaxVersion) to bytes that decode to the same value, up to
// the order Java's encoders impose. Seeds: testdata/fuzz and the f.Add calls.

func FuzzDecodeSubscription(f *testing.F) {
	for _, s := range []Subscription{
		{Topics: []string{"orders"}, UserData: CooperativeStickyUserData(NoGeneration), GenerationID: NoGeneration},
		{Topics: []string{"b", "a"}, UserData: []byte{}, OwnedPartitions: tps("b:1 a:2,0"), GenerationID: 5, RackID: "r1"},
	} {
		for v := int16(0); v <= MaxVersion; v++ {
			b, err := EncodeSubscription(s, v)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, version, err := DecodeSubscription(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if version < 0 {
			t.Fatalf("accepted negative version %d", version)
		}
		v := min(version, MaxVersion)
		again, err := EncodeSubscription(s, v)
		if err != nil {
			t.Fatalf("re-encode %+v at v%d: %v", s, v, err)
		}
		back, backVersion, err := DecodeSubscription(again)
		if err != nil || backVersion != v {
			t.Fatalf("decode of re-encoded bytes: version %d, %v", backVersion, err)
		}
		want := s
		want.Topics = slices.Clone(s.Topics)
		slices.SortStableFunc(want.Topics, javaCompare)
		want.OwnedPartitions = slices.Clone(s.OwnedPartitions)
		slices.SortStableFunc(want.OwnedPartitions, func(a, b TopicPartition) int {
			if c := javaCompare(a.Topic, b.Topic); c != 0 {
				return c
			}
			return cmpInt32(a.Partition, b.Partition)
		})
		if !equalSubscriptions(back, want) {
			t.Fatalf("round trip\n got  %+v\n want %+v", back, want)
		}
	})
}

func FuzzDecodeAssignment(f *testing.F) {
	for _, a := range []Assignment{
		{},
		{Partitions: tps("b:1 a:0 b:0 a:3"), UserData: []byte{}},
		{Partitions: tps("t:0,1,2"), UserData: []byte{1, 2}},
	} {
		for v := int16(0); v <= MaxVersion; v++ {
			b, err := EncodeAssignment(a, v)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, version, err := DecodeAssignment(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if version < 0 {
			t.Fatalf("accepted negative version %d", version)
		}
		v := min(version, MaxVersion)
		again, err := EncodeAssignment(a, v)
		if err != nil {
			t.Fatalf("re-encode %+v at v%d: %v", a, v, err)
		}
		back, backVersion, err := DecodeAssignment(again)
		if err != nil || backVersion != v {
			t.Fatalf("decode of re-encoded bytes: version %d, %v", backVersion, err)
		}
		var want []TopicPartition // grouped by topic, in order of first appearance
		for _, g := range groupByFirstAppearance(a.Partitions) {
			for _, p := range g.partitions {
				want = append(want, TopicPartition{Topic: g.topic, Partition: p})
			}
		}
		if !slices.Equal(back.Partitions, want) || !equalBytes(back.UserData, a.UserData) {
			t.Fatalf("round trip\n got  %+v\n want %v %x", back, want, a.UserData)
		}
	})
}

func equalSubscriptions(a, b Subscription) bool {
	return slices.Equal(a.Topics, b.Topics) && equalBytes(a.UserData, b.UserData) &&
		slices.Equal(a.OwnedPartitions, b.OwnedPartitions) && a.GenerationID == b.GenerationID && a.RackID == b.RackID
}

// equalBytes compares contents and nil-ness (null and empty differ on the wire).
func equalBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && slices.Equal(a, b)
}
