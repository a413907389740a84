package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Every valid reading is stored, in fewer transactions than readings (one
// per batch), the invalid ones are skipped, and the group committed
// everything.
func TestRunStoresBatches(t *testing.T) {
	c := mqtest.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "readings.db")

	var out bytes.Buffer
	require.NoError(t, run(ctx, c.Addrs(), path, 1000, &out))
	t.Log(out.String())

	store, err := OpenStore(path)
	require.NoError(t, err)
	defer func() { _ = store.Close() }()
	readings, batches, largest, err := store.Counts(ctx)
	require.NoError(t, err)
	assert.Equal(t, 996, readings, "1000 sent, 4 invalid")
	assert.Less(t, batches, readings/2, "one transaction per batch, not per reading")
	assert.LessOrEqual(t, largest, 100, "batches are capped at 100 messages")
	assert.Greater(t, largest, 1)
	assert.Contains(t, out.String(), "stored 996 of 1000 readings")
	assert.Contains(t, out.String(), "4 invalid skipped")

	committed, err := c.CommittedOffsets(ctx, "readings-to-sqlite", topic)
	require.NoError(t, err)
	end, err := c.EndOffsets(ctx, topic)
	require.NoError(t, err)
	for p, o := range end {
		assert.Equal(t, o, max(committed[p], 0), "partition %d", p)
	}
}

// A batch with an invalid reading stores the readings before it in its
// transaction and reports where it stopped.
func TestSaveBatchPartialFailure(t *testing.T) {
	store, err := OpenStore(filepath.Join(t.TempDir(), "readings.db"))
	require.NoError(t, err)
	defer func() { _ = store.Close() }()
	msgs := testMessages(Reading{"a", 1, 20}, Reading{"a", 2, 21}, Reading{"", 3, 22}, Reading{"a", 4, 23})
	err = store.SaveBatch(t.Context(), msgs)
	var bf *mq.BatchFailedError
	require.ErrorAs(t, err, &bf)
	assert.Equal(t, 2, bf.Index)
	assert.ErrorIs(t, err, errInvalid)
	readings, batches, _, err := store.Counts(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2, readings)
	assert.Equal(t, 1, batches)

	require.NoError(t, store.SaveBatch(t.Context(), msgs[3:]))
	require.NoError(t, store.SaveBatch(t.Context(), msgs[:2]), "a redelivered batch overwrites its rows")
	readings, _, _, err = store.Counts(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 3, readings)
}

func testMessages(rs ...Reading) []mq.Message[Reading] {
	out := make([]mq.Message[Reading], len(rs))
	for i, r := range rs {
		out[i] = mq.Message[Reading]{Topic: topic, Partition: 0, Offset: int64(i), Value: r}
	}
	return out
}
