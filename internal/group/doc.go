// Package group holds the classic consumer-group protocol as Apache Kafka's
// Java client speaks it: the "consumer" protocol's subscription and
// assignment encodings, and the leader's partition assignors. A Go member
// built on it reads what Java members send, sends what they read, and, as
// leader, hands out the assignment a Java leader would.
//
// Membership is a member of such a group on mq's wire layer: JoinGroup
// (MEMBER_ID_REQUIRED handled, static membership with an instance ID),
// SyncGroup (the leader runs the chosen assignor over the members' decoded
// subscriptions), a heartbeat goroutine that lives as long as the member —
// including while its owner drains revoked partitions — coordinator
// rediscovery, LeaveGroup on close (dynamic members only), and OffsetCommit
// and OffsetFetch through the member's generation. Requests go at versions
// kafka-go's types encode correctly (JoinGroup v5, SyncGroup v3, Heartbeat and
// LeaveGroup v3 with their responses decoded here, OffsetCommit v7,
// OffsetFetch v5). Subscriptions are version 3 (Java's), except for eager
// assignors without a rack, whose members send version 0: the same
// information, and the only version kafka-go's leader reads. The codec and
// assignors are pure and safe for concurrent use; so is a Membership.
//
// # Codec
//
// EncodeSubscription/DecodeSubscription and EncodeAssignment/DecodeAssignment
// are byte-for-byte Java's ConsumerProtocol (schemas ConsumerProtocolSubscription
// and ConsumerProtocolAssignment, versions 0–3): a subscription carries topics
// and user data (v0), owned partitions (v1), the owner's generation (v2) and
// its rack (v3); an assignment carries partitions and user data in every
// version. Encoders write exactly the fields of the version asked for, in
// Java's order (topics and owned partitions sorted, assigned partitions
// grouped by topic). Decoders accept what Java accepts: a version above 3 is
// read with the version-3 layout and trailing bytes are ignored, while a
// buffer missing a field its version has is rejected (ErrMalformed), which is
// how Java members reject kafka-go's subscription (labelled version 1, without
// owned partitions).
//
// # Assignors
//
// Range, RoundRobin and CooperativeSticky are ports of Java's RangeAssignor,
// RoundRobinAssignor and CooperativeStickyAssignor (AbstractStickyAssignor's
// constrained and general builders, rack-aware, minus the partitions that
// must be revoked first). For the same JoinGroup response (member IDs,
// instance IDs and metadata bytes, in response order) and the same cluster
// metadata (partition counts, replica racks), Assign returns what a newly
// created Java assignor returns from ConsumerCoordinator.onLeaderElected: the
// same partitions for each member, in the same order, hence the same bytes.
//
// Java's results depend on the iteration order of java.util.HashMap and
// HashSet in several places (which member keeps an extra partition, which of
// three conflicting claims wins, which partition moves back): javaorder.go
// reproduces String.hashCode, TopicPartition.hashCode, String.compareTo and
// HashMap iteration order for that.
//
// Java's quirks are reproduced, not fixed, so that a Go leader and a Java
// leader agree:
//   - a member whose subscription is empty, if the sticky assignor visits it
//     first, does not make subscriptions unequal, and gets partitions;
//   - the general sticky builder can move a partition back to a previous
//     owner of an older generation that no longer subscribes to its topic;
//   - a claimed partition beyond its topic's partition count can be assigned;
//   - where Java throws (the constrained builder's IllegalStateException, or
//     a NullPointerException of the general builder when a member of an older
//     generation that owned partitions now subscribes only to topics that do
//     not exist), Assign returns an error.
//
// Not ported: the eager "sticky" assignor; the state a long-lived Java
// assignor keeps across rebalances (AbstractStickyAssignor's maxGeneration
// field remembers the highest generation seen, which matters only when every
// member reports an older generation than one seen before); the test-only
// preferRackAwareLogic flag; HashMap buckets that Java turns into trees
// (eight or more keys with colliding bucket indexes in a table of 64+).
// Deliberate differences: duplicate member IDs are an error (Java's map
// keeps the last), and encoders reject versions above 3 (Java writes 3).
//
// # Verification
//
// testdata/java/AssignorOracle.java runs Java's own classes (kafka-clients
// 4.4.0) on scenarios the Go tests generate: hand-written edge cases, random
// groups (1–10 members, 1–5 topics of 1–50 partitions, random subscriptions,
// versions 0–3, previous ownership with conflicting claims and mixed
// generations, racks), chains of rebalances, and large groups (up to 100
// members and 2,000 partitions). Run it with
//
//	MQ_JAVA_ORACLE=1 KAFKA_CACHE_DIR=/path/to/.cache/kafka go test -run JavaOracle ./internal/group/
//
// (MQ_JAVA_ORACLE_CASES and MQ_JAVA_ORACLE_SEED size and seed the random
// part; -update-golden rewrites testdata/golden). The golden files hold a few
// hundred scenarios and codec cases with Java's answers, which plain go test
// checks without a JDK.
package group
