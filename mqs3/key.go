package mqs3

import (
	"fmt"
	"strconv"
	"strings"
)

// Object is one backup object: the records of one partition from offset
// First to offset Last, both included.
type Object struct {
	Key       string // the object key, see [ObjectKey]
	Topic     string
	Partition int
	First     int64
	Last      int64
	Gzip      bool  // the key ends in .jsonl.gz
	Size      int64 // bytes stored, when known from a listing
}

// offsetDigits pads offsets so that keys sort by offset: an int64 has at most
// 19 digits.
const offsetDigits = 20

// ObjectKey returns the key of the object holding the records of topic's
// partition from offset first to offset last:
//
//	<prefix>/<topic>/<partition>/<first>-<last>.jsonl[.gz]
//
// with both offsets zero-padded to 20 digits, so that the keys of a partition
// sort by offset. An empty prefix leaves out the leading "<prefix>/".
func ObjectKey(prefix, topic string, partition int, first, last int64, gzip bool) string {
	ext := ".jsonl"
	if gzip {
		ext += ".gz"
	}
	return fmt.Sprintf("%s%0*d-%0*d%s", partitionDir(prefix, topic, partition), offsetDigits, first, offsetDigits, last, ext)
}

// partitionDir returns the key prefix of a partition's objects, ending in "/".
func partitionDir(prefix, topic string, partition int) string {
	return topicDir(prefix, topic) + strconv.Itoa(partition) + "/"
}

// topicDir returns the key prefix of a topic's objects, ending in "/".
func topicDir(prefix, topic string) string {
	return rootDir(prefix) + topic + "/"
}

// rootDir returns prefix with one trailing slash, or "" for an empty prefix.
func rootDir(prefix string) string {
	prefix = strings.TrimRight(prefix, "/")
	if prefix == "" {
		return ""
	}
	return prefix + "/"
}

// listFrom returns the StartAfter key of a listing of a partition's objects
// that begins with the first object starting at offset from or later:
// "<dir><from-1>-~" sorts after every key of an object starting at from-1
// ("~" sorts after the digits) and before those starting at from. It has no
// "/" after dir, because SeaweedFS reads a StartAfter with one as a directory
// and starts the listing at that directory's name. Callers still skip keys
// before from, in case a server starts the listing earlier.
func listFrom(dir string, from int64) string {
	if from <= 0 {
		return ""
	}
	return fmt.Sprintf("%s%0*d-~", dir, offsetDigits, from-1)
}

// ParseObjectKey parses a key made by [ObjectKey] with the same prefix. It
// reports false for any other key.
func ParseObjectKey(prefix, key string) (Object, bool) {
	root := rootDir(prefix)
	rest, ok := strings.CutPrefix(key, root)
	if !ok {
		return Object{}, false
	}
	// <topic>/<partition>/<first>-<last>.jsonl[.gz]; topic names have no "/".
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" {
		return Object{}, false
	}
	o := Object{Key: key, Topic: parts[0]}
	p, err := strconv.Atoi(parts[1])
	if err != nil || p < 0 || strconv.Itoa(p) != parts[1] {
		return Object{}, false
	}
	o.Partition = p
	name := parts[2]
	switch {
	case strings.HasSuffix(name, ".jsonl.gz"):
		o.Gzip = true
		name = strings.TrimSuffix(name, ".jsonl.gz")
	case strings.HasSuffix(name, ".jsonl"):
		name = strings.TrimSuffix(name, ".jsonl")
	default:
		return Object{}, false
	}
	first, last, ok := strings.Cut(name, "-")
	if !ok || len(first) != offsetDigits || len(last) != offsetDigits {
		return Object{}, false
	}
	if o.First, err = strconv.ParseInt(first, 10, 64); err != nil || o.First < 0 {
		return Object{}, false
	}
	if o.Last, err = strconv.ParseInt(last, 10, 64); err != nil || o.Last < o.First {
		return Object{}, false
	}
	return o, true
}

// contains reports whether o holds every offset of [first, last].
func (o Object) contains(first, last int64) bool { return o.First <= first && last <= o.Last }

// overlaps reports whether o holds some offset of [first, last].
func (o Object) overlaps(first, last int64) bool { return o.First <= last && first <= o.Last }
