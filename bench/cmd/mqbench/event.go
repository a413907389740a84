package main

import (
	"encoding/json"
	"math/rand"
	"strconv"
	"strings"
)

// Event is the benchmark's message: about 1 KiB of JSON. Every Go system
// encodes it with encoding/json on each send and decodes it on each receive,
// exactly as mq's default JSONCodec does.
type Event struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	Key       string `json:"key"`
	SentNs    int64  `json:"sent_ns"` // producer clock, for end-to-end latency
	Source    string `json:"source"`
	UserID    string `json:"user_id"`
	SessionID string `json:"session_id"`
	Body      string `json:"body"`
}

const (
	eventSize  = 1024 // target size of one encoded event, bytes
	numKeys    = 1000 // distinct keys, like conversation IDs
	numBodies  = 64
	bodySeed   = 42
	sampleSent = int64(1_767_225_600_000_000_000)
)

var words = strings.Fields(`the a message conversation user order payment shipped delivered
	cancelled refund invoice customer account session login logout update created deleted
	profile address email phone notification sent received read typing attachment image
	video audio document link preview reaction reply thread channel group member admin
	invite accepted declined pending retry timeout error success warning info debug trace`)

// generator builds events and keys deterministically.
type generator struct {
	bodies []string
	keys   [][]byte
	skeys  []string
}

func newGenerator() *generator {
	g := &generator{}
	rng := rand.New(rand.NewSource(bodySeed))
	for i := 0; i < numKeys; i++ {
		k := "conv-" + strconv.Itoa(i)
		g.skeys = append(g.skeys, k)
		g.keys = append(g.keys, []byte(k))
	}
	// Size the body so that a typical event encodes to eventSize bytes.
	probe := g.rawEvent(123456, "", sampleSent)
	b, _ := json.Marshal(probe)
	bodyLen := eventSize - len(b)
	for i := 0; i < numBodies; i++ {
		var sb strings.Builder
		for sb.Len() < bodyLen {
			if sb.Len() > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(words[rng.Intn(len(words))])
		}
		g.bodies = append(g.bodies, sb.String()[:bodyLen])
	}
	return g
}

func (g *generator) rawEvent(i int64, body string, sentNs int64) Event {
	k := g.skeys[int(i%numKeys)]
	return Event{
		ID:        i,
		Type:      "chat.message.created",
		Key:       k,
		SentNs:    sentNs,
		Source:    "mqbench/1.0 (linux; amd64)",
		UserID:    "user-0000" + strconv.Itoa(int(i%9973)),
		SessionID: "5f0c2b1e-9a7d-4c3e-8b21-" + strconv.Itoa(100000000000+int(i%899999999999)),
		Body:      body,
	}
}

// event returns message i with the given send time.
func (g *generator) event(i int64, sentNs int64) Event {
	return g.rawEvent(i, g.bodies[int(i%numBodies)], sentNs)
}

// key returns message i's key (shared, read-only).
func (g *generator) key(i int64) []byte { return g.keys[int(i%numKeys)] }

// avgSize is the average key+value size of a message, for MB/s.
func (g *generator) avgSize() float64 {
	total := 0
	for i := int64(0); i < 1000; i++ {
		b, _ := json.Marshal(g.event(i, sampleSent))
		total += len(b) + len(g.key(i))
	}
	return float64(total) / 1000
}
