package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// ProtocolType is the protocol type consumer groups declare in JoinGroup.
const ProtocolType = "consumer"

// MaxVersion is the highest version of the consumer protocol's subscription
// and assignment schemas this package knows (ConsumerProtocolSubscription and
// ConsumerProtocolAssignment, versions 0–3, in Apache Kafka 4.x).
const MaxVersion int16 = 3

// NoGeneration is the generation of a member that reports none: versions 0
// and 1 of the subscription carry no generation, and a member that never
// completed a rebalance sends -1. Java's DEFAULT_GENERATION.
const NoGeneration int32 = -1

// ErrMalformed marks consumer-protocol bytes that cannot be decoded: a buffer
// that ends inside a field the version requires, a null where the schema
// forbids one, or a negative version. Java's ConsumerProtocol rejects the
// same inputs (SchemaException or RuntimeException).
var ErrMalformed = errors.New("group: malformed consumer protocol data")

// ErrVersion is returned by the encoders for a version outside 0..MaxVersion.
var ErrVersion = errors.New("group: unsupported consumer protocol version")

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// String formats the partition as Java's TopicPartition does: topic-partition.
func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// Subscription is the member metadata of protocol type "consumer", as Java's
// ConsumerPartitionAssignor.Subscription holds it after decoding.
type Subscription struct {
	// Topics the member subscribes to, in the order they were on the wire
	// (Java's encoder sorts them).
	Topics []string
	// UserData is the assignor's opaque data; nil is encoded as null.
	UserData []byte
	// OwnedPartitions are the partitions the member owns (version 1+),
	// flattened in wire order.
	OwnedPartitions []TopicPartition
	// GenerationID is the generation in which the member last owned
	// OwnedPartitions (version 2+); NoGeneration when absent. A negative
	// value on the wire decodes as NoGeneration, as in Java. Note that the
	// zero value is generation 0, not "none": set NoGeneration explicitly.
	GenerationID int32
	// RackID is the member's rack (version 3+); "" when absent. Java treats
	// an empty rack on the wire as absent, and so does this package.
	RackID string
}

// Assignment is the member assignment of protocol type "consumer".
type Assignment struct {
	// Partitions assigned to the member, in the assignor's order.
	Partitions []TopicPartition
	// UserData is the assignor's opaque data; nil is encoded as null. None
	// of the assignors in this package sets it.
	UserData []byte
}

// EncodeSubscription encodes s as the version-prefixed bytes Java's
// ConsumerProtocol.serializeSubscription(s, version) writes: topics sorted,
// owned partitions sorted by topic then partition and grouped by topic, and
// only the fields the version has (owned partitions from 1, generation from 2,
// rack from 3; fields a version lacks are dropped, as Java drops its ignorable
// fields). Unlike Java, which clamps a version above its highest to that
// highest, a version outside 0..MaxVersion is an error (ErrVersion).
func EncodeSubscription(s Subscription, version int16) ([]byte, error) {
	if version < 0 || version > MaxVersion {
		return nil, fmt.Errorf("%w: subscription version %d (want 0..%d)", ErrVersion, version, MaxVersion)
	}
	var w writer
	w.int16(version)

	topics := slices.Clone(s.Topics)
	slices.SortStableFunc(topics, javaCompare)
	w.int32(int32(len(topics)))
	for _, t := range topics {
		if err := w.string("topics", t); err != nil {
			return nil, err
		}
	}
	w.bytes(s.UserData)

	if version >= 1 {
		owned := slices.Clone(s.OwnedPartitions)
		slices.SortStableFunc(owned, func(a, b TopicPartition) int {
			if c := javaCompare(a.Topic, b.Topic); c != 0 {
				return c
			}
			return cmpInt32(a.Partition, b.Partition)
		})
		groups := groupConsecutive(owned)
		w.int32(int32(len(groups)))
		for _, g := range groups {
			if err := w.string("ownedPartitions.topic", g.topic); err != nil {
				return nil, err
			}
			w.int32s(g.partitions)
		}
	}
	if version >= 2 {
		gen := s.GenerationID
		if gen < 0 {
			gen = NoGeneration
		}
		w.int32(gen)
	}
	if version >= 3 {
		if s.RackID == "" {
			w.int16(-1)
		} else if err := w.string("rackId", s.RackID); err != nil {
			return nil, err
		}
	}
	return w.buf, nil
}

// DecodeSubscription decodes version-prefixed subscription bytes as Java's
// ConsumerProtocol.deserializeSubscription does, and returns the version on
// the wire. A version above MaxVersion is read with the version-3 layout
// (newer versions may only append fields); bytes after the last known field
// are ignored. Errors wrap ErrMalformed.
func DecodeSubscription(b []byte) (Subscription, int16, error) {
	r := reader{buf: b, what: "subscription"}
	version, err := r.version()
	if err != nil {
		return Subscription{}, 0, err
	}
	v := min(version, MaxVersion)

	var s Subscription
	n, err := r.arrayLen("topics")
	if err != nil {
		return Subscription{}, version, err
	}
	s.Topics = make([]string, 0, min(n, 1000))
	for range n {
		t, err := r.string("topics element", false)
		if err != nil {
			return Subscription{}, version, err
		}
		s.Topics = append(s.Topics, t)
	}
	if s.UserData, err = r.bytes("userData"); err != nil {
		return Subscription{}, version, err
	}
	if v >= 1 {
		if s.OwnedPartitions, err = r.topicPartitions("ownedPartitions"); err != nil {
			return Subscription{}, version, err
		}
	}
	s.GenerationID = NoGeneration
	if v >= 2 {
		gen, err := r.int32("generationId")
		if err != nil {
			return Subscription{}, version, err
		}
		if gen >= 0 {
			s.GenerationID = gen
		}
	}
	if v >= 3 {
		if s.RackID, err = r.string("rackId", true); err != nil {
			return Subscription{}, version, err
		}
	}
	return s, version, nil
}

// EncodeAssignment encodes a as the version-prefixed bytes Java's
// ConsumerProtocol.serializeAssignment(a, version) writes: partitions grouped
// by topic, topics in the order of their first partition, partitions of a
// topic in their order in a. All versions 0..MaxVersion share one layout; a
// version outside that range is an error (ErrVersion).
func EncodeAssignment(a Assignment, version int16) ([]byte, error) {
	if version < 0 || version > MaxVersion {
		return nil, fmt.Errorf("%w: assignment version %d (want 0..%d)", ErrVersion, version, MaxVersion)
	}
	var w writer
	w.int16(version)
	groups := groupByFirstAppearance(a.Partitions)
	w.int32(int32(len(groups)))
	for _, g := range groups {
		if err := w.string("assignedPartitions.topic", g.topic); err != nil {
			return nil, err
		}
		w.int32s(g.partitions)
	}
	w.bytes(a.UserData)
	return w.buf, nil
}

// DecodeAssignment decodes version-prefixed assignment bytes as Java's
// ConsumerProtocol.deserializeAssignment does, and returns the version on the
// wire. A version above MaxVersion is read with the version-3 layout; bytes
// after the last known field are ignored. Errors wrap ErrMalformed.
func DecodeAssignment(b []byte) (Assignment, int16, error) {
	r := reader{buf: b, what: "assignment"}
	version, err := r.version()
	if err != nil {
		return Assignment{}, 0, err
	}
	var a Assignment
	if a.Partitions, err = r.topicPartitions("assignedPartitions"); err != nil {
		return Assignment{}, version, err
	}
	if a.UserData, err = r.bytes("userData"); err != nil {
		return Assignment{}, version, err
	}
	return a, version, nil
}

type topicGroup struct {
	topic      string
	partitions []int32
}

// groupConsecutive groups runs of the same topic (the input is sorted).
func groupConsecutive(tps []TopicPartition) []topicGroup {
	var groups []topicGroup
	for _, tp := range tps {
		if len(groups) == 0 || groups[len(groups)-1].topic != tp.Topic {
			groups = append(groups, topicGroup{topic: tp.Topic})
		}
		g := &groups[len(groups)-1]
		g.partitions = append(g.partitions, tp.Partition)
	}
	return groups
}

// groupByFirstAppearance groups partitions by topic like Java's assignment
// encoder, which looks each topic up in a collection keyed by topic name.
func groupByFirstAppearance(tps []TopicPartition) []topicGroup {
	var groups []topicGroup
	index := make(map[string]int)
	for _, tp := range tps {
		i, ok := index[tp.Topic]
		if !ok {
			i = len(groups)
			index[tp.Topic] = i
			groups = append(groups, topicGroup{topic: tp.Topic})
		}
		groups[i].partitions = append(groups[i].partitions, tp.Partition)
	}
	return groups
}

// writer appends the non-flexible (classic) Kafka encodings.
type writer struct{ buf []byte }

func (w *writer) int16(v int16) { w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(v)) }
func (w *writer) int32(v int32) { w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(v)) }

func (w *writer) int32s(vs []int32) {
	w.int32(int32(len(vs)))
	for _, v := range vs {
		w.int32(v)
	}
}

// string writes a non-null string; Java refuses strings longer than an int16.
func (w *writer) string(field, s string) error {
	if len(s) > math.MaxInt16 {
		return fmt.Errorf("group: field %s is too long to be serialized (%d bytes)", field, len(s))
	}
	w.int16(int16(len(s)))
	w.buf = append(w.buf, s...)
	return nil
}

// bytes writes nullable bytes: nil as length -1.
func (w *writer) bytes(b []byte) {
	if b == nil {
		w.int32(-1)
		return
	}
	w.int32(int32(len(b)))
	w.buf = append(w.buf, b...)
}

// maxCollection is the largest array Java's generated readers accept.
const maxCollection = 1_000_000

// reader reads the classic Kafka encodings with the checks of Java's
// generated message readers.
type reader struct {
	buf  []byte
	off  int
	what string // "subscription" or "assignment", for errors
}

func (r *reader) remaining() int { return len(r.buf) - r.off }

func (r *reader) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformed, r.what, fmt.Sprintf(format, args...))
}

func (r *reader) version() (int16, error) {
	if r.remaining() < 2 {
		return 0, r.errorf("buffer underflow reading the version")
	}
	v := int16(binary.BigEndian.Uint16(r.buf))
	r.off = 2
	if v < 0 {
		return v, r.errorf("unsupported version %d", v)
	}
	return v, nil
}

func (r *reader) int16(field string) (int16, error) {
	if r.remaining() < 2 {
		return 0, r.errorf("buffer underflow reading %s", field)
	}
	v := int16(binary.BigEndian.Uint16(r.buf[r.off:]))
	r.off += 2
	return v, nil
}

func (r *reader) int32(field string) (int32, error) {
	if r.remaining() < 4 {
		return 0, r.errorf("buffer underflow reading %s", field)
	}
	v := int32(binary.BigEndian.Uint32(r.buf[r.off:]))
	r.off += 4
	return v, nil
}

// arrayLen reads the length of a non-nullable array.
func (r *reader) arrayLen(field string) (int, error) {
	n, err := r.int32(field)
	if err != nil {
		return 0, err
	}
	switch {
	case n < 0:
		return 0, r.errorf("non-nullable field %s was serialized as null", field)
	case int(n) > r.remaining():
		return 0, r.errorf("%s: tried to allocate a collection of size %d, but there are only %d bytes remaining", field, n, r.remaining())
	case n > maxCollection:
		return 0, r.errorf("%s: collection of size %d exceeds the maximum of %d", field, n, maxCollection)
	}
	return int(n), nil
}

// string reads a string; a null one is "" when nullable, an error otherwise.
func (r *reader) string(field string, nullable bool) (string, error) {
	n, err := r.int16(field)
	if err != nil {
		return "", err
	}
	if n < 0 {
		if nullable {
			return "", nil
		}
		return "", r.errorf("non-nullable field %s was serialized as null", field)
	}
	if int(n) > r.remaining() {
		return "", r.errorf("buffer underflow reading %s (%d bytes, %d remaining)", field, n, r.remaining())
	}
	s := string(r.buf[r.off : r.off+int(n)])
	r.off += int(n)
	return s, nil
}

// bytes reads nullable bytes; the result never aliases r.buf.
func (r *reader) bytes(field string) ([]byte, error) {
	n, err := r.int32(field)
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, nil
	}
	if int(n) > r.remaining() {
		return nil, r.errorf("buffer underflow reading %s (%d bytes, %d remaining)", field, n, r.remaining())
	}
	b := make([]byte, n)
	copy(b, r.buf[r.off:])
	r.off += int(n)
	return b, nil
}

// topicPartitions reads an array of (topic, [partition]) and flattens it.
func (r *reader) topicPartitions(field string) ([]TopicPartition, error) {
	n, err := r.arrayLen(field)
	if err != nil {
		return nil, err
	}
	var out []TopicPartition
	for range n {
		topic, err := r.string(field+".topic", false)
		if err != nil {
			return nil, err
		}
		m, err := r.arrayLen(field + ".partitions")
		if err != nil {
			return nil, err
		}
		if r.remaining() < 4*m {
			return nil, r.errorf("buffer underflow reading %s.partitions", field)
		}
		for range m {
			p := int32(binary.BigEndian.Uint32(r.buf[r.off:]))
			r.off += 4
			out = append(out, TopicPartition{Topic: topic, Partition: p})
		}
	}
	return out, nil
}

func cmpInt32(a, b int32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
