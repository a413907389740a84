package fetch

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A paused partition is left out of fetch requests while the others go on;
// what it buffered before stays; resumed, it continues where it stopped.
func TestPausedPartitionIsNotFetched(t *testing.T) {
	fl := newFakeLogs(t, 1)
	fl.createTopic("t", 2)
	fl.appendRecords("t", 0, 20, 10)
	fl.appendRecords("t", 1, 20, 10)
	f := newTestFetcher(t, fl, Config{})
	p0 := assign(t, f, "t", 0, 0)
	p1 := assign(t, f, "t", 1, 0)
	assert.Equal(t, span(0, 20), drain(t, p0, 20))
	assert.Equal(t, span(0, 20), drain(t, p1, 20))

	p0.SetPaused(true)
	require.True(t, p0.Paused())
	// A request for p0 may be in flight: wait until one without it was sent.
	sent := len(fl.requests())
	fl.appendRecords("t", 1, 1, 10)
	assert.Equal(t, span(20, 21), drain(t, p1, 1))
	require.Eventually(t, func() bool {
		for _, r := range fl.requests()[sent:] {
			if len(r.Parts) == 1 && r.Parts[0].ID == 1 {
				return true
			}
		}
		return false
	}, 10*time.Second, time.Millisecond)
	mark := len(fl.requests())
	fl.appendRecords("t", 0, 10, 10)
	fl.appendRecords("t", 1, 10, 10)
	assert.Equal(t, span(21, 31), drain(t, p1, 10), "the other partition goes on")
	for _, r := range fl.requests()[mark:] {
		for _, fp := range r.Parts {
			assert.NotEqual(t, int32(0), fp.ID, "a paused partition is not fetched")
		}
	}
	// A request in flight at the pause (a long poll) may have brought
	// records: they are kept, in order.
	next := int64(20)
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	if c, err := p0.Next(ctx); err == nil {
		assert.Equal(t, int64(20), c.Records[0].Offset)
		next = c.NextOffset
		c.Release()
	}

	p0.SetPaused(false)
	assert.False(t, p0.Paused())
	got := drain(t, p0, int(30-next))
	assert.Equal(t, span(next, 30), got, "resumed where it stopped")
	fl.appendRecords("t", 0, 5, 10)
	assert.Equal(t, span(30, 35), drain(t, p0, 5), "and fetching again")
}

// SeekTo drops what was buffered and restarts the partition at the offset,
// backwards or forwards.
func TestSeekTo(t *testing.T) {
	fl := newFakeLogs(t, 1)
	fl.createTopic("t", 1)
	fl.appendRecords("t", 0, 50, 10)
	f := newTestFetcher(t, fl, Config{})
	p := assign(t, f, "t", 0, 0)
	assert.Equal(t, span(0, 50), drain(t, p, 50))
	require.NoError(t, p.SeekTo(10))
	assert.Equal(t, span(10, 50), drain(t, p, 40))
	require.NoError(t, p.SeekTo(45))
	assert.Equal(t, span(45, 50), drain(t, p, 5))
	require.Error(t, p.SeekTo(-1))
	f.Revoke(p)
	assert.ErrorIs(t, p.SeekTo(0), ErrRevoked)
}

// A seek made while the start offset is still being looked up wins.
func TestSeekToBeforePositioned(t *testing.T) {
	fl := newFakeLogs(t, 1)
	fl.createTopic("t", 1)
	fl.appendRecords("t", 0, 30, 10)
	f := newTestFetcher(t, fl, Config{})
	p := assign(t, f, "t", 0, OffsetLatest)
	require.NoError(t, p.SeekTo(5))
	assert.Equal(t, span(5, 30), drain(t, p, 25))
}
