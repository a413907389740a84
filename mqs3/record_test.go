package mqs3

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/require"
)

func TestRecordJSONKeepsNullAndEmptyApart(t *testing.T) {
	ts := time.UnixMilli(1764650000123)
	in := Record{Topic: "t", Partition: 3, Offset: 17, Time: ts,
		Key: nil, Value: []byte{},
		Headers: []mq.Header{{Key: "a", Value: nil}, {Key: "b", Value: []byte{}}, {Key: "c", Value: []byte{0, 1, 0xff}}}}
	data, err := json.Marshal(in)
	require.NoError(t, err)
	require.JSONEq(t, `{"topic":"t","partition":3,"offset":17,"timestamp":1764650000123,"key":null,"value":"",
		"headers":[{"key":"a","value":null},{"key":"b","value":""},{"key":"c","value":"AAH/"}]}`, string(data))

	var out Record
	require.NoError(t, json.Unmarshal(data, &out))
	require.Nil(t, out.Key)
	require.NotNil(t, out.Value)
	require.Empty(t, out.Value)
	require.Nil(t, out.Headers[0].Value)
	require.NotNil(t, out.Headers[1].Value)
	require.Equal(t, []byte{0, 1, 0xff}, out.Headers[2].Value)
	require.True(t, out.Time.Equal(ts))
	require.Equal(t, in.Offset, out.Offset)
	require.Equal(t, in.Partition, out.Partition)

	// And the other way round: an empty key, a null value (tombstone).
	in = Record{Topic: "t", Offset: 1, Time: ts, Key: []byte{}, Value: nil}
	data, err = json.Marshal(in)
	require.NoError(t, err)
	out = Record{}
	require.NoError(t, json.Unmarshal(data, &out))
	require.NotNil(t, out.Key)
	require.Nil(t, out.Value)
	require.True(t, out.Message().Tombstone)
	require.Nil(t, out.Headers)
}

func TestRecordOfUsesRawBytes(t *testing.T) {
	msg := mq.Message[string]{Topic: "t", Partition: 2, Offset: 9, Key: []byte("k"), Value: "decoded",
		Raw: []byte(`"raw"`), Time: time.UnixMilli(5), Headers: []mq.Header{{Key: "h", Value: []byte("v")}}}
	r := RecordOf(msg)
	require.Equal(t, Record{Topic: "t", Partition: 2, Offset: 9, Key: []byte("k"), Value: []byte(`"raw"`),
		Time: time.UnixMilli(5), Headers: []mq.Header{{Key: "h", Value: []byte("v")}}}, r)
	msg.Tombstone, msg.Raw = true, nil
	require.Nil(t, RecordOf(msg).Value)
}

func TestRecordRejectsNegativePositions(t *testing.T) {
	var r Record
	require.Error(t, json.Unmarshal([]byte(`{"topic":"t","partition":0,"offset":-1,"timestamp":0,"key":null,"value":null}`), &r))
	require.Error(t, json.Unmarshal([]byte(`{"topic":"t","partition":-1,"offset":0,"timestamp":0,"key":null,"value":null}`), &r))
}

func TestDecodeObject(t *testing.T) {
	b := &Backup{cfg: backupConfig{gzip: true}}
	var lines [][]byte
	for i := range 3 {
		l, err := json.Marshal(Record{Topic: "t", Offset: int64(i), Value: []byte{byte(i)}})
		require.NoError(t, err)
		lines = append(lines, append(l, '\n'))
	}
	for _, gz := range []bool{false, true} {
		b.cfg.gzip = gz
		body, err := b.body(lines)
		require.NoError(t, err)
		recs, err := DecodeObject(body, gz)
		require.NoError(t, err)
		require.Len(t, recs, 3)
		for i, r := range recs {
			require.Equal(t, int64(i), r.Offset)
			require.Equal(t, []byte{byte(i)}, r.Value)
		}
	}
	_, err := DecodeObject([]byte("{\"topic\":\"t\"}\nnot json\n"), false)
	require.ErrorContains(t, err, "line 2")
}
