package group

import (
	"fmt"
	"slices"
	"testing"
)

// Expected values printed by jshell on OpenJDK 17 with kafka-clients 4.4.0.

func TestJavaStringHash(t *testing.T) {
	for s, want := range map[string]int32{
		"":           0,
		"hello":      99162322,
		"Aa":         2112,
		"BB":         2112,
		"\U0001F600": 1772899, // a surrogate pair: two UTF-16 units
		"é-accent":   -2087586258,
	} {
		if got := javaStringHash(s); got != want {
			t.Errorf("javaStringHash(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestJavaCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"a", "b", -1},
		{"b", "a", 1},
		{"ab", "abc", -1},
		{"same", "same", 0},
		{"Z", "a", -1},
		// UTF-16 order: U+FB01 (one unit) sorts after U+1F600 (D83D DE00),
		// the reverse of Go's byte order.
		{"\uFB01", "\U0001F600", 1},
		{"x\uFB01", "x\U0001F600", 1},
		{"\U0001F600", "\U0001F601", -1},
		{"é", "z", 1},
	}
	for _, tt := range tests {
		if got := javaCompare(tt.a, tt.b); got != tt.want {
			t.Errorf("javaCompare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestJavaHashMapOrder(t *testing.T) {
	// 20 keys: the table grows to 32 buckets; m10/m11 share a bucket and
	// keep insertion order (m11 was put first).
	var keys []string
	for i := range 20 {
		keys = append(keys, fmt.Sprintf("m%d", i*7%20))
	}
	want := []string{"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "m11", "m10", "m13", "m12", "m15", "m14", "m17", "m16", "m19", "m18"}
	if got := javaStringOrder(keys); !slices.Equal(got, want) {
		t.Errorf("order\n got  %v\n want %v", got, want)
	}

	// Equal hashes land in one bucket, in insertion order.
	got := javaStringOrder([]string{"BBBB", "AaAa", "zz", "AaBB", "BBAa", "topic-3", "topic-1"})
	want = []string{"zz", "topic-1", "topic-3", "BBBB", "AaAa", "AaBB", "BBAa"}
	if !slices.Equal(got, want) {
		t.Errorf("order\n got  %v\n want %v", got, want)
	}
}

func TestJavaHashSetOfTopicPartitions(t *testing.T) {
	set := newJavaHashOrder(javaTopicPartitionHash)
	for _, p := range []int32{9, 3, 17, 4, 40} {
		set.add(TopicPartition{Topic: "orders", Partition: p})
	}
	var got []int32
	for _, tp := range set.keys() {
		got = append(got, tp.Partition)
	}
	if want := []int32{40, 9, 17, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if first, _ := set.first(); first.Partition != 40 {
		t.Errorf("first %v, want orders-40", first)
	}
	// Removing and re-adding moves a key behind the others of its bucket;
	// the table never shrinks.
	set.remove(TopicPartition{Topic: "orders", Partition: 40})
	if first, _ := set.first(); first.Partition != 9 {
		t.Errorf("first after remove %v, want orders-9", first)
	}
}
