package offsets

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInOrder(t *testing.T) {
	tr := New(-1)
	assert.Equal(t, int64(-1), tr.CommitPoint())
	for o := int64(5); o < 10; o++ {
		require.True(t, tr.Begin(o))
		assert.Equal(t, o+1, tr.Done(o))
	}
	assert.Equal(t, 0, tr.InFlight())
}

func TestOutOfOrderWaitsForGap(t *testing.T) {
	tr := New(100)
	for o := int64(100); o < 105; o++ {
		tr.Begin(o)
	}
	assert.Equal(t, int64(100), tr.Done(103))
	assert.Equal(t, int64(100), tr.Done(101))
	assert.Equal(t, int64(102), tr.Done(100), "100 and 101 done, 102 not yet")
	assert.Equal(t, int64(104), tr.Done(102))
	assert.Equal(t, int64(105), tr.Done(104))
}

func TestNeverBackwards(t *testing.T) {
	tr := New(50)
	assert.False(t, tr.Begin(10), "offset below the start is rejected")
	tr.Begin(50)
	assert.False(t, tr.Begin(50), "duplicates are rejected")
	assert.Equal(t, int64(51), tr.Done(50))
	assert.Equal(t, int64(51), tr.Done(20), "unknown offsets do not move the point")
}

func TestRandomCompletionMatchesModel(t *testing.T) {
	tr := New(0)
	const n = 5000 // forces ring growth
	order := rand.Perm(n)
	for o := 0; o < n; o++ {
		require.True(t, tr.Begin(int64(o)))
	}
	done := make([]bool, n)
	for _, o := range order {
		done[o] = true
		want := int64(0)
		for want < n && done[want] {
			want++
		}
		require.Equal(t, want, tr.Done(int64(o)))
	}
}

func BenchmarkInOrder(b *testing.B) {
	b.ReportAllocs()
	tr := New(0)
	for i := 0; i < b.N; i++ {
		tr.Begin(int64(i))
		tr.Done(int64(i))
	}
}

func TestAdvanceWithNothingInFlight(t *testing.T) {
	tr := New(-1)
	tr.Advance(7)
	assert.Equal(t, int64(7), tr.CommitPoint(), "markers only: the commit point moves past them")
	tr.Advance(5)
	assert.Equal(t, int64(7), tr.CommitPoint(), "never backwards")
	assert.False(t, tr.Begin(6), "an offset Advance passed is not registered")
	assert.Equal(t, 0, tr.InFlight())
}

func TestAdvanceWaitsForEarlierOffsets(t *testing.T) {
	tr := New(10)
	require.True(t, tr.Begin(10))
	require.True(t, tr.Begin(12)) // 11 removed by compaction
	tr.Advance(15)                // 13, 14: an aborted record and its marker
	assert.Equal(t, 2, tr.InFlight(), "the placeholder is not a message in flight")
	assert.Equal(t, int64(10), tr.CommitPoint())
	assert.Equal(t, int64(10), tr.Done(12), "10 is not done yet")
	assert.Equal(t, int64(15), tr.Done(10), "everything below 15 is done or needs no processing")
	assert.Equal(t, 0, tr.InFlight())
	assert.False(t, tr.Begin(14))
	assert.True(t, tr.Begin(15))
}

func TestAdvanceNotPastRegistered(t *testing.T) {
	tr := New(0)
	require.True(t, tr.Begin(0))
	require.True(t, tr.Begin(1))
	tr.Advance(2) // next = last registered + 1: nothing to skip
	tr.Advance(1)
	assert.Equal(t, 2, tr.InFlight())
	tr.Done(0)
	assert.Equal(t, int64(2), tr.Done(1))
}

func TestAdvanceGrowsRing(t *testing.T) {
	tr := New(0)
	var off int64
	for i := 0; i < 200; i++ { // more entries than the initial ring holds
		require.True(t, tr.Begin(off))
		tr.Advance(off + 3)
		off += 3
	}
	assert.Equal(t, 200, tr.InFlight())
	for o := int64(0); o < off; o += 3 {
		tr.Done(o)
	}
	assert.Equal(t, off, tr.CommitPoint())
	assert.Equal(t, 0, tr.InFlight())
}

func TestReset(t *testing.T) {
	tr := New(10)
	for o := int64(10); o < 15; o++ {
		assert.True(t, tr.Begin(o))
	}
	tr.Done(10)
	assert.EqualValues(t, 11, tr.CommitPoint())
	tr.Reset(3) // backwards: a seek
	assert.EqualValues(t, 3, tr.CommitPoint())
	assert.Zero(t, tr.InFlight())
	assert.True(t, tr.Begin(3), "offsets below the former ones are accepted again")
	assert.False(t, tr.Begin(2), "but not below the new commit point")
	assert.EqualValues(t, 4, tr.Done(3))
	tr.Reset(100)
	assert.EqualValues(t, 100, tr.CommitPoint())
}
