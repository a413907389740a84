package check

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Line formats of the files the chaos workers write. One record per line,
// space-separated fields, the first field a one-letter tag. Keys never
// contain spaces. A process killed with SIGKILL can leave nothing worse than
// a missing last line: every line goes to the file in one write(2), and the
// consumer's handler returns only after that write, so a record in the file
// is exactly a message the handler completed.
//
// Consumer log:
//
//	S <unixnano>                                   process started
//	A <unixnano> <gen> <p1,p2,...>                 partitions assigned (a new segment)
//	R <unixnano> <gen>                             partitions released (after the final commit)
//	H <unixnano> <partition> <offset> <id> <key> <seq>   handler completed a message
//	E <unixnano> <error or ->                      Run returned
//
// Producer log:
//
//	A <unixnano> <id> <key> <seq> <kind> <partition> <offset> <latency µs>   acknowledged
//	F <unixnano> <id> <key> <seq> <kind> <latency µs> <error...>             send failed (outcome reported)
//	R <unixnano> <id> <key> <seq> <kind> <latency µs> <error...>             not accepted (sync send error
//	                                                                          before buffering, or async
//	                                                                          send rejected): no outcome follows

// AppendHandled appends a consumer H line.
func AppendHandled(b []byte, t int64, h Handled) []byte {
	return fmt.Appendf(b, "H %d %d %d %d %s %d\n", t, h.Partition, h.Offset, h.ID, h.Key, h.Seq)
}

// AppendAssigned appends a consumer A line.
func AppendAssigned(b []byte, t int64, gen int, parts []int) []byte {
	ps := make([]string, len(parts))
	for i, p := range parts {
		ps[i] = strconv.Itoa(p)
	}
	s := strings.Join(ps, ",")
	if s == "" {
		s = "-"
	}
	return fmt.Appendf(b, "A %d %d %s\n", t, gen, s)
}

// AppendReleased appends a consumer R line.
func AppendReleased(b []byte, t int64, gen int) []byte {
	return fmt.Appendf(b, "R %d %d\n", t, gen)
}

// ParseConsumerLog reads one consumer process's log. Malformed lines (a
// torn last line) are counted, not fatal.
func ParseConsumerLog(name string, r io.Reader) (Lifetime, error) {
	lt := Lifetime{Name: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			lt.Malformed++
			continue
		}
		t, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			lt.Malformed++
			continue
		}
		switch f[0] {
		case "S":
			lt.Start = t
		case "E":
			lt.End = t
			lt.Clean = true
			lt.ExitErr = strings.Join(f[2:], " ")
		case "A":
			if len(f) != 4 {
				lt.Malformed++
				continue
			}
			gen, _ := strconv.Atoi(f[2])
			ev := Event{Type: EvAssign, Time: t, Gen: gen}
			if f[3] != "-" {
				for _, p := range strings.Split(f[3], ",") {
					n, err := strconv.Atoi(p)
					if err == nil {
						ev.Parts = append(ev.Parts, n)
					}
				}
			}
			lt.Events = append(lt.Events, ev)
		case "R":
			gen := 0
			if len(f) > 2 {
				gen, _ = strconv.Atoi(f[2])
			}
			lt.Events = append(lt.Events, Event{Type: EvRelease, Time: t, Gen: gen})
		case "H":
			if len(f) != 7 {
				lt.Malformed++
				continue
			}
			p, e1 := strconv.Atoi(f[2])
			off, e2 := strconv.ParseInt(f[3], 10, 64)
			id, e3 := strconv.ParseInt(f[4], 10, 64)
			seq, e4 := strconv.ParseInt(f[6], 10, 64)
			if e1 != nil || e2 != nil || e3 != nil || e4 != nil {
				lt.Malformed++
				continue
			}
			lt.Events = append(lt.Events, Event{Type: EvHandled, Time: t,
				H: Handled{Partition: p, Offset: off, ID: id, Key: f[5], Seq: seq}})
		default:
			lt.Malformed++
		}
	}
	return lt, sc.Err()
}

// ProducerLine is one parsed producer log line.
type ProducerLine struct {
	Tag       byte // 'A', 'F' or 'R'
	Time      int64
	ID        int64
	Key       string
	Seq       int64
	Kind      Kind
	Partition int
	Offset    int64
	LatencyUs int64
	Err       string
}

// AppendProducerLine appends a producer log line.
func AppendProducerLine(b []byte, l ProducerLine) []byte {
	switch l.Tag {
	case 'A':
		return fmt.Appendf(b, "A %d %d %s %d %d %d %d %d\n", l.Time, l.ID, l.Key, l.Seq, l.Kind, l.Partition, l.Offset, l.LatencyUs)
	default:
		e := strings.ReplaceAll(l.Err, "\n", " ")
		if e == "" {
			e = "-"
		}
		return fmt.Appendf(b, "%c %d %d %s %d %d %d %s\n", l.Tag, l.Time, l.ID, l.Key, l.Seq, l.Kind, l.LatencyUs, e)
	}
}

// ParseProducerLog reads a producer log. It returns the lines and the
// number of malformed ones.
func ParseProducerLog(r io.Reader) ([]ProducerLine, int, error) {
	var out []ProducerLine
	bad := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 7 || len(f[0]) != 1 {
			bad++
			continue
		}
		var l ProducerLine
		var errs [6]error
		l.Tag = f[0][0]
		l.Time, errs[0] = strconv.ParseInt(f[1], 10, 64)
		l.ID, errs[1] = strconv.ParseInt(f[2], 10, 64)
		l.Key = f[3]
		l.Seq, errs[2] = strconv.ParseInt(f[4], 10, 64)
		k, err := strconv.Atoi(f[5])
		errs[3] = err
		l.Kind = Kind(k)
		switch l.Tag {
		case 'A':
			if len(f) != 9 {
				bad++
				continue
			}
			l.Partition, errs[4] = strconv.Atoi(f[6])
			l.Offset, errs[5] = strconv.ParseInt(f[7], 10, 64)
			l.LatencyUs, _ = strconv.ParseInt(f[8], 10, 64)
		case 'F', 'R':
			l.LatencyUs, errs[4] = strconv.ParseInt(f[6], 10, 64)
			l.Err = strings.Join(f[7:], " ")
		default:
			bad++
			continue
		}
		ok := true
		for _, e := range errs {
			if e != nil {
				ok = false
			}
		}
		if !ok {
			bad++
			continue
		}
		out = append(out, l)
	}
	return out, bad, sc.Err()
}
