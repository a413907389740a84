package group

import (
	"bytes"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	var digits strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "#")
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The bytes Java's ConsumerProtocol.serializeSubscription writes for this
// subscription at version 3 (kafka-clients 4.4.0).
func TestEncodeSubscriptionJavaLayout(t *testing.T) {
	s := Subscription{
		Topics:          []string{"b", "a"},
		OwnedPartitions: tps("b:1 a:2,0"),
		GenerationID:    5,
		RackID:          "r1",
	}
	want := mustHex(t, `
		0003                          # version 3
		00000002 0001 61 0001 62      # topics [a b], sorted
		ffffffff                      # user data null
		00000002                      # owned partitions: 2 topics, sorted
		  0001 61 00000002 00000000 00000002   # a [0 2]
		  0001 62 00000001 00000001            # b [1]
		00000005                      # generation
		0002 7231                     # rack "r1"`)
	got, err := EncodeSubscription(s, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
}

// Each version writes exactly its fields: the version a decoder reads is
// the layout it finds.
func TestEncodeSubscriptionVersions(t *testing.T) {
	s := Subscription{Topics: []string{"t"}, UserData: []byte{7}, OwnedPartitions: tps("t:3"), GenerationID: 9, RackID: "r"}
	want := map[int16]string{
		0: "0000 00000001 000174 00000001 07",
		1: "0001 00000001 000174 00000001 07 00000001 000174 00000001 00000003",
		2: "0002 00000001 000174 00000001 07 00000001 000174 00000001 00000003 00000009",
		3: "0003 00000001 000174 00000001 07 00000001 000174 00000001 00000003 00000009 000172",
	}
	for v := int16(0); v <= MaxVersion; v++ {
		got, err := EncodeSubscription(s, v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, mustHex(t, want[v])) {
			t.Errorf("v%d: got %x, want %s", v, got, want[v])
		}
		back, version, err := DecodeSubscription(got)
		if err != nil || version != v {
			t.Fatalf("v%d: decode: version %d, %v", v, version, err)
		}
		if (v >= 1) != (len(back.OwnedPartitions) == 1) || (v >= 2) != (back.GenerationID == 9) || (v >= 3) != (back.RackID == "r") {
			t.Errorf("v%d: decoded %+v", v, back)
		}
	}
	for _, v := range []int16{-1, 4} {
		if _, err := EncodeSubscription(s, v); !errors.Is(err, ErrVersion) {
			t.Errorf("version %d: err %v, want ErrVersion", v, err)
		}
		if _, err := EncodeAssignment(Assignment{}, v); !errors.Is(err, ErrVersion) {
			t.Errorf("assignment version %d: err %v, want ErrVersion", v, err)
		}
	}
}

// kafka-go's protocol/consumer labels its subscription version 1 but leaves
// out the owned partitions: Java rejects it ("Malformed consumer protocol
// subscription") and so does DecodeSubscription.
func TestDecodeKafkaGoSubscriptionRejected(t *testing.T) {
	kafkaGo := mustHex(t, "0001 00000001 0006 6f7264657273 ffffffff")
	if _, _, err := DecodeSubscription(kafkaGo); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err %v, want ErrMalformed", err)
	}
}

// A newer version is read with the version-3 layout, trailing fields ignored.
func TestDecodeNewerVersions(t *testing.T) {
	s := Subscription{Topics: []string{"t"}, OwnedPartitions: tps("t:1"), GenerationID: 4, RackID: "r"}
	b, err := EncodeSubscription(s, 3)
	if err != nil {
		t.Fatal(err)
	}
	newer := append([]byte{0, 7}, b[2:]...)
	newer = append(newer, 0xde, 0xad, 0xbe, 0xef) // a field of version 7
	got, version, err := DecodeSubscription(newer)
	if err != nil {
		t.Fatal(err)
	}
	if version != 7 || got.RackID != "r" || got.GenerationID != 4 || !slices.Equal(got.OwnedPartitions, s.OwnedPartitions) {
		t.Fatalf("version %d, %+v", version, got)
	}

	a, err := EncodeAssignment(Assignment{Partitions: tps("t:0")}, 3)
	if err != nil {
		t.Fatal(err)
	}
	newerA := append([]byte{0, 5}, a[2:]...)
	newerA = append(newerA, 1, 2, 3)
	gotA, version, err := DecodeAssignment(newerA)
	if err != nil || version != 5 || !slices.Equal(gotA.Partitions, tps("t:0")) {
		t.Fatalf("assignment: version %d, %+v, %v", version, gotA, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	for name, hexBytes := range map[string]string{
		"empty":               "",
		"half version":        "00",
		"negative version":    "ffff 00000000 ffffffff",
		"null topics":         "0000 ffffffff ffffffff",
		"null topic":          "0000 00000001 ffff ffffffff",
		"topics beyond input": "0000 00000003 000174 ffffffff",
		"truncated user data": "0000 00000000 00000005 0102",
		"v1 missing owned":    "0001 00000000 ffffffff",
		"v2 missing gen":      "0002 00000000 ffffffff 00000000",
		"v3 missing rack":     "0003 00000000 ffffffff 00000000 00000001",
		"null partitions":     "0001 00000000 ffffffff 00000001 000174 ffffffff",
		"short partitions":    "0001 00000000 ffffffff 00000001 000174 00000002 00000001",
	} {
		if _, _, err := DecodeSubscription(mustHex(t, hexBytes)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
	for name, hexBytes := range map[string]string{
		"empty":            "",
		"negative version": "8000 00000000 ffffffff",
		"null partitions":  "0000 ffffffff ffffffff",
		"missing userdata": "0000 00000000",
	} {
		if _, _, err := DecodeAssignment(mustHex(t, hexBytes)); !errors.Is(err, ErrMalformed) {
			t.Errorf("assignment %s: err %v, want ErrMalformed", name, err)
		}
	}
}

// Null and empty user data and racks: Java keeps null and empty user data
// apart, and treats an empty rack as none.
func TestNullAndEmpty(t *testing.T) {
	for _, ud := range [][]byte{nil, {}} {
		b, err := EncodeSubscription(Subscription{UserData: ud, GenerationID: NoGeneration}, 3)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := DecodeSubscription(b)
		if err != nil {
			t.Fatal(err)
		}
		if (got.UserData == nil) != (ud == nil) || got.RackID != "" || got.GenerationID != NoGeneration {
			t.Errorf("user data %v: decoded %+v", ud, got)
		}
		if got.Topics == nil || len(got.Topics) != 0 {
			t.Errorf("topics %#v, want empty", got.Topics)
		}
	}
	emptyRack := mustHex(t, "0003 00000000 ffffffff 00000000 00000001 0000")
	if got, _, err := DecodeSubscription(emptyRack); err != nil || got.RackID != "" {
		t.Fatalf("empty rack: %+v, %v", got, err)
	}
	negativeGeneration := mustHex(t, "0002 00000000 ffffffff 00000000 fffffff9")
	if got, _, err := DecodeSubscription(negativeGeneration); err != nil || got.GenerationID != NoGeneration {
		t.Fatalf("negative generation: %+v, %v", got, err)
	}
}

// The assignment groups partitions by topic in order of first appearance,
// as Java's encoder does (it finds the topic's entry by name).
func TestEncodeAssignmentGroupsByTopic(t *testing.T) {
	a := Assignment{Partitions: tps("b:1 a:0 b:0 a:3"), UserData: []byte{}}
	want := mustHex(t, `0003 00000002
		0001 62 00000002 00000001 00000000
		0001 61 00000002 00000000 00000003
		00000000`)
	got, err := EncodeAssignment(a, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
	back, _, err := DecodeAssignment(got)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Partitions, tps("b:1,0 a:0,3")) || back.UserData == nil {
		t.Fatalf("decoded %+v", back)
	}
}

func TestEncodeRejectsLongStrings(t *testing.T) {
	long := strings.Repeat("x", 1<<15)
	if _, err := EncodeSubscription(Subscription{Topics: []string{long}}, 0); err == nil {
		t.Error("topic of 32768 bytes encoded")
	}
	if _, err := EncodeSubscription(Subscription{RackID: long}, 3); err == nil {
		t.Error("rack of 32768 bytes encoded")
	}
	if _, err := EncodeAssignment(Assignment{Partitions: []TopicPartition{{Topic: long}}}, 0); err == nil {
		t.Error("assigned topic of 32768 bytes encoded")
	}
	if _, err := EncodeSubscription(Subscription{Topics: []string{long[1:]}}, 0); err != nil {
		t.Errorf("topic of 32767 bytes: %v", err)
	}
}

// Decoded user data does not alias the input.
func TestDecodeCopiesUserData(t *testing.T) {
	b, err := EncodeAssignment(Assignment{UserData: []byte{1, 2, 3}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := DecodeAssignment(b)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] = 9
	if !bytes.Equal(a.UserData, []byte{1, 2, 3}) {
		t.Fatalf("user data changed with the input: %v", a.UserData)
	}
}
