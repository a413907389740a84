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
