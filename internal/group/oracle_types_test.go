package group

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The JSON shapes exchanged with testdata/java/AssignorOracle.java and stored
// in the golden files under testdata/golden.

// jsonTP is a TopicPartition as the JSON array [topic, partition].
type jsonTP TopicPartition

func (tp jsonTP) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{tp.Topic, tp.Partition})
}

func (tp *jsonTP) UnmarshalJSON(b []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("topic partition %s: want [topic, partition]", b)
	}
	if err := json.Unmarshal(pair[0], &tp.Topic); err != nil {
		return err
	}
	return json.Unmarshal(pair[1], &tp.Partition)
}

func toJSONTPs(tps []TopicPartition) []jsonTP {
	out := make([]jsonTP, len(tps))
	for i, tp := range tps {
		out[i] = jsonTP(tp)
	}
	return out
}

func fromJSONTPs(tps []jsonTP) []TopicPartition {
	out := make([]TopicPartition, len(tps))
	for i, tp := range tps {
		out[i] = TopicPartition(tp)
	}
	return out
}

// oracleMember is a member as in a JoinGroup response.
type oracleMember struct {
	ID       string  `json:"id"`
	Instance *string `json:"instance"`
	Metadata []byte  `json:"metadata"` // encoded subscription (base64 in JSON)
}

type oracleTopic struct {
	Name       string `json:"name"`
	Partitions int32  `json:"partitions"`
}

// oracleRacks gives, per topic, each partition's replica racks joined by
// commas ("" for none), indexed by partition.
type oracleRacks map[string][]string

// assignRequest is one assignment scenario for one assignor.
type assignRequest struct {
	Op       string         `json:"op"` // "assign"
	Name     string         `json:"name"`
	Assignor string         `json:"assignor"`
	Members  []oracleMember `json:"members"`
	Topics   []oracleTopic  `json:"topics"`
	Racks    oracleRacks    `json:"racks,omitempty"`
}

type assignResponse struct {
	Error       string              `json:"error,omitempty"`
	Assignments map[string][]jsonTP `json:"assignments,omitempty"`
	Encoded     map[string][]byte   `json:"encoded,omitempty"`
}

// assignGolden is a line of testdata/golden/assign.golden: a scenario and
// Java's answer for each assignor, assignments in compact form.
type assignGolden struct {
	Name    string                  `json:"name"`
	Members []oracleMember          `json:"members"`
	Topics  []oracleTopic           `json:"topics"`
	Racks   oracleRacks             `json:"racks,omitempty"`
	Java    map[string]goldenAnswer `json:"java"` // by assignor
}

type goldenAnswer struct {
	Error string `json:"error,omitempty"`
	// Assignments holds each member's partitions as "t:0,1;u:2", runs of
	// one topic in Java's order.
	Assignments map[string]string `json:"assignments,omitempty"`
}

func (g *assignGolden) request(assignor string) assignRequest {
	return assignRequest{Op: "assign", Name: g.Name, Assignor: assignor, Members: g.Members, Topics: g.Topics, Racks: g.Racks}
}

func compactAnswer(r assignResponse) goldenAnswer {
	a := goldenAnswer{Error: r.Error}
	if r.Error == "" {
		a.Assignments = make(map[string]string, len(r.Assignments))
		for id, list := range r.Assignments {
			a.Assignments[id] = formatTPs(fromJSONTPs(list))
		}
	}
	return a
}

// formatTPs writes partitions as "t:0,1;u:2;t:3" (Kafka topic names have no
// ':', ';' or ',').
func formatTPs(list []TopicPartition) string {
	var b strings.Builder
	for i, tp := range list {
		switch {
		case i == 0:
		case list[i-1].Topic == tp.Topic:
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(int(tp.Partition)))
			continue
		default:
			b.WriteByte(';')
		}
		b.WriteString(tp.Topic)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(int(tp.Partition)))
	}
	return b.String()
}

// codecRequest is one codec operation; only the fields of its op are set.
type codecRequest struct {
	Op         string   `json:"op"`
	Name       string   `json:"name"`
	Version    int16    `json:"version"`
	Topics     []string `json:"topics"`
	UserData   []byte   `json:"userData"`
	Owned      []jsonTP `json:"owned,omitempty"`
	Generation int32    `json:"generation"`
	Rack       *string  `json:"rack"`
	Partitions []jsonTP `json:"partitions,omitempty"`
	Bytes      []byte   `json:"bytes,omitempty"`
}

type codecResponse struct {
	Error      string   `json:"error,omitempty"`
	Bytes      []byte   `json:"bytes,omitempty"`
	Version    int16    `json:"version"`
	Topics     []string `json:"topics,omitempty"`
	UserData   []byte   `json:"userData"`
	Owned      []jsonTP `json:"owned,omitempty"`
	Generation int32    `json:"generation"`
	Rack       *string  `json:"rack"`
	Partitions []jsonTP `json:"partitions,omitempty"`
}

// codecGolden is a line of testdata/golden/codec.golden.
type codecGolden struct {
	codecRequest
	Java codecResponse `json:"java"`
}

// metadata builds the leader's Metadata from a request.
func (r *assignRequest) metadata() Metadata {
	md := Metadata{Partitions: make(map[string]int32)}
	for _, t := range r.Topics {
		md.Partitions[t.Name] = t.Partitions
	}
	if len(r.Racks) > 0 {
		md.ReplicaRacks = make(map[TopicPartition][]string)
		for topic, racks := range r.Racks {
			for p, joined := range racks {
				if joined != "" {
					md.ReplicaRacks[TopicPartition{Topic: topic, Partition: int32(p)}] = strings.Split(joined, ",")
				}
			}
		}
	}
	return md
}

// members decodes the members' metadata as a Go leader would.
func (r *assignRequest) members() ([]Member, error) {
	out := make([]Member, 0, len(r.Members))
	for _, m := range r.Members {
		s, _, err := DecodeSubscription(m.Metadata)
		if err != nil {
			return nil, err
		}
		member := Member{ID: m.ID, Subscription: s}
		if m.Instance != nil {
			member.InstanceID = *m.Instance
		}
		out = append(out, member)
	}
	return out, nil
}

func assignorByName(name string) Assignor {
	for _, a := range []Assignor{Range(), RoundRobin(), CooperativeSticky()} {
		if a.Name() == name {
			return a
		}
	}
	return nil
}

// runGo runs the Go assignor on the request and shapes the result like the
// oracle's response.
func (r *assignRequest) runGo() assignResponse {
	members, err := r.members()
	if err != nil {
		return assignResponse{Error: "decode: " + err.Error()}
	}
	a := assignorByName(r.Assignor)
	if a == nil {
		return assignResponse{Error: "unknown assignor " + r.Assignor}
	}
	result, err := a.Assign(members, r.metadata())
	if err != nil {
		return assignResponse{Error: err.Error()}
	}
	resp := assignResponse{Assignments: map[string][]jsonTP{}, Encoded: map[string][]byte{}}
	for id, as := range result {
		resp.Assignments[id] = toJSONTPs(as.Partitions)
		b, err := EncodeAssignment(as, MaxVersion)
		if err != nil {
			return assignResponse{Error: "encode: " + err.Error()}
		}
		resp.Encoded[id] = b
	}
	return resp
}

// diffAssign describes how a Go result differs from Java's, or returns "".
func diffAssign(java, got assignResponse) string {
	if (java.Error != "") != (got.Error != "") {
		return fmt.Sprintf("java error %q, go error %q", java.Error, got.Error)
	}
	if java.Error != "" {
		return ""
	}
	if len(java.Assignments) != len(got.Assignments) {
		return fmt.Sprintf("java assigns %d members, go %d", len(java.Assignments), len(got.Assignments))
	}
	ids := make([]string, 0, len(java.Assignments))
	for id := range java.Assignments {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		g, ok := got.Assignments[id]
		if !ok {
			return fmt.Sprintf("member %s missing in go's result", id)
		}
		if !slices.Equal(java.Assignments[id], g) {
			return fmt.Sprintf("member %s:\n java %v\n go   %v", id, fromJSONTPs(java.Assignments[id]), fromJSONTPs(g))
		}
		if string(java.Encoded[id]) != string(got.Encoded[id]) {
			return fmt.Sprintf("member %s: encoded assignment\n java %x\n go   %x", id, java.Encoded[id], got.Encoded[id])
		}
	}
	return ""
}
