package check

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// world builds synthetic runs: a producer that acknowledged ids 0..n-1 over
// a number of keys, all on one partition per key (key k on partition k%parts),
// with the log holding them in order.
type world struct {
	in     Input
	byID   map[int64]LogRecord
	nextAt map[int]int64
}

func newWorld(n, keys, parts int) *world {
	w := &world{byID: map[int64]LogRecord{}, nextAt: map[int]int64{}}
	seq := map[string]int64{}
	for id := int64(0); id < int64(n); id++ {
		k := int(id) % keys
		key := "k" + string(rune('a'+k))
		p := k % parts
		rec := LogRecord{Partition: p, Offset: w.nextAt[p], ID: id, Key: key, Seq: seq[key]}
		w.nextAt[p]++
		seq[key]++
		w.in.Log = append(w.in.Log, rec)
		w.byID[id] = rec
		w.in.Producer = append(w.in.Producer, ProducerLine{Tag: 'A', ID: id, Key: key, Seq: rec.Seq, Partition: p, Offset: rec.Offset})
	}
	w.in.Produced = n
	w.in.End = map[int]int64{}
	w.in.Committed = map[int]int64{}
	for p := 0; p < parts; p++ {
		w.in.End[p] = w.nextAt[p]
		w.in.Committed[p] = w.nextAt[p]
	}
	return w
}

func (w *world) h(id int64) Event {
	r := w.byID[id]
	return Event{Type: EvHandled, H: Handled{Partition: r.Partition, Offset: r.Offset, ID: id, Key: r.Key, Seq: r.Seq}}
}

func (w *world) lifetime(name string, ids ...int64) Lifetime {
	lt := Lifetime{Name: name, Events: []Event{{Type: EvAssign, Gen: 1, Parts: []int{0, 1}}}}
	for _, id := range ids {
		lt.Events = append(lt.Events, w.h(id))
	}
	return lt
}

func seqIDs(from, to int64) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestCleanRun(t *testing.T) {
	w := newWorld(100, 4, 2)
	w.in.Lifetimes = []Lifetime{w.lifetime("c1", seqIDs(0, 100)...)}
	r := Analyze(w.in)
	if r.Produced != 100 || r.Acked != 100 || r.HandledUnique != 100 || r.Handled != 100 {
		t.Fatalf("counts: %+v", r)
	}
	if r.Lost != 0 || r.Duplicates != 0 || r.OrderViolations != 0 || r.LogInversions != 0 ||
		r.CommittedUnhandled != 0 || r.UncommittedTail != 0 || r.MissingOutcome != 0 || r.DoubleOutcome != 0 {
		t.Fatalf("clean run reported problems: %+v", r)
	}
}

func TestLossAndCommittedUnhandled(t *testing.T) {
	w := newWorld(50, 5, 1)
	ids := seqIDs(0, 50)
	ids = slices.DeleteFunc(ids, func(id int64) bool { return id == 7 || id == 31 })
	w.in.Lifetimes = []Lifetime{w.lifetime("c1", ids...)}
	r := Analyze(w.in)
	if r.Lost != 2 || !slices.Equal(r.LostIDs, []int64{7, 31}) {
		t.Fatalf("lost = %d %v, want 2 [7 31]", r.Lost, r.LostIDs)
	}
	if r.CommittedUnhandled != 2 {
		t.Fatalf("committed-unhandled = %d, want 2", r.CommittedUnhandled)
	}
	if r.LostNotInLog != 0 {
		t.Fatalf("lost-not-in-log = %d", r.LostNotInLog)
	}

	// An acknowledged message the broker does not have is lost too, and
	// said to be missing from the log.
	w.in.Log = slices.DeleteFunc(w.in.Log, func(l LogRecord) bool { return l.ID == 7 })
	r = Analyze(w.in)
	if r.Lost != 2 || r.LostNotInLog != 1 {
		t.Fatalf("lost = %d, not in log = %d; want 2, 1", r.Lost, r.LostNotInLog)
	}
}

func TestUncommittedTail(t *testing.T) {
	w := newWorld(20, 2, 2)
	w.in.Committed[0] = 4
	w.in.Committed[1] = -1
	w.in.Lifetimes = []Lifetime{w.lifetime("c1", seqIDs(0, 20)...)}
	r := Analyze(w.in)
	if r.UncommittedTail != 6+10 {
		t.Fatalf("tail = %d, want 16", r.UncommittedTail)
	}
	if r.Lost != 0 {
		t.Fatalf("lost = %d", r.Lost)
	}
}

// A crash redelivers the uncommitted window to the next process: duplicates,
// not disorder.
func TestRedeliveryAcrossLifetimesIsDuplicateNotDisorder(t *testing.T) {
	w := newWorld(40, 2, 1)
	a := w.lifetime("c1", seqIDs(0, 30)...)
	b := w.lifetime("c2", seqIDs(20, 40)...) // resumed from committed offset 20
	w.in.Lifetimes = []Lifetime{a, b}
	r := Analyze(w.in)
	if r.Duplicates != 10 || r.OrderViolations != 0 || r.Lost != 0 {
		t.Fatalf("dup=%d order=%d lost=%d, want 10 0 0", r.Duplicates, r.OrderViolations, r.Lost)
	}
	if r.HandledUnique != 40 || r.Handled != 50 {
		t.Fatalf("unique=%d handled=%d", r.HandledUnique, r.Handled)
	}
}

// Within one process, a new assignment (rebalance) may replay from the
// committed offset: not disorder either.
func TestRedeliveryAfterReassignmentInOneProcess(t *testing.T) {
	w := newWorld(30, 3, 1)
	lt := w.lifetime("c1", seqIDs(0, 20)...)
	lt.Events = append(lt.Events, Event{Type: EvRelease, Gen: 1}, Event{Type: EvAssign, Gen: 2, Parts: []int{0}})
	for _, id := range seqIDs(12, 30) {
		lt.Events = append(lt.Events, w.h(id))
	}
	w.in.Lifetimes = []Lifetime{lt}
	r := Analyze(w.in)
	if r.OrderViolations != 0 || r.Duplicates != 8 || r.Lost != 0 || r.Segments != 2 {
		t.Fatalf("order=%d dup=%d lost=%d segments=%d", r.OrderViolations, r.Duplicates, r.Lost, r.Segments)
	}
}

// Going back within one assignment is disorder, whether the earlier record
// is new or seen before.
func TestOrderViolationWithinSegment(t *testing.T) {
	w := newWorld(12, 1, 1) // one key: ids are seqs
	w.in.Lifetimes = []Lifetime{w.lifetime("c1", 0, 1, 3, 2, 4, 5, 6, 7, 8, 9, 10, 11)}
	r := Analyze(w.in)
	if r.OrderViolations != 1 || r.SeqRegressions != 1 {
		t.Fatalf("order=%d seq=%d, want 1 1: %v", r.OrderViolations, r.SeqRegressions, r.Examples)
	}
	if r.Lost != 0 || r.Duplicates != 0 {
		t.Fatalf("lost=%d dup=%d", r.Lost, r.Duplicates)
	}

	// A replay inside one segment (the same offsets handled again without a
	// new assignment) is disorder too: every replayed record counts.
	w.in.Lifetimes = []Lifetime{w.lifetime("c1", 0, 1, 2, 3, 4, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)}
	r = Analyze(w.in)
	if r.OrderViolations != 3 || r.Duplicates != 3 {
		t.Fatalf("order=%d dup=%d, want 3 3", r.OrderViolations, r.Duplicates)
	}
}

// Keys are independent: interleaving different keys is fine.
func TestKeysAreIndependent(t *testing.T) {
	w := newWorld(8, 2, 1) // ka: 0,2,4,6  kb: 1,3,5,7
	w.in.Lifetimes = []Lifetime{w.lifetime("c1", 0, 2, 4, 6, 1, 3, 5, 7)}
	// Log order interleaves them but per key order holds; offsets for kb
	// are lower than ka's, which must not matter.
	r := Analyze(w.in)
	if r.OrderViolations != 0 {
		t.Fatalf("order=%d: %v", r.OrderViolations, r.Examples)
	}
}

// The producer may write a key out of order (a retried request applied
// late): the log inversion is counted apart and a consumer that follows the
// log is not blamed.
func TestLogInversionIsNotConsumerDisorder(t *testing.T) {
	w := newWorld(6, 1, 1)
	// Swap the sequence numbers of offsets 2 and 3 in the log.
	w.in.Log[2].Seq, w.in.Log[3].Seq = 3, 2
	r2, r3 := w.byID[2], w.byID[3]
	r2.Seq, r3.Seq = 3, 2
	w.byID[2], w.byID[3] = r2, r3
	w.in.Lifetimes = []Lifetime{w.lifetime("c1", 0, 1, 2, 3, 4, 5)}
	r := Analyze(w.in)
	if r.LogInversions != 1 || r.OrderViolations != 0 || r.SeqRegressions != 1 {
		t.Fatalf("inversions=%d order=%d seqreg=%d", r.LogInversions, r.OrderViolations, r.SeqRegressions)
	}
}

func TestLogDuplicatesFromProducer(t *testing.T) {
	w := newWorld(5, 1, 1)
	dup := w.in.Log[4]
	dup.Offset = 5
	w.in.Log = append(w.in.Log, dup)
	w.in.End[0], w.in.Committed[0] = 6, 6
	lt := w.lifetime("c1", 0, 1, 2, 3, 4)
	lt.Events = append(lt.Events, Event{Type: EvHandled, H: Handled{Partition: 0, Offset: 5, ID: 4, Key: dup.Key, Seq: dup.Seq}})
	w.in.Lifetimes = []Lifetime{lt}
	r := Analyze(w.in)
	if r.LogDupIDs != 1 || r.Duplicates != 0 || r.OrderViolations != 0 || r.HandledUnique != 5 {
		t.Fatalf("logdup=%d dup=%d order=%d unique=%d: %v", r.LogDupIDs, r.Duplicates, r.OrderViolations, r.HandledUnique, r.Examples)
	}
}

func TestOutcomes(t *testing.T) {
	in := Input{IDBase: 100, Produced: 5, Producer: []ProducerLine{
		{Tag: 'A', ID: 100}, {Tag: 'F', ID: 101, Err: "x"}, {Tag: 'R', ID: 102},
		{Tag: 'A', ID: 104}, {Tag: 'F', ID: 104},
	}}
	r := Analyze(in)
	if r.MissingOutcome != 1 || r.DoubleOutcome != 1 || r.Acked != 2 || r.SendFailed != 2 || r.Rejected != 1 {
		t.Fatalf("%+v", r)
	}
}

func TestDeadLetters(t *testing.T) {
	w := newWorld(10, 2, 1)
	kind := map[int64]Kind{2: KindPoison, 5: KindPanicAlways, 7: KindPoison, 8: KindPanicOnce}
	for i := range w.in.Log {
		w.in.Log[i].Kind = kind[w.in.Log[i].ID]
	}
	for i := range w.in.Producer {
		w.in.Producer[i].Kind = kind[w.in.Producer[i].ID]
	}
	w.in.DLTEnabled = true
	w.in.DLT = []DLTRecord{{ID: 2, Failure: "decode"}, {ID: 5, Failure: "handler"}, {ID: 5, Failure: "handler"}}
	w.in.Lifetimes = []Lifetime{w.lifetime("c1", 0, 1, 3, 4, 6, 8, 9)}
	r := Analyze(w.in)
	if r.DLTExpected != 3 || r.DLTUnique != 2 || r.DLTRecords != 3 || r.DLTMissing != 1 || r.DLTUnexpected != 0 {
		t.Fatalf("dlt: %+v", r)
	}
	// id 7 is neither handled nor dead-lettered: lost, and its offset is
	// below the committed offset.
	if r.Lost != 1 || r.LostIDs[0] != 7 || r.CommittedUnhandled != 1 {
		t.Fatalf("lost=%d %v committed-unhandled=%d", r.Lost, r.LostIDs, r.CommittedUnhandled)
	}
	// A poison message in the DLT marked as a handler failure, or a bad
	// message handled successfully, is reported.
	w.in.DLT = append(w.in.DLT, DLTRecord{ID: 7, Failure: "handler"})
	w.in.Lifetimes[0].Events = append(w.in.Lifetimes[0].Events, w.h(5))
	r = Analyze(w.in)
	if r.DLTWrongFailure != 1 || r.BadHandled != 1 || r.Lost != 0 || r.DLTMissing != 0 {
		t.Fatalf("%+v", r)
	}
}

func TestCommitDecreases(t *testing.T) {
	s := []CommitSample{
		{Time: 1, Partition: 0, Offset: -1}, {Time: 2, Partition: 0, Offset: 10},
		{Time: 3, Partition: 0, Offset: 10}, {Time: 4, Partition: 0, Offset: 8}, // decrease
		{Time: 5, Partition: 0, Offset: 20}, {Time: 6, Partition: 0, Offset: -1}, // lost commit
		{Time: 1, Partition: 1, Offset: 5}, {Time: 2, Partition: 1, Offset: 7},
	}
	var msgs []string
	n, last := CommitDecreases(s, func(m string) { msgs = append(msgs, m) })
	if n != 2 || last[1] != 7 {
		t.Fatalf("n=%d last=%v msgs=%v", n, last, msgs)
	}
	if r := Analyze(Input{Produced: -1, Samples: s}); r.CommitDecreases != 2 {
		t.Fatalf("report: %d", r.CommitDecreases)
	}
}

func TestFormatsRoundTrip(t *testing.T) {
	var b []byte
	b = append(b, "S 5\n"...)
	b = AppendAssigned(b, 10, 1, []int{0, 2})
	b = AppendHandled(b, 11, Handled{Partition: 2, Offset: 40, ID: 7, Key: "k7", Seq: 3})
	b = AppendReleased(b, 12, 1)
	b = AppendAssigned(b, 13, 2, nil)
	b = append(b, "E 14 -\n"...)
	b = append(b, "H 15 1 2"...) // torn last line
	lt, err := ParseConsumerLog("x", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if lt.Start != 5 || !lt.Clean || lt.End != 14 || lt.Malformed != 1 || len(lt.Events) != 4 {
		t.Fatalf("%+v", lt)
	}
	if h := lt.Events[1].H; lt.Events[1].Type != EvHandled || h != (Handled{2, 40, 7, "k7", 3}) {
		t.Fatalf("handled: %+v", lt.Events[1])
	}
	if !slices.Equal(lt.Events[0].Parts, []int{0, 2}) || lt.Events[3].Parts != nil {
		t.Fatalf("parts: %+v", lt.Events)
	}

	var p []byte
	p = AppendProducerLine(p, ProducerLine{Tag: 'A', Time: 1, ID: 2, Key: "k", Seq: 3, Kind: KindPanicOnce, Partition: 4, Offset: 5, LatencyUs: 6})
	p = AppendProducerLine(p, ProducerLine{Tag: 'F', Time: 1, ID: 3, Key: "k", Seq: 4, LatencyUs: 7, Err: "mq: delivery timeout\nafter 5s"})
	p = AppendProducerLine(p, ProducerLine{Tag: 'R', Time: 1, ID: 4, Key: "k", Seq: 5, LatencyUs: 8})
	ls, bad, err := ParseProducerLog(strings.NewReader(string(p) + "A 1 2"))
	if err != nil || bad != 1 || len(ls) != 3 {
		t.Fatalf("%v %d %+v", err, bad, ls)
	}
	if ls[0].Kind != KindPanicOnce || ls[0].Offset != 5 || ls[1].Err != "mq: delivery timeout after 5s" || ls[2].Err != "-" {
		t.Fatalf("%+v", ls)
	}
}

func TestRedeliveries(t *testing.T) {
	w := newWorld(10, 1, 1)
	a := w.lifetime("a", 0, 1, 2, 3, 4)
	for i := range a.Events {
		a.Events[i].Time = int64(i)
	}
	b := w.lifetime("b", 3, 4, 5, 6, 7, 8, 9)
	for i := range b.Events {
		b.Events[i].Time = int64(100 + i)
	}
	rd := Redeliveries([]Lifetime{b, a}) // order of the lifetimes does not matter, time does
	if len(rd) != 2 || rd[0].Offset != 3 || rd[0].First != "a" || rd[0].Again != "b" || rd[0].FirstAt != 4 {
		t.Fatalf("%+v", rd)
	}
}
