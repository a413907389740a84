package mqproto_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqproto"
)

// Compile-time checks that Codec satisfies mq.Codec for generated types.
var (
	_ mq.Codec[*wrapperspb.StringValue] = mqproto.Codec[*wrapperspb.StringValue]{}
	_ mq.Codec[*structpb.Struct]        = mqproto.Codec[*structpb.Struct]{}
)

func chatStruct(t testing.TB) *structpb.Struct {
	s, err := structpb.NewStruct(map[string]any{
		"id":              "msg-42",
		"conversation_id": "conv-7",
		"text":            "Hello, 世界!",
		"seq":             42.0,
		"edited":          false,
		"mentions":        []any{"bob", "carol"},
		"reply_to":        nil,
		"meta":            map[string]any{"client": "ios", "version": 3.5},
	})
	require.NoError(t, err)
	return s
}

func TestRoundTripStringValue(t *testing.T) {
	var codec mqproto.Codec[*wrapperspb.StringValue]
	for _, s := range []string{"hello", "世界", ""} {
		in := wrapperspb.String(s)
		data, err := codec.Encode(in)
		require.NoError(t, err)
		out, err := codec.Decode(data)
		require.NoError(t, err)
		require.NotNil(t, out)
		assert.True(t, proto.Equal(in, out), "got %v, want %v", out, in)
		assert.NotSame(t, in, out)
	}
}

func TestRoundTripStruct(t *testing.T) {
	var codec mqproto.Codec[*structpb.Struct]
	in := chatStruct(t)
	data, err := codec.Encode(in)
	require.NoError(t, err)
	out, err := codec.Decode(data)
	require.NoError(t, err)
	assert.True(t, proto.Equal(in, out))
	assert.Equal(t, "Hello, 世界!", out.Fields["text"].GetStringValue())
	assert.Equal(t, []any{"bob", "carol"}, out.AsMap()["mentions"])
}

func TestRoundTripTimestamp(t *testing.T) {
	var codec mqproto.Codec[*timestamppb.Timestamp]
	in := &timestamppb.Timestamp{Seconds: 1714566600, Nanos: 123456789}
	data, err := codec.Encode(in)
	require.NoError(t, err)
	out, err := codec.Decode(data)
	require.NoError(t, err)
	assert.True(t, proto.Equal(in, out))
}

func TestEmptyMessage(t *testing.T) {
	var codec mqproto.Codec[*wrapperspb.StringValue]
	data, err := codec.Encode(&wrapperspb.StringValue{})
	require.NoError(t, err)
	assert.NotNil(t, data, "an empty message must not become a null record value (a tombstone)")
	assert.Empty(t, data)

	for _, payload := range [][]byte{nil, {}} {
		out, err := codec.Decode(payload)
		require.NoError(t, err, "an empty payload is a valid empty message")
		require.NotNil(t, out)
		assert.Equal(t, "", out.GetValue())
	}
}

func TestDecodeReturnsFreshMessages(t *testing.T) {
	var codec mqproto.Codec[*wrapperspb.StringValue]
	data, err := codec.Encode(wrapperspb.String("hi"))
	require.NoError(t, err)
	a, err := codec.Decode(data)
	require.NoError(t, err)
	b, err := codec.Decode(data)
	require.NoError(t, err)
	require.NotSame(t, a, b)
	a.Value = "changed"
	assert.Equal(t, "hi", b.GetValue())

	// The decoded message does not alias the payload.
	raw := append([]byte(nil), data...)
	c, err := codec.Decode(raw)
	require.NoError(t, err)
	for i := range raw {
		raw[i] = 0
	}
	assert.Equal(t, "hi", c.GetValue())
}

func TestDecodeGarbage(t *testing.T) {
	var codec mqproto.Codec[*wrapperspb.StringValue]
	for name, data := range map[string][]byte{
		"truncated length":  {0x0a, 0x05, 'h', 'i'},
		"truncated varint":  {0x0a, 0xff},
		"invalid wire type": {0x0f},
		"field number zero": {0x00, 0x01},
		"invalid UTF-8":     {0x0a, 0x01, 0xff},
		"text":              []byte("{\"value\":\"hello\"}"),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := codec.Decode(data)
			require.Error(t, err)
			assert.Nil(t, out, "no partial message on error")
			assert.Contains(t, err.Error(), "mqproto: decode google.protobuf.StringValue")
		})
	}
}

func TestEncodeNil(t *testing.T) {
	_, err := mqproto.Codec[*wrapperspb.StringValue]{}.Encode(nil)
	require.ErrorIs(t, err, mqproto.ErrNilMessage)
	assert.Contains(t, err.Error(), "*wrapperspb.StringValue")

	_, err = mqproto.Codec[*structpb.Struct]{}.Encode((*structpb.Struct)(nil))
	require.ErrorIs(t, err, mqproto.ErrNilMessage)

	_, err = mqproto.Codec[proto.Message]{}.Encode(nil)
	require.ErrorIs(t, err, mqproto.ErrNilMessage)

	_, err = mqproto.Codec[proto.Message]{}.Encode((*wrapperspb.StringValue)(nil))
	require.ErrorIs(t, err, mqproto.ErrNilMessage)

	_, err = mqproto.Codec[*dynamicpb.Message]{}.Encode(nil)
	require.ErrorIs(t, err, mqproto.ErrNilMessage)
}

func TestInterfaceTypeEncodesButCannotDecode(t *testing.T) {
	var codec mqproto.Codec[proto.Message]
	data, err := codec.Encode(wrapperspb.Int64(7))
	require.NoError(t, err)

	var out proto.Message
	require.NotPanics(t, func() { out, err = codec.Decode(data) })
	require.Error(t, err)
	assert.Nil(t, out)
	assert.Contains(t, err.Error(), "interface type")
}

func TestDynamicMessageCannotDecodeWithoutPanicking(t *testing.T) {
	var codec mqproto.Codec[*dynamicpb.Message]
	var err error
	require.NotPanics(t, func() { _, err = codec.Decode([]byte{0x0a, 0x01, 'x'}) })
	require.Error(t, err)

	// Encoding a dynamic message works.
	m := dynamicpb.NewMessage(wrapperspb.String("").ProtoReflect().Descriptor())
	m.Set(m.Descriptor().Fields().ByName("value"), protoreflect.ValueOfString("dyn"))
	data, err := codec.Encode(m)
	require.NoError(t, err)
	out, err := mqproto.Codec[*wrapperspb.StringValue]{}.Decode(data)
	require.NoError(t, err)
	assert.Equal(t, "dyn", out.GetValue())
}

func TestConcurrentUse(t *testing.T) {
	var codec mqproto.Codec[*structpb.Struct]
	in := chatStruct(t)
	data, err := codec.Encode(in)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				out, err := codec.Decode(data)
				if !assert.NoError(t, err) || !assert.True(t, proto.Equal(in, out)) {
					return
				}
				if _, err := codec.Encode(out); !assert.NoError(t, err) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestWorksAsProducerAndConsumerCodec(t *testing.T) {
	brokers := []string{"localhost:9092"}
	codec := mqproto.Codec[*structpb.Struct]{}

	p, err := mq.NewProducer[*structpb.Struct](brokers, "chat-messages", mq.WithCodec[*structpb.Struct](codec))
	require.NoError(t, err)
	// A nil message fails before anything is buffered or any broker is contacted.
	_, err = p.Send(context.Background(), []byte("conv-7"), nil)
	require.ErrorIs(t, err, mqproto.ErrNilMessage)
	require.NoError(t, p.Close())

	c, err := mq.NewKafkaConsumer[*structpb.Struct](brokers, "chat-messages", "chat-persister", mq.WithCodec[*structpb.Struct](codec))
	require.NoError(t, err)
	require.NoError(t, c.Close())

	// A codec for another message type is rejected.
	_, err = mq.NewProducer[*structpb.Struct](brokers, "chat-messages",
		mq.WithCodec[*wrapperspb.StringValue](mqproto.Codec[*wrapperspb.StringValue]{}))
	require.ErrorIs(t, err, mq.ErrInvalidOption)
}

func FuzzDecode(f *testing.F) {
	structCodec := mqproto.Codec[*structpb.Struct]{}
	stringCodec := mqproto.Codec[*wrapperspb.StringValue]{}
	seed, err := structCodec.Encode(chatStruct(f))
	require.NoError(f, err)
	f.Add(seed)
	str, err := stringCodec.Encode(wrapperspb.String("hello"))
	require.NoError(f, err)
	f.Add(str)
	for _, s := range [][]byte{nil, {0x0a, 0x05, 'h', 'i'}, {0x0f}, {0x0a, 0x01, 0xff}, {0x08, 0x96, 0x01}, []byte("not protobuf")} {
		f.Add(s)
	}
	det := proto.MarshalOptions{Deterministic: true}

	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := structCodec.Decode(data) // must never panic
		if err == nil {
			require.NotNil(t, s)
			checkStable(t, structCodec, det, s)
		} else {
			require.Nil(t, s)
		}
		v, err := stringCodec.Decode(data)
		if err == nil {
			require.NotNil(t, v)
			checkStable(t, stringCodec, det, v)
		} else {
			require.Nil(t, v)
		}
	})
}

// checkStable checks that m survives an encode/decode round trip unchanged.
// It compares deterministic encodings rather than using proto.Equal, which
// reports NaN values as unequal.
func checkStable[T proto.Message](t *testing.T, codec mqproto.Codec[T], det proto.MarshalOptions, m T) {
	t.Helper()
	data, err := codec.Encode(m)
	require.NoError(t, err)
	back, err := codec.Decode(data)
	require.NoError(t, err)
	want, err := det.Marshal(m)
	require.NoError(t, err)
	got, err := det.Marshal(back)
	require.NoError(t, err)
	require.Equal(t, want, got)
}
