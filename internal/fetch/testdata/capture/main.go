// Command capture sends Fetch requests to one broker over a plain TCP
// connection and writes each raw response body (from after the correlation
// id to the end of the frame) as a test fixture of internal/fetch, with a
// manifest (fixtures.json) describing each request. It is run by
// ../java/capture.sh after Fixtures.java wrote the topics; see ../README.md.
//
// Usage:
//
//	go run ./internal/fetch/testdata/capture -broker 127.0.0.1:19392 \
//		-expected internal/fetch/testdata/broker/expected.ndjson -out internal/fetch/testdata/broker
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/fetch"
)

// Fixture is one manifest entry: a request and the file of its response.
type Fixture struct {
	Name       string      `json:"name"`
	File       string      `json:"file"`
	Version    int16       `json:"version"`
	Isolation  int8        `json:"isolation"`
	Partitions []Partition `json:"partitions"`
}

// Partition is one partition of a fixture's request.
type Partition struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	FetchOffset int64  `json:"fetchOffset"`
	MaxBytes    int32  `json:"maxBytes"`
}

const maxBytes = 4 << 20

func main() {
	broker := flag.String("broker", "127.0.0.1:19392", "broker address")
	expected := flag.String("expected", "", "expected.ndjson written by Fixtures.java")
	out := flag.String("out", ".", "fixture directory")
	flag.Parse()
	log.SetFlags(0)

	conn, err := net.DialTimeout("tcp", *broker, 10*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	c := &client{conn: conn, r: bufio.NewReader(conn)}

	offsetOf := readExpected(*expected)
	p := func(topic string, partition int32, offset int64) Partition {
		return Partition{Topic: topic, Partition: partition, FetchOffset: offset, MaxBytes: maxBytes}
	}
	codecs := func() []Partition {
		var ps []Partition
		for i := range int32(5) {
			ps = append(ps, p("fx-codecs", i, 0))
		}
		return ps
	}

	// Partition sizes cut inside the second batch, for truncated record sets.
	var cut []Partition
	for _, i := range []int32{0, 3} { // uncompressed, lz4
		sizes := batchSizes(c.records("fx-codecs", i))
		if len(sizes) < 2 {
			log.Fatalf("fx-codecs/%d: %d batches, want at least 2", i, len(sizes))
		}
		q := p("fx-codecs", i, 0)
		q.MaxBytes = int32(sizes[0] + sizes[1]/2)
		cut = append(cut, q)
	}
	all := []Partition{p("fx-txn", 0, 0), p("fx-logappend", 0, 0), p("fx-nulls", 0, 0)}
	all = append(all, codecs()...)
	all = append(all, p("fx-compacted", 0, 0))

	fixtures := []Fixture{
		{Name: "txn-read-committed-v11", Version: 11, Isolation: 1, Partitions: []Partition{p("fx-txn", 0, 0)}},
		{Name: "txn-read-uncommitted-v11", Version: 11, Isolation: 0, Partitions: []Partition{p("fx-txn", 0, 0)}},
		{Name: "txn-read-committed-v4", Version: 4, Isolation: 1, Partitions: []Partition{p("fx-txn", 0, 0)}},
		{Name: "txn-read-committed-mid-abort-v11", Version: 11, Isolation: 1,
			Partitions: []Partition{p("fx-txn", 0, offsetOf["fx-txn/abort-A3-1"])}},
		{Name: "logappend-v11", Version: 11, Partitions: []Partition{p("fx-logappend", 0, 0)}},
		{Name: "nulls-v7", Version: 7, Partitions: []Partition{p("fx-nulls", 0, 0)}},
		{Name: "codecs-v11", Version: 11, Partitions: codecs()},
		{Name: "codecs-truncated-v11", Version: 11, Partitions: cut},
		{Name: "compacted-v11", Version: 11, Partitions: []Partition{p("fx-compacted", 0, 0)}},
		{Name: "all-read-committed-v5", Version: 5, Isolation: 1, Partitions: all},
	}
	for i := range fixtures {
		f := &fixtures[i]
		f.File = f.Name + ".bin"
		body := c.fetchBody(*f)
		if err := os.WriteFile(filepath.Join(*out, f.File), body, 0o644); err != nil {
			log.Fatal(err)
		}
		log.Printf("capture: %s: %d bytes", f.File, len(body))
	}
	manifest, err := json.MarshalIndent(fixtures, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*out, "fixtures.json"), append(manifest, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
}

// readExpected maps "topic/key" to the offset Fixtures.java reported.
func readExpected(path string) map[string]int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	m := map[string]int64{}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var r struct {
			Topic  string
			Offset int64
			Key    []byte
		}
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			log.Fatal(err)
		}
		m[r.Topic+"/"+string(r.Key)] = r.Offset
	}
	return m
}

// batchSizes lists the sizes of the complete batches of a record set.
func batchSizes(records []byte) []int {
	var sizes []int
	for len(records) >= 12 {
		n := 12 + int(binary.BigEndian.Uint32(records[8:]))
		if n > len(records) {
			break
		}
		sizes = append(sizes, n)
		records = records[n:]
	}
	return sizes
}

type client struct {
	conn net.Conn
	r    *bufio.Reader
	corr int32
}

// fetchBody sends f's request and returns the response body.
func (c *client) fetchBody(f Fixture) []byte {
	req := &fetch.Request{ReplicaID: -1, MaxWaitTime: 500, MinBytes: 1, MaxBytes: 16 << 20,
		IsolationLevel: f.Isolation, SessionID: 0, SessionEpoch: -1}
	for _, p := range f.Partitions {
		rp := fetch.RequestPartition{Partition: p.Partition, CurrentLeaderEpoch: -1, FetchOffset: p.FetchOffset,
			LogStartOffset: -1, PartitionMaxBytes: p.MaxBytes}
		if n := len(req.Topics); n > 0 && req.Topics[n-1].Topic == p.Topic {
			req.Topics[n-1].Partitions = append(req.Topics[n-1].Partitions, rp)
		} else {
			req.Topics = append(req.Topics, fetch.RequestTopic{Topic: p.Topic, Partitions: []fetch.RequestPartition{rp}})
		}
	}
	c.corr++
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := protocol.WriteRequest(c.conn, f.Version, c.corr, "fetch-fixtures", req); err != nil {
		log.Fatalf("%s: write: %v", f.Name, err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		log.Fatalf("%s: read: %v", f.Name, err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.r, frame); err != nil {
		log.Fatalf("%s: read: %v", f.Name, err)
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != c.corr {
		log.Fatalf("%s: correlation id %d, want %d", f.Name, got, c.corr)
	}
	return frame[4:]
}

// records returns the record set of one partition, fetched read-uncommitted
// at version 11 from offset 0, read from the fixed layout of a one-partition
// response.
func (c *client) records(topic string, partition int32) []byte {
	body := c.fetchBody(Fixture{Name: topic, Version: 11, Partitions: []Partition{
		{Topic: topic, Partition: partition, MaxBytes: maxBytes}}})
	// throttle, error, session, topic count, name, partition count, index,
	// error, high watermark, last stable offset, log start offset
	pos := 4 + 2 + 4 + 4 + 2 + len(topic) + 4 + 4 + 2 + 8 + 8 + 8
	if n := int32(binary.BigEndian.Uint32(body[pos:])); n > 0 { // aborted transactions
		pos += 16 * int(n)
	}
	pos += 4 + 4 // aborted count, preferred read replica
	n := int(binary.BigEndian.Uint32(body[pos:]))
	return body[pos+4 : pos+4+n]
}
