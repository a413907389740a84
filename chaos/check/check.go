// Package check computes what the chaos runs prove: from what the producers
// say the broker acknowledged, what the consumer processes wrote to their
// files (a record is in a file exactly when the handler completed it), the
// broker's log, end offsets and committed offsets, it counts lost,
// duplicated and out-of-order messages and offsets that moved backwards.
//
// Definitions (see README.md):
//
//   - Lost: an acknowledged message that no consumer process handled (or,
//     for a message meant to fail, that is not in the dead-letter topic).
//   - Duplicate: a handling of a (partition, offset) that had already been
//     handled, by the same or another process. Producer-side duplicates
//     (one message written at two offsets, possible after a retried produce
//     request) are counted apart as LogDupIDs.
//   - Order violation: within one consumer process lifetime and one
//     assignment segment (from a partitions-assigned mark to the next
//     assigned or released mark), a handler sees a record of a key at an
//     offset at or below one it already saw for that key in that segment.
//     With the producer writing every key's sequence numbers in increasing
//     order (LogInversions == 0) this is exactly "seq N seen after seq > N".
//     Across segments (a restart, a rebalance) the consumer resumes from the
//     committed offset, so seeing earlier sequence numbers again is
//     redelivery, counted as duplicates, not as disorder.
//   - Commit decrease: a committed offset of a partition, sampled over
//     time, that is lower than an earlier sample.
package check

import (
	"cmp"
	"fmt"
	"slices"
)

// Kind says how a chaos message is meant to behave in the consumer.
type Kind int

const (
	KindOK          Kind = iota // handled normally
	KindPoison                  // value is not JSON: decode error, dead-lettered
	KindPanicAlways             // the handler always panics: dead-lettered
	KindPanicOnce               // the handler panics on the first attempt only
)

// Bad reports whether a message of this kind is meant to end in the DLT.
func (k Kind) Bad() bool { return k == KindPoison || k == KindPanicAlways }

func (k Kind) String() string {
	switch k {
	case KindOK:
		return "ok"
	case KindPoison:
		return "poison"
	case KindPanicAlways:
		return "panic-always"
	case KindPanicOnce:
		return "panic-once"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Handled is a message a consumer's handler completed.
type Handled struct {
	Partition int
	Offset    int64
	ID        int64
	Key       string
	Seq       int64
}

// EventType tags consumer log events.
type EventType uint8

const (
	EvHandled EventType = iota
	EvAssign
	EvRelease
)

// Event is one line of a consumer log.
type Event struct {
	Type  EventType
	Time  int64
	Gen   int   // EvAssign, EvRelease: the process's own generation counter
	Parts []int // EvAssign
	H     Handled
}

// Lifetime is everything one consumer process wrote.
type Lifetime struct {
	Name       string
	Start, End int64
	Clean      bool   // Run returned (E line)
	ExitErr    string // what Run returned ("-" for nil)
	Malformed  int
	Events     []Event
}

// LogRecord is a record of the main topic as the broker stores it.
type LogRecord struct {
	Partition int
	Offset    int64
	ID        int64
	Key       string
	Seq       int64
	Kind      Kind
}

// DLTRecord is a record of the dead-letter topic.
type DLTRecord struct {
	ID      int64
	Failure string // mq-failure header: "decode" or "handler"
}

// CommitSample is a committed offset observed at some time.
type CommitSample struct {
	Time      int64
	Partition int
	Offset    int64 // -1: no commit
}

// Input is what a scenario collected.
type Input struct {
	// Producer lines from every producer process, and the IDs they
	// allocated: [IDBase, IDBase+Produced). Produced < 0 skips the
	// exactly-one-outcome check (a producer without a summary).
	Producer []ProducerLine
	IDBase   int64
	Produced int

	Log       []LogRecord   // the whole main topic; nil skips log checks
	End       map[int]int64 // end offsets at the end of the run
	Committed map[int]int64 // committed offsets at the end of the run
	Lifetimes []Lifetime

	DLTEnabled bool
	DLT        []DLTRecord

	Samples []CommitSample
}

// Report holds the figures. Examples lists a few offending items per check.
type Report struct {
	Produced       int // IDs allocated (attempted sends)
	Acked          int // unique IDs acknowledged
	SendFailed     int // outcome reported as failed
	Rejected       int // not accepted by Send/SendAsync
	MissingOutcome int // allocated IDs with no A/F/R line
	DoubleOutcome  int // IDs with more than one line

	LogRecords    int
	LogDupIDs     int // extra copies of IDs written more than once
	LogInversions int // a key's seq lower than an earlier one, in log order

	Handled       int // handler completions, redeliveries included
	HandledUnique int // unique IDs handled
	Duplicates    int // completions of an already-handled (partition, offset)

	Lost         int // acknowledged, neither handled nor (if meant to fail) dead-lettered
	LostNotInLog int // of those, not in the broker's log at all
	LostIDs      []int64

	CommittedUnhandled int   // records below the committed offset never handled nor dead-lettered
	UncommittedTail    int64 // sum of end - committed

	OrderViolations int // consumer-side, see the package doc
	SeqRegressions  int // seq-based count within segments (violations + log inversions seen)
	Segments        int // partitions-assigned marks
	Lifetimes       int

	CommitSamples   int
	CommitDecreases int

	DLTExpected     int // bad records in the log (or acked bad IDs without a log)
	DLTRecords      int
	DLTUnique       int
	DLTMissing      int
	DLTUnexpected   int
	DLTWrongFailure int
	BadHandled      int // bad records that reached a successful handler call

	Examples []string
}

const maxExamples = 12

func (r *Report) example(format string, args ...any) {
	if len(r.Examples) < maxExamples {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

type po struct {
	p int
	o int64
}

// Analyze computes the report.
func Analyze(in Input) Report {
	var r Report

	// --- producer outcomes ---
	acked := make(map[int64]Kind)
	kinds := make(map[int64]Kind)
	lines := make(map[int64]int)
	rejected := make(map[int64]bool)
	for _, l := range in.Producer {
		lines[l.ID]++
		kinds[l.ID] = l.Kind
		switch l.Tag {
		case 'A':
			acked[l.ID] = l.Kind
		case 'F':
			r.SendFailed++
		case 'R':
			r.Rejected++
			rejected[l.ID] = true
		}
	}
	r.Acked = len(acked)
	for id, n := range lines {
		if n > 1 {
			r.DoubleOutcome++
			r.example("id %d: %d outcomes reported", id, n)
		}
	}
	if in.Produced >= 0 {
		r.Produced = in.Produced
		for id := in.IDBase; id < in.IDBase+int64(in.Produced); id++ {
			if lines[id] == 0 {
				r.MissingOutcome++
				r.example("id %d: no outcome reported", id)
			}
		}
	} else {
		r.Produced = len(lines)
	}

	// --- the broker's log ---
	inLog := make(map[int64]int)
	logAt := make(map[po]LogRecord)
	if in.Log != nil {
		r.LogRecords = len(in.Log)
		recs := slices.Clone(in.Log)
		slices.SortFunc(recs, func(a, b LogRecord) int {
			return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
		})
		maxSeq := make(map[string]int64)
		for _, rec := range recs {
			inLog[rec.ID]++
			logAt[po{rec.Partition, rec.Offset}] = rec
			if s, ok := maxSeq[rec.Key]; ok && rec.Seq < s {
				r.LogInversions++
				r.example("log: key %s seq %d (id %d) at offset %d/%d after seq %d: written out of order by the producer",
					rec.Key, rec.Seq, rec.ID, rec.Partition, rec.Offset, s)
			}
			if s, ok := maxSeq[rec.Key]; !ok || rec.Seq > s {
				maxSeq[rec.Key] = rec.Seq
			}
			if _, ok := kinds[rec.ID]; !ok {
				kinds[rec.ID] = rec.Kind
			}
		}
		for _, n := range inLog {
			if n > 1 {
				r.LogDupIDs += n - 1
			}
		}
	}

	// --- dead-letter topic ---
	dlt := make(map[int64]int)
	if in.DLTEnabled {
		r.DLTRecords = len(in.DLT)
		for _, d := range in.DLT {
			dlt[d.ID]++
			k := kinds[d.ID]
			if (k == KindPoison && d.Failure != "decode") || (k == KindPanicAlways && d.Failure != "handler") {
				r.DLTWrongFailure++
				r.example("dlt id %d (%v) has mq-failure %q", d.ID, k, d.Failure)
			}
		}
		r.DLTUnique = len(dlt)
		expected := make(map[int64]bool)
		if in.Log != nil {
			for _, rec := range in.Log {
				if rec.Kind.Bad() {
					expected[rec.ID] = true
				}
			}
		} else {
			for id, k := range acked {
				if k.Bad() {
					expected[id] = true
				}
			}
		}
		r.DLTExpected = len(expected)
		for id := range expected {
			if dlt[id] == 0 {
				r.DLTMissing++
				r.example("id %d (%v) not in the DLT", id, kinds[id])
			}
		}
		for id := range dlt {
			if !expected[id] {
				r.DLTUnexpected++
				r.example("id %d (%v) in the DLT but not expected there", id, kinds[id])
			}
		}
	}

	// --- consumers ---
	handledIDs := make(map[int64]bool)
	handledAt := make(map[po]int)
	r.Lifetimes = len(in.Lifetimes)
	for _, lt := range in.Lifetimes {
		type last struct {
			off int64
			seq int64
		}
		seg := make(map[string]last)
		for _, ev := range lt.Events {
			switch ev.Type {
			case EvAssign, EvRelease:
				if ev.Type == EvAssign {
					r.Segments++
				}
				seg = make(map[string]last)
				continue
			}
			h := ev.H
			r.Handled++
			handledIDs[h.ID] = true
			k := po{h.Partition, h.Offset}
			handledAt[k]++
			if handledAt[k] > 1 {
				r.Duplicates++
			}
			if kinds[h.ID].Bad() {
				r.BadHandled++
				r.example("%s: bad message id %d (%v) handled", lt.Name, h.ID, kinds[h.ID])
			}
			if rec, ok := logAt[k]; ok && rec.ID != h.ID {
				r.example("%s: handled id %d at %d/%d but the log has id %d there", lt.Name, h.ID, h.Partition, h.Offset, rec.ID)
			}
			prev, ok := seg[h.Key]
			if ok {
				if h.Seq < prev.seq {
					r.SeqRegressions++
				}
				if h.Offset <= prev.off {
					r.OrderViolations++
					r.example("%s: key %s seq %d (offset %d/%d) handled after seq %d (offset %d) in the same assignment",
						lt.Name, h.Key, h.Seq, h.Partition, h.Offset, prev.seq, prev.off)
				}
			}
			if !ok || h.Offset > prev.off {
				seg[h.Key] = last{off: h.Offset, seq: max(h.Seq, prev.seq)}
			} else if h.Seq > prev.seq {
				seg[h.Key] = last{off: prev.off, seq: h.Seq}
			}
		}
	}
	r.HandledUnique = len(handledIDs)

	// --- loss ---
	ackedIDs := make([]int64, 0, len(acked))
	for id := range acked {
		ackedIDs = append(ackedIDs, id)
	}
	slices.Sort(ackedIDs)
	for _, id := range ackedIDs {
		k := acked[id]
		ok := handledIDs[id]
		if in.DLTEnabled && k.Bad() {
			ok = dlt[id] > 0
		}
		if ok {
			continue
		}
		r.Lost++
		if len(r.LostIDs) < maxExamples {
			r.LostIDs = append(r.LostIDs, id)
		}
		if in.Log != nil && inLog[id] == 0 {
			r.LostNotInLog++
		}
	}

	// --- committed offsets vs what was handled ---
	if in.Log != nil && in.Committed != nil {
		for _, rec := range in.Log {
			c, ok := in.Committed[rec.Partition]
			if !ok || rec.Offset >= c {
				continue
			}
			if handledAt[po{rec.Partition, rec.Offset}] > 0 {
				continue
			}
			if in.DLTEnabled && rec.Kind.Bad() && dlt[rec.ID] > 0 {
				continue
			}
			r.CommittedUnhandled++
			r.example("offset %d/%d (id %d, %v) is below the committed offset %d but was never handled",
				rec.Partition, rec.Offset, rec.ID, rec.Kind, c)
		}
	}
	for p, e := range in.End {
		c := max(in.Committed[p], 0)
		if e > c {
			r.UncommittedTail += e - c
		}
	}

	// --- committed offsets over time ---
	r.CommitSamples = len(in.Samples)
	r.CommitDecreases, _ = CommitDecreases(in.Samples, func(s string) { r.example("%s", s) })
	return r
}

// CommitDecreases counts samples where a partition's committed offset is
// lower than in the previous sample of that partition (a commit going away,
// to -1, counts too).
func CommitDecreases(samples []CommitSample, report func(string)) (int, map[int]int64) {
	s := slices.Clone(samples)
	slices.SortStableFunc(s, func(a, b CommitSample) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Time, b.Time))
	})
	n := 0
	lastOff := make(map[int]int64)
	for _, x := range s {
		prev, seen := lastOff[x.Partition]
		if seen && x.Offset < prev {
			n++
			if report != nil {
				report(fmt.Sprintf("partition %d: committed offset went from %d to %d", x.Partition, prev, x.Offset))
			}
		}
		if x.Offset >= 0 || seen {
			lastOff[x.Partition] = x.Offset
		}
	}
	return n, lastOff
}

// Redelivery is a (partition, offset) handled again after a first time.
type Redelivery struct {
	Partition int
	Offset    int64
	First     string // lifetime that handled it first
	FirstAt   int64
	Again     string
	AgainAt   int64
}

// Redeliveries lists every repeated handling. Handlings are ordered by
// their timestamps (all processes run on one machine, one clock), so that
// "first" is the earliest handling whatever the order of lts.
func Redeliveries(lts []Lifetime) []Redelivery {
	type hev struct {
		name string
		at   int64
		k    po
	}
	var evs []hev
	for _, lt := range lts {
		for _, ev := range lt.Events {
			if ev.Type == EvHandled {
				evs = append(evs, hev{lt.Name, ev.Time, po{ev.H.Partition, ev.H.Offset}})
			}
		}
	}
	slices.SortStableFunc(evs, func(a, b hev) int { return cmp.Compare(a.at, b.at) })
	first := make(map[po]hev)
	var out []Redelivery
	for _, e := range evs {
		if f, ok := first[e.k]; ok {
			out = append(out, Redelivery{Partition: e.k.p, Offset: e.k.o, First: f.name, FirstAt: f.at, Again: e.name, AgainAt: e.at})
			continue
		}
		first[e.k] = e
	}
	return out
}
