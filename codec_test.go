package mq_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqkit/mq"
)

// chatEvent exercises more JSON shapes than ChatMessage: nested pointers,
// slices, maps and numbers.
type chatEvent struct {
	Type        string            `json:"type"`
	Seq         int64             `json:"seq"`
	Message     *ChatMessage      `json:"message,omitempty"`
	Mentions    []string          `json:"mentions,omitempty"`
	Reactions   map[string]int    `json:"reactions,omitempty"`
	Meta        map[string]string `json:"meta,omitempty"`
	Score       float64           `json:"score"`
	Deleted     bool              `json:"deleted"`
	Attachments []attachment      `json:"attachments,omitempty"`
}

type attachment struct {
	URL  string `json:"url"`
	Size uint32 `json:"size"`
}

var sampleMessage = ChatMessage{
	ID:             "msg-42",
	ConversationID: "conv-7",
	SenderID:       "alice",
	Text:           "Hello, 世界! \"quoted\" <b>",
	SentAt:         time.Date(2024, 5, 1, 12, 30, 0, 123456789, time.UTC),
}

func TestJSONCodecRoundTrip(t *testing.T) {
	for _, strict := range []bool{false, true} {
		codec := mq.JSONCodec[ChatMessage]{DisallowUnknownFields: strict}
		data, err := codec.Encode(sampleMessage)
		require.NoError(t, err)
		assert.JSONEq(t, `{"id":"msg-42","conversation_id":"conv-7","sender_id":"alice",`+
			`"text":"Hello, 世界! \"quoted\" <b>","sent_at":"2024-05-01T12:30:00.123456789Z"}`, string(data))

		got, err := codec.Decode(data)
		require.NoError(t, err)
		assert.Equal(t, sampleMessage, got)
	}
}

func TestJSONCodecRoundTripShapes(t *testing.T) {
	ev := chatEvent{
		Type:        "message.created",
		Seq:         1 << 53,
		Message:     &sampleMessage,
		Mentions:    []string{"bob", "carol"},
		Reactions:   map[string]int{"👍": 3},
		Meta:        map[string]string{"client": "ios"},
		Score:       0.1,
		Attachments: []attachment{{URL: "https://example.invalid/a.png", Size: 1024}},
	}
	codec := mq.JSONCodec[chatEvent]{}
	data, err := codec.Encode(ev)
	require.NoError(t, err)
	got, err := codec.Decode(data)
	require.NoError(t, err)
	assert.Equal(t, ev, got)

	// Scalars and pointers work as type parameters too.
	ints := mq.JSONCodec[[]int]{}
	b, err := ints.Encode([]int{1, 2, 3})
	require.NoError(t, err)
	assert.Equal(t, "[1,2,3]", string(b))
	ptr := mq.JSONCodec[*ChatMessage]{}
	p, err := ptr.Decode([]byte(`{"id":"x"}`))
	require.NoError(t, err)
	require.NotNil(t, p)
	assert.Equal(t, "x", p.ID)
}

func TestJSONCodecEmptyPayload(t *testing.T) {
	for _, strict := range []bool{false, true} {
		codec := mq.JSONCodec[ChatMessage]{DisallowUnknownFields: strict}
		for _, data := range [][]byte{nil, {}} {
			_, err := codec.Decode(data)
			require.Error(t, err)
			assert.Equal(t, "mq: json: empty payload", err.Error())
		}
		_, err := codec.Decode([]byte(" \n\t"))
		require.Error(t, err, "whitespace only")
	}
}

func TestJSONCodecNullPayload(t *testing.T) {
	for _, strict := range []bool{false, true} {
		codec := mq.JSONCodec[ChatMessage]{DisallowUnknownFields: strict}
		for _, data := range []string{"null", " null\n"} {
			v, err := codec.Decode([]byte(data))
			require.Error(t, err, "strict=%v payload %q decoded to %+v", strict, data, v)
		}
	}
}

func TestJSONCodecDisallowUnknownFields(t *testing.T) {
	data := []byte(`{"id":"msg-1","text":"hi","reaction":"👍"}`)

	lenient := mq.JSONCodec[ChatMessage]{}
	got, err := lenient.Decode(data)
	require.NoError(t, err, "unknown fields are ignored by default")
	assert.Equal(t, ChatMessage{ID: "msg-1", Text: "hi"}, got)

	strict := mq.JSONCodec[ChatMessage]{DisallowUnknownFields: true}
	_, err = strict.Decode(data)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown field "reaction"`)

	// Nested objects are checked too.
	_, err = mq.JSONCodec[chatEvent]{DisallowUnknownFields: true}.Decode([]byte(`{"message":{"id":"1","extra":1}}`))
	assert.ErrorContains(t, err, `unknown field "extra"`)

	got, err = strict.Decode([]byte(`{"id":"msg-1","text":"hi"}`))
	require.NoError(t, err)
	assert.Equal(t, ChatMessage{ID: "msg-1", Text: "hi"}, got)
}

func TestJSONCodecTrailingData(t *testing.T) {
	for _, strict := range []bool{false, true} {
		codec := mq.JSONCodec[ChatMessage]{DisallowUnknownFields: strict}
		for _, data := range []string{
			`{"id":"1"}{"id":"2"}`,
			`{"id":"1"} {"id":"2"}`,
			`{"id":"1"} x`,
			`{"id":"1"},`,
			`{"id":"1"} 1`,
		} {
			_, err := codec.Decode([]byte(data))
			assert.Error(t, err, "strict=%v payload %q", strict, data)
		}
		// Surrounding whitespace is fine.
		got, err := codec.Decode([]byte(" {\"id\":\"1\"} \n"))
		require.NoError(t, err, "strict=%v", strict)
		assert.Equal(t, "1", got.ID)
	}
	_, err := mq.JSONCodec[ChatMessage]{DisallowUnknownFields: true}.Decode([]byte(`{"id":"1"} {"id":"2"}`))
	assert.EqualError(t, err, "mq: json: trailing data after value")
}

func TestJSONCodecTrailingClosingBracket(t *testing.T) {
	strict := mq.JSONCodec[ChatMessage]{DisallowUnknownFields: true}
	for _, data := range []string{`{"id":"1"}}`, `{"id":"1"}]`, `{"id":"1"} ]]]`} {
		_, err := strict.Decode([]byte(data))
		assert.Error(t, err, "payload %q", data)
	}
}

func TestJSONCodecInvalidInput(t *testing.T) {
	codec := mq.JSONCodec[ChatMessage]{}
	for _, data := range []string{`{`, `{"id":}`, `not json`, "\xff", `{"id":1}`, `[]`, `"text"`} {
		_, err := codec.Decode([]byte(data))
		assert.Error(t, err, "payload %q", data)
	}
	_, err := codec.Decode([]byte(`{"id":1}`))
	var typeErr *json.UnmarshalTypeError
	assert.ErrorAs(t, err, &typeErr, "the encoding/json error is returned as is")
}

func TestJSONCodecEncodeError(t *testing.T) {
	_, err := mq.JSONCodec[any]{}.Encode(make(chan int))
	var unsupported *json.UnsupportedTypeError
	require.ErrorAs(t, err, &unsupported)

	_, err = mq.JSONCodec[failingMarshaler]{}.Encode(failingMarshaler{})
	require.ErrorIs(t, err, errMarshal)
}

var errMarshal = errors.New("cannot marshal")

type failingMarshaler struct{}

func (failingMarshaler) MarshalJSON() ([]byte, error) { return nil, errMarshal }

func TestJSONCodecConcurrentUse(t *testing.T) {
	codec := mq.JSONCodec[ChatMessage]{DisallowUnknownFields: true}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				m := sampleMessage
				m.ID = strconv.Itoa(i*1000 + j)
				data, err := codec.Encode(m)
				if !assert.NoError(t, err) {
					return
				}
				got, err := codec.Decode(data)
				if !assert.NoError(t, err) || !assert.Equal(t, m, got) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestBytesCodec(t *testing.T) {
	var codec mq.Codec[[]byte] = mq.BytesCodec{}
	in := []byte{0, 1, 2, 0xff}
	enc, err := codec.Encode(in)
	require.NoError(t, err)
	assert.Equal(t, in, enc)
	assert.Same(t, &in[0], &enc[0], "Encode does not copy")

	dec, err := codec.Decode(enc)
	require.NoError(t, err)
	assert.Equal(t, in, dec)

	for _, b := range [][]byte{nil, {}} {
		enc, err := codec.Encode(b)
		require.NoError(t, err)
		assert.Equal(t, b, enc, "nil stays nil and empty stays empty")
		dec, err := codec.Decode(b)
		require.NoError(t, err)
		assert.Equal(t, b, dec)
	}
}

func TestStringCodec(t *testing.T) {
	var codec mq.Codec[string] = mq.StringCodec{}
	for _, s := range []string{"", "hello", "世界", "\x00\xff\xfe not utf-8", "line\nbreak"} {
		enc, err := codec.Encode(s)
		require.NoError(t, err)
		assert.Equal(t, []byte(s), enc)
		dec, err := codec.Decode(enc)
		require.NoError(t, err)
		assert.Equal(t, s, dec)
	}
	dec, err := codec.Decode(nil)
	require.NoError(t, err)
	assert.Equal(t, "", dec)

	// Decode copies: changing the input later does not change the string.
	buf := []byte("abc")
	s, err := codec.Decode(buf)
	require.NoError(t, err)
	buf[0] = 'x'
	assert.Equal(t, "abc", s)
}

func TestCodecFuncs(t *testing.T) {
	errBad := errors.New("bad number")
	var codec mq.Codec[int] = mq.CodecFuncs[int]{
		EncodeFunc: func(v int) ([]byte, error) { return []byte(strconv.Itoa(v)), nil },
		DecodeFunc: func(b []byte) (int, error) {
			v, err := strconv.Atoi(string(b))
			if err != nil {
				return 0, errBad
			}
			return v, nil
		},
	}
	enc, err := codec.Encode(-42)
	require.NoError(t, err)
	assert.Equal(t, "-42", string(enc))
	dec, err := codec.Decode(enc)
	require.NoError(t, err)
	assert.Equal(t, -42, dec)
	_, err = codec.Decode([]byte("forty-two"))
	require.ErrorIs(t, err, errBad)
}

// ----- fuzzing -----

// jsonSeeds are the seed corpus of FuzzJSONCodecDecode.
var jsonSeeds = []string{
	`{"id":"msg-42","conversation_id":"conv-7","sender_id":"alice","text":"hi","sent_at":"2024-05-01T12:30:00Z"}`,
	`{"type":"message.created","seq":9007199254740993,"message":{"id":"1","sent_at":"2024-05-01T12:30:00.5+02:00"},` +
		`"mentions":["bob"],"reactions":{"👍":3},"meta":{"a":"b"},"score":1e-7,"deleted":true,` +
		`"attachments":[{"url":"u","size":4294967295}]}`,
	`{"ID":"case-insensitive","Text":"\u00e9\ud83d\ude00"}`,
	`{"id":"dup","id":"last"}`,
	`{"text":"\xff invalid utf-8"}`,
	`{"unknown":{"nested":[1,2,{"x":null}]}}`,
	`{"id":"1"}}`,
	`{"id":"1"} {"id":"2"}`,
	`{"seq":1e400}`,
	`{"score":-0}`,
	`{"sent_at":"0000-01-01T00:00:00Z"}`,
	`{"sent_at":"9999-12-31T23:59:59.999999999-23:59"}`,
	`null`,
	`[]`,
	`""`,
	``,
	` `,
	`{`,
	`{"message":null,"mentions":null}`,
}

func FuzzJSONCodecDecode(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	lenient := mq.JSONCodec[chatEvent]{}
	strict := mq.JSONCodec[chatEvent]{DisallowUnknownFields: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, codec := range []mq.JSONCodec[chatEvent]{lenient, strict} {
			v, err := codec.Decode(data) // must never panic
			if err != nil {
				continue
			}
			// Whatever decoded must survive an encode/decode round trip
			// unchanged: the second encoding equals the first.
			enc1, err := codec.Encode(v)
			require.NoError(t, err, "encoding a decoded value (strict=%v)", codec.DisallowUnknownFields)
			v2, err := codec.Decode(enc1)
			require.NoError(t, err, "decoding %q", enc1)
			enc2, err := codec.Encode(v2)
			require.NoError(t, err)
			require.Equal(t, string(enc1), string(enc2), "round trip is not stable for input %q", data)
		}
	})
}

func FuzzStringCodec(f *testing.F) {
	for _, s := range []string{"", "hello", "世界", "\x00", "\xff\xfe", "a\nb", "👍🏽"} {
		f.Add(s)
	}
	codec := mq.StringCodec{}
	f.Fuzz(func(t *testing.T, s string) {
		enc, err := codec.Encode(s)
		require.NoError(t, err)
		require.Equal(t, len(s), len(enc))
		dec, err := codec.Decode(enc)
		require.NoError(t, err)
		require.Equal(t, s, dec)

		// Any bytes decode, and re-encode to themselves.
		raw := []byte(s)
		str, err := codec.Decode(raw)
		require.NoError(t, err)
		back, err := codec.Encode(str)
		require.NoError(t, err)
		require.True(t, bytes.Equal(raw, back))
		require.Equal(t, utf8.ValidString(s), utf8.Valid(enc))
	})
}

// ----- benchmarks -----

func BenchmarkJSONCodecEncode(b *testing.B) {
	codec := mq.JSONCodec[ChatMessage]{}
	b.ReportAllocs()
	for range b.N {
		if _, err := codec.Encode(sampleMessage); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONCodecDecode(b *testing.B) {
	for _, strict := range []bool{false, true} {
		name := map[bool]string{false: "default", true: "disallow-unknown"}[strict]
		b.Run(name, func(b *testing.B) {
			codec := mq.JSONCodec[ChatMessage]{DisallowUnknownFields: strict}
			data, err := codec.Encode(sampleMessage)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := codec.Decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
