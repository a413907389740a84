package mq

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Unit tests of the admin functions' pure parts; their behaviour against
// brokers is tested in the integration module.

// noBroker is an address nobody listens on: the tests below must fail
// before dialing.
var noBroker = []string{"127.0.0.1:1"}

func TestTopicSpecToKafka(t *testing.T) {
	tc := TopicSpec{Name: "orders", Partitions: 6, Configs: map[string]string{"retention.ms": "1", "cleanup.policy": "compact"}}.kafka()
	assert.Equal(t, "orders", tc.Topic)
	assert.Equal(t, 6, tc.NumPartitions)
	assert.Equal(t, -1, tc.ReplicationFactor, "0 asks for the broker's default")
	assert.Equal(t, []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"},
		{ConfigName: "retention.ms", ConfigValue: "1"}}, tc.ConfigEntries, "sorted, so requests are deterministic")
	assert.Equal(t, 3, TopicSpec{Name: "o", Partitions: 1, ReplicationFactor: 3}.kafka().ReplicationFactor)
}

func TestRecovererTopicSpecs(t *testing.T) {
	main := TopicSpec{Name: "orders", Partitions: 6, ReplicationFactor: 3, Configs: map[string]string{"retention.ms": "1"}}
	specs := RetryTopicRecoverer([]time.Duration{time.Second, time.Minute}, "").TopicSpecs(main)
	require.Len(t, specs, 4)
	for i, name := range []string{"orders", "orders.retry.1", "orders.retry.2", "orders.dlt"} {
		assert.Equal(t, name, specs[i].Name)
		assert.Equal(t, 6, specs[i].Partitions)
		assert.Equal(t, 3, specs[i].ReplicationFactor)
		assert.Equal(t, main.Configs, specs[i].Configs)
	}
	specs[1].Configs["retention.ms"] = "2"
	assert.Equal(t, "1", main.Configs["retention.ms"], "each spec has its own configs map")
	assert.Equal(t, []TopicSpec{main}, StopRecoverer().TopicSpecs(main))
	assert.Equal(t, "dead", DeadLetterRecoverer("dead").TopicSpecs(main)[1].Name)
}

func TestAdminInputIsCheckedBeforeDialing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, err := range map[string]error{
		"rf too large":  CreateTopics(ctx, noBroker, []TopicSpec{{Name: "x", Partitions: 1, ReplicationFactor: 1 << 15}}),
		"bad broker":    CreateTopics(ctx, []string{"no-port"}, []TopicSpec{{Name: "x", Partitions: 1}}),
		"zero dial":     DeleteTopics(ctx, noBroker, []string{"x"}, WithDialTimeout(0)),
		"no group":      func() error { _, err := GroupOffsets(ctx, noBroker, "", "t"); return err }(),
		"no topic":      func() error { _, err := ResetOffsets(ctx, noBroker, "g", "", ResetToEarliest()); return err }(),
		"zero reset":    func() error { _, err := ResetOffsets(ctx, noBroker, "g", "t", OffsetReset{}); return err }(),
		"empty offsets": func() error { _, err := ResetOffsets(ctx, noBroker, "g", "t", ResetToOffsets(nil)); return err }(),
		"before 1970": func() error {
			_, err := ResetOffsets(ctx, noBroker, "g", "t", ResetToTime(time.Unix(-1, 0)))
			return err
		}(),
		"offsets and partitions": func() error {
			_, err := ResetOffsets(ctx, noBroker, "g", "t", ResetToOffsets(map[int]int64{0: 1}), WithResetPartitions(0))
			return err
		}(),
	} {
		assert.ErrorIs(t, err, ErrInvalidOption, name)
	}
	assert.NoError(t, CreateTopics(ctx, noBroker, nil), "nothing to create: no request")
	assert.NoError(t, DeleteTopics(ctx, noBroker, nil))
}

func TestOffsetResetString(t *testing.T) {
	assert.Equal(t, "earliest", ResetToEarliest().String())
	assert.Equal(t, "latest", ResetToLatest().String())
	assert.Equal(t, "time 2026-12-01T10:00:00Z", ResetToTime(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)).String())
	assert.Equal(t, "offsets 0=1200,3=0", ResetToOffsets(map[int]int64{3: 0, 0: 1200}).String())
	assert.Equal(t, "invalid", OffsetReset{}.String())
	m := map[int]int64{0: 1}
	r := ResetToOffsets(m)
	m[0] = 2
	assert.Equal(t, "offsets 0=1", r.String(), "the map is copied")
}

func TestGroupActive(t *testing.T) {
	for state, active := range map[string]bool{"": false, "Empty": false, "Dead": false,
		"Stable": true, "PreparingRebalance": true, "CompletingRebalance": true} {
		assert.Equal(t, active, groupActive(state), state)
	}
}

func TestWithCoordinatorRetriesOnlyNotReady(t *testing.T) {
	calls := 0
	err := withCoordinator(context.Background(), func(context.Context) error {
		calls++
		if calls < 3 {
			return kafka.GroupLoadInProgress
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, calls)

	calls = 0
	other := errors.New("group authorization failed")
	assert.Equal(t, other, withCoordinator(context.Background(), func(context.Context) error { calls++; return other }))
	assert.Equal(t, 1, calls)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = withCoordinator(ctx, func(context.Context) error { return kafka.NotCoordinatorForGroup })
	assert.ErrorIs(t, err, kafka.NotCoordinatorForGroup, "the last error once ctx ends")
}

func TestAdminErrors(t *testing.T) {
	terr := &TopicError{Topic: "t", Op: "create", Err: kafka.InvalidConfiguration}
	assert.ErrorIs(t, terr, kafka.InvalidConfiguration)
	rfe := &ReplicationFactorError{Topic: "t", ReplicationFactor: 3, Brokers: 1, Err: kafka.InvalidReplicationFactor}
	assert.ErrorIs(t, rfe, kafka.InvalidReplicationFactor)
	assert.Equal(t, `mq: topic "t": replication factor 3 is above the 1 broker(s) of the cluster`,
		(&ReplicationFactorError{Topic: "t", ReplicationFactor: 3, Brokers: 1}).Error())
	assert.Equal(t, `mq: topic "t" already exists with 3 partition(s), not the 6 requested`,
		(&PartitionCountError{Topic: "t", Partitions: 3, Requested: 6}).Error())
}
