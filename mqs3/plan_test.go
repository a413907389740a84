package mqs3

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func recsAt(offsets ...int64) []Record {
	recs := make([]Record, len(offsets))
	for i, o := range offsets {
		recs[i] = Record{Topic: "t", Offset: o}
	}
	return recs
}

func span(first, last int64) []int64 {
	var s []int64
	for o := first; o <= last; o++ {
		s = append(s, o)
	}
	return s
}

func obj(first, last int64) Object {
	return Object{Key: ObjectKey("", "t", 0, first, last, false), Topic: "t", First: first, Last: last}
}

func TestPlanRun(t *testing.T) {
	for _, tc := range []struct {
		name            string
		run             []int64
		existing        []Object
		upFirst, upLast int64 // -1: nothing uploaded
		superseded      []Object
	}{
		{name: "nothing there", run: span(10, 19), upFirst: 10, upLast: 19},
		{name: "same range is rewritten", run: span(10, 19), existing: []Object{obj(10, 19)}, upFirst: 10, upLast: 19,
			superseded: []Object{obj(10, 19)}},
		{name: "objects inside are replaced", run: span(10, 19), existing: []Object{obj(10, 12), obj(13, 15), obj(16, 19)},
			upFirst: 10, upLast: 19, superseded: []Object{obj(10, 12), obj(13, 15), obj(16, 19)}},
		{name: "object straddling the start holds the head", run: span(10, 19), existing: []Object{obj(5, 14)},
			upFirst: 15, upLast: 19},
		{name: "object straddling the end: cut before it", run: span(10, 19), existing: []Object{obj(15, 30)},
			upFirst: 10, upLast: 14},
		{name: "both ends, and one inside", run: span(10, 29), existing: []Object{obj(0, 12), obj(14, 16), obj(25, 40)},
			upFirst: 13, upLast: 24, superseded: []Object{obj(14, 16)}},
		{name: "covered entirely", run: span(10, 19), existing: []Object{obj(0, 40)}, upFirst: -1},
		{name: "starts at the run's start and ends after it", run: span(10, 19), existing: []Object{obj(10, 25)}, upFirst: -1},
		{name: "redundant nested object is deleted", run: span(20, 29), existing: []Object{obj(0, 24), obj(5, 9), obj(20, 22)},
			upFirst: 25, upLast: 29, superseded: []Object{obj(5, 9), obj(20, 22)}},
		{name: "gzip twin of the same range", run: span(10, 19),
			existing: []Object{obj(10, 19), {Key: ObjectKey("", "t", 0, 10, 19, true), First: 10, Last: 19, Gzip: true}},
			upFirst:  10, upLast: 19,
			superseded: []Object{{Key: ObjectKey("", "t", 0, 10, 19, true), First: 10, Last: 19, Gzip: true}, obj(10, 19)}},
		{name: "offset gaps", run: []int64{10, 12, 14, 16}, existing: []Object{obj(5, 11), obj(13, 13), obj(15, 20)},
			upFirst: 12, upLast: 14, superseded: []Object{obj(13, 13)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := recsAt(tc.run...)
			p := planRun(recs, tc.existing)
			if tc.upFirst < 0 {
				require.GreaterOrEqual(t, p.lo, p.hi, "nothing to upload")
			} else {
				require.Less(t, p.lo, p.hi)
				require.Equal(t, tc.upFirst, recs[p.lo].Offset)
				require.Equal(t, tc.upLast, recs[p.hi-1].Offset)
			}
			require.ElementsMatch(t, tc.superseded, p.superseded)
			require.Len(t, p.kept, len(tc.existing)-len(tc.superseded))
		})
	}
}
