package check

import (
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

// flow builds one partition's acks (offset i acked at acks[i] ms) and one
// consumer's handlings (offset, ms) pairs.
func flow(p int, acks []int64, handled ...[2]int64) ([]ProducerLine, Lifetime) {
	var lines []ProducerLine
	for i, t := range acks {
		lines = append(lines, ProducerLine{Tag: 'A', Time: t * ms, Partition: p, Offset: int64(i)})
	}
	lt := Lifetime{Name: "c"}
	for _, h := range handled {
		lt.Events = append(lt.Events, Event{Type: EvHandled, Time: h[1] * ms, H: Handled{Partition: p, Offset: h[0]}})
	}
	return lines, lt
}

func every(n int, step, from int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = from + int64(i)*step
	}
	return out
}

func stallOf(t *testing.T, lines []ProducerLine, lts []Lifetime, end int64, p int) Stall {
	t.Helper()
	st := PartitionStalls(lines, lts, end*ms)
	s, ok := st[p]
	if !ok {
		t.Fatalf("no stall figure for partition %d: %v", p, st)
	}
	return s
}

func TestStallSteadyFlow(t *testing.T) {
	acks := every(50, 10, 0)
	var hs [][2]int64
	for i, a := range acks {
		hs = append(hs, [2]int64{int64(i), a + 1})
	}
	lines, lt := flow(0, acks, hs...)
	if s := stallOf(t, lines, []Lifetime{lt}, 1000, 0); s.Duration != time.Millisecond {
		t.Fatalf("steady flow handled 1ms after each ack: stall %v, want 1ms", s.Duration)
	}
}

func TestStallOutage(t *testing.T) {
	acks := every(60, 10, 0) // acked every 10ms until 590ms
	var hs [][2]int64
	for i, a := range acks {
		h := a + 1
		if a > 100 && a < 600 {
			h = 700 + int64(i) // nothing handled from 101ms to 700ms
		}
		hs = append(hs, [2]int64{int64(i), h})
	}
	lines, lt := flow(3, acks, hs...)
	s := stallOf(t, lines, []Lifetime{lt}, 2000, 3)
	// Last progress at 101ms (offset 10); offset 11 acked at 110ms stays
	// pending until 711ms: the stall runs from 110ms to 711ms.
	if s.Duration != 601*time.Millisecond || s.From != 110*ms || s.To != 711*ms {
		t.Fatalf("stall %v from %dms to %dms, want 601ms from 110ms to 711ms", s.Duration, s.From/ms, s.To/ms)
	}
}

func TestStallNotBeforeFirstHandling(t *testing.T) {
	// Acked from 0ms, the consumer starts handling at 500ms and keeps up.
	acks := every(10, 10, 0)
	var hs [][2]int64
	for i := range acks {
		hs = append(hs, [2]int64{int64(i), 500 + int64(i)})
	}
	lines, lt := flow(0, acks, hs...)
	if s := stallOf(t, lines, []Lifetime{lt}, 1000, 0); s.Duration != time.Millisecond {
		t.Fatalf("start-up counted as a stall: %v (want 1ms, the gaps between handlings)", s.Duration)
	}
}

func TestStallRedeliveryIsNotProgress(t *testing.T) {
	// Offsets 0..5 handled by 100ms; offset 6 acked at 110ms is handled at
	// 500ms, while another process handles 3, 4 and 5 again at 200-400ms.
	acks := []int64{0, 10, 20, 30, 40, 50, 110}
	lines, first := flow(1, acks, [2]int64{0, 60}, [2]int64{1, 70}, [2]int64{2, 80}, [2]int64{3, 90}, [2]int64{4, 95}, [2]int64{5, 100}, [2]int64{6, 500})
	_, again := flow(1, nil, [2]int64{3, 200}, [2]int64{4, 300}, [2]int64{5, 400})
	again.Name = "c2"
	s := stallOf(t, lines, []Lifetime{first, again}, 1000, 1)
	if s.Duration != 390*time.Millisecond {
		t.Fatalf("stall %v, want 390ms (offset 6 pending from 110ms to 500ms; redeliveries are not progress)", s.Duration)
	}
}

func TestStallIdlePartitionIsNotStalled(t *testing.T) {
	// Nothing to do between 101ms and 1000ms.
	lines, lt := flow(2, []int64{0, 100, 1000}, [2]int64{0, 1}, [2]int64{1, 101}, [2]int64{2, 1001})
	if s := stallOf(t, lines, []Lifetime{lt}, 2000, 2); s.Duration != time.Millisecond {
		t.Fatalf("idle time counted: stall %v, want 1ms", s.Duration)
	}
}

func TestStallNeverHandledCountsUntilEnd(t *testing.T) {
	lines, lt := flow(0, []int64{0, 10, 20}, [2]int64{0, 1}, [2]int64{1, 11})
	s := stallOf(t, lines, []Lifetime{lt}, 520, 0)
	if s.Duration != 500*time.Millisecond {
		t.Fatalf("stall %v, want 500ms (offset 2 acked at 20ms, never handled, end 520ms)", s.Duration)
	}
}

func TestStallHandledBeforeAckSeen(t *testing.T) {
	// The ack callback of offset 1 ran after the consumer had handled it;
	// offset 2 waits from its ack (410ms) to 500ms.
	lines, lt := flow(0, []int64{0, 400, 410}, [2]int64{0, 1}, [2]int64{1, 300}, [2]int64{2, 500})
	if s := stallOf(t, lines, []Lifetime{lt}, 1000, 0); s.Duration != 90*time.Millisecond {
		t.Fatalf("stall %v, want 90ms (offset 1 was never pending)", s.Duration)
	}
}

func TestMaxStallAndSendLatency(t *testing.T) {
	st := map[int]Stall{0: {Partition: 0, Duration: 5}, 1: {Partition: 1, Duration: 9}, 2: {Partition: 2, Duration: 9}}
	if got := MaxStall(st); got.Partition != 1 || got.Duration != 9 {
		t.Fatalf("MaxStall = %+v, want partition 1 (ties: lowest)", got)
	}
	if got := MaxStall(nil); got.Duration != 0 {
		t.Fatalf("MaxStall(nil) = %+v", got)
	}
	lines := []ProducerLine{{Tag: 'A', ID: 1, LatencyUs: 10}, {Tag: 'R', ID: 2, LatencyUs: 999}, {Tag: 'F', ID: 3, LatencyUs: 50}, {Tag: 'A', ID: 4, LatencyUs: 20}}
	l, ok := MaxSendLatency(lines)
	if !ok || l.ID != 3 {
		t.Fatalf("MaxSendLatency = %+v %v, want id 3 (rejected sends have no outcome)", l, ok)
	}
	if _, ok := MaxSendLatency(nil); ok {
		t.Fatal("MaxSendLatency(nil) found a line")
	}
}
