package mq

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/fetch"
	"github.com/segmentio/kafka-go"
)

// headersFrom turns fuzz bytes into a header list: records separated by
// '\n', key and value by '='.
func headersFrom(data string) []kafka.Header {
	var hs []kafka.Header
	for _, rec := range strings.Split(data, "\n") {
		if rec == "" {
			continue
		}
		k, v, _ := strings.Cut(rec, "=")
		hs = append(hs, kafka.Header{Key: k, Value: []byte(v)})
	}
	return hs
}

// FuzzFailureHeaders checks the header handling of the error pipeline on
// arbitrary incoming headers: it never panics, keeps foreign headers, writes
// each mq header exactly once, and keeps attempt counts and due times
// parseable.
func FuzzFailureHeaders(f *testing.F) {
	f.Add("trace=abc", "a,b", 2, 1)
	f.Add(HeaderAttempts+"=7\n"+HeaderOriginalTopic+"=orders\n"+HeaderOriginalPartition+"=3", "persist", 1, 0)
	f.Add(HeaderAttempts+"=not-a-number\n"+HeaderDueTime+"=-1\n"+HeaderHandlersDone+"=,,", "", 0, 2)
	f.Add("=\n==\n"+HeaderError+"=x", "h", 99, 1)
	f.Fuzz(func(t *testing.T, raw, done string, attempts, tier int) {
		if tier < 0 || tier > 2 || attempts < 0 || attempts > 1<<20 {
			t.Skip()
		}
		r := RetryTopicRecoverer([]time.Duration{time.Second, time.Minute}, "")
		m := inbound{ps: &partitionState{topic: "t", main: "t", id: 1},
			rec: &fetch.Record{Offset: 42, Timestamp: time.UnixMilli(1700000000000), Headers: headersFrom(raw)}}
		f := &failure{err: errors.New("boom"), handlers: []string{"h"}, attempts: attempts, done: splitNames(done)}
		out := failureHeaders(m, f, "g", tier, r)

		count := map[string]int{}
		for _, h := range out {
			count[h.Key]++
		}
		for _, k := range []string{HeaderConsumerGroup, HeaderFailure, HeaderFailedHandler, HeaderError, HeaderAttempts} {
			if count[k] != 1 {
				t.Fatalf("header %s written %d times", k, count[k])
			}
		}
		if count[HeaderOriginalTopic] < 1 {
			t.Fatalf("no %s header", HeaderOriginalTopic)
		}
		n, err := strconv.Atoi(header(out, HeaderAttempts))
		if err != nil || n < attempts {
			t.Fatalf("attempts header %q (err %v), want >= %d", header(out, HeaderAttempts), err, attempts)
		}
		if tier > 0 {
			if _, err := strconv.ParseInt(header(out, HeaderDueTime), 10, 64); err != nil {
				t.Fatalf("due header %q: %v", header(out, HeaderDueTime), err)
			}
		}
		for _, h := range m.rec.Headers {
			if !strings.HasPrefix(h.Key, "mq-") && count[h.Key] == 0 {
				t.Fatalf("foreign header %q dropped", h.Key)
			}
		}
		for _, name := range splitNames(header(out, HeaderHandlersDone)) {
			if !slices.Contains(f.done, name) {
				t.Fatalf("handlers-done lists %q, not in %v", name, f.done)
			}
		}
	})
}
