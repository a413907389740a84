package mq

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPausedSetWithoutRun(t *testing.T) {
	c, err := NewKafkaConsumer[testEvent]([]string{"127.0.0.1:9092"}, "orders", "billing")
	require.NoError(t, err)
	assert.Empty(t, c.Paused())
	c.Pause() // owns nothing: nothing to pause
	assert.Empty(t, c.Paused())
	c.Pause(TopicPartition{"orders", 2}, TopicPartition{"audit", 0}, TopicPartition{"orders", 1})
	assert.Equal(t, []TopicPartition{{"audit", 0}, {"orders", 1}, {"orders", 2}}, c.Paused(), "sorted")
	c.Resume(TopicPartition{"orders", 1}, TopicPartition{"orders", 9})
	assert.Equal(t, []TopicPartition{{"audit", 0}, {"orders", 2}}, c.Paused())
	c.Resume()
	assert.Empty(t, c.Paused())

	assert.ErrorIs(t, c.Seek("orders", 0, 5), ErrNotAssigned)
	assert.ErrorIs(t, c.Seek("orders", 0, -1), ErrInvalidOption)
	assert.ErrorIs(t, c.SeekToTime(context.Background(), "orders", 0, time.Now()), ErrNotAssigned)
}

// A partition's worker sees pauses and seeks through its control: a seek
// drops what is pending and resets the commit point; a pause hands the
// pending work over and waits for the resume.
func TestPartitionControl(t *testing.T) {
	var pc partitionControl
	assert.False(t, pc.pending())
	ctx, cancel := pc.nextContext(context.Background())
	pc.setPaused(true)
	assert.Error(t, ctx.Err(), "a pause ends the wait for records")
	cancel()
	assert.True(t, pc.pending())
	assert.True(t, pc.isPaused())
	ctx, cancel = pc.nextContext(context.Background())
	assert.Error(t, ctx.Err(), "paused: no wait at all")
	cancel()
	pc.setPaused(false)
	assert.False(t, pc.pending())
	pc.requestSeek(7)
	assert.True(t, pc.pending())
	assert.Zero(t, pc.seeks())
}
