package group

import (
	"slices"
	"unicode/utf8"
)

// Java's assignors iterate java.util.HashMap and HashSet in several places
// where the order decides the outcome (which member keeps its extra partition,
// which of two claims on a partition wins, which partition moves). To produce
// the same assignment as a Java leader, this file reproduces those orders:
// String.hashCode, TopicPartition.hashCode, String.compareTo, and the
// iteration order of a HashMap/HashSet.
//
// A HashMap iterates its table's buckets in index order and each bucket's
// entries in insertion order. A bucket is (h ^ h>>>16) & (capacity-1) of the
// key's hash h. Resizes split buckets preserving relative order and tables
// never shrink, so the order is fully determined by the final capacity and
// the insertion order of the keys present (a removed and re-added key counts
// from its re-insertion). Not reproduced: bins Java turns into trees (8+ keys
// in one bucket of a table of 64+ buckets), which needs adversarial keys.

// javaStringHash is java.lang.String.hashCode over s's UTF-16 code units.
// Invalid UTF-8 counts as U+FFFD per byte, as utf8.DecodeRuneInString reads it
// (Java's decoder may replace a malformed sequence by fewer characters).
func javaStringHash(s string) int32 {
	var h int32
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < utf8.RuneSelf {
			h = 31*h + int32(c)
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size - 1
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
		} else {
			h = 31*h + int32(r)
		}
	}
	return h
}

// javaTopicPartitionHash is org.apache.kafka.common.TopicPartition.hashCode.
func javaTopicPartitionHash(tp TopicPartition) int32 {
	return 31*(31+tp.Partition) + javaStringHash(tp.Topic)
}

// javaCompare is java.lang.String.compareTo's sign: lexicographic order of
// UTF-16 code units. It differs from Go's byte order only where a character
// above U+FFFF (a surrogate pair, D800–DFFF) meets one in U+E000–U+FFFF.
func javaCompare(a, b string) int {
	// Byte order equals code point order; find the first differing rune.
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i == len(a) || i == len(b) {
		return cmpInt(len(a), len(b)) // one is a prefix of the other
	}
	if a[i] < utf8.RuneSelf && b[i] < utf8.RuneSelf {
		return cmpInt(int(a[i]), int(b[i]))
	}
	// Back up to the start of the rune containing the difference.
	for i > 0 && !utf8.RuneStart(a[i]) {
		i--
	}
	ra, _ := utf8.DecodeRuneInString(a[i:])
	rb, _ := utf8.DecodeRuneInString(b[i:])
	if c := cmpInt(utf16Key(ra), utf16Key(rb)); c != 0 {
		return c
	}
	return cmpInt(int(a[i]), int(b[i])) // invalid UTF-8 on both sides: keep a total order
}

// utf16Key orders runes like their UTF-16 encodings: the first code unit (the
// high surrogate above U+FFFF) decides; two runes above U+FFFF with the same
// high surrogate are ordered by their low surrogates, which follow the runes'
// low 10 bits.
func utf16Key(r rune) int {
	if r >= 0x10000 {
		return (0xD800+int(r-0x10000)>>10)<<16 | int(r&0x3FF)
	}
	return int(r) << 16
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// javaHashBucket is HashMap's bucket index for hash h in a table of the given
// capacity (a power of two).
func javaHashBucket(h int32, capacity int) int {
	u := uint32(h)
	return int((u ^ u>>16) & uint32(capacity-1))
}

// javaHashOrder tracks what decides a java.util.HashMap's (or HashSet's)
// iteration order: the keys present with their insertion sequence, and the
// table capacity. It models a map created with the default constructor
// (16 buckets, load factor 0.75, doubling when the size exceeds 3/4 of the
// capacity).
type javaHashOrder[K comparable] struct {
	hash     func(K) int32
	seq      map[K]uint64
	next     uint64
	capacity int
}

func newJavaHashOrder[K comparable](hash func(K) int32) *javaHashOrder[K] {
	return &javaHashOrder[K]{hash: hash, seq: make(map[K]uint64), capacity: 16}
}

// add inserts k; adding a key already present does not move it.
func (o *javaHashOrder[K]) add(k K) {
	if _, ok := o.seq[k]; ok {
		return
	}
	o.seq[k] = o.next
	o.next++
	for len(o.seq) > o.capacity/4*3 {
		o.capacity *= 2
	}
}

// remove deletes k; the table keeps its capacity.
func (o *javaHashOrder[K]) remove(k K) { delete(o.seq, k) }

func (o *javaHashOrder[K]) len() int { return len(o.seq) }

func (o *javaHashOrder[K]) less(a, b K) bool {
	ba, bb := javaHashBucket(o.hash(a), o.capacity), javaHashBucket(o.hash(b), o.capacity)
	if ba != bb {
		return ba < bb
	}
	return o.seq[a] < o.seq[b]
}

// keys returns the keys in Java's iteration order.
func (o *javaHashOrder[K]) keys() []K {
	out := make([]K, 0, len(o.seq))
	for k := range o.seq {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b K) int {
		if o.less(a, b) {
			return -1
		}
		if o.less(b, a) {
			return 1
		}
		return 0
	})
	return out
}

// first returns the key a Java iterator returns first.
func (o *javaHashOrder[K]) first() (K, bool) {
	var best K
	found := false
	for k := range o.seq {
		if !found || o.less(k, best) {
			best, found = k, true
		}
	}
	return best, found
}

// javaStringOrder returns keys, given in insertion order and all distinct, in
// the iteration order of a default-constructed HashMap/HashSet they were put
// into in that order.
func javaStringOrder(keys []string) []string {
	o := newJavaHashOrder(javaStringHash)
	for _, k := range keys {
		o.add(k)
	}
	return o.keys()
}
