package mqproto_test

import (
	"fmt"
	"log"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mqkit/mq/mqproto"
)

func ExampleCodec() {
	// Producers and consumers take the codec with
	// mq.WithCodec[*wrapperspb.StringValue](codec).
	var codec mqproto.Codec[*wrapperspb.StringValue]

	data, err := codec.Encode(wrapperspb.String("Hi Bob!"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("% x\n", data)

	msg, err := codec.Decode(data)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg.GetValue())

	_, err = codec.Decode([]byte{0x0a, 0x10, 'H', 'i'})
	fmt.Println(err != nil)

	_, err = codec.Encode(nil)
	fmt.Println(err)
	// Output:
	// 0a 07 48 69 20 42 6f 62 21
	// Hi Bob!
	// true
	// mqproto: nil message (*wrapperspb.StringValue)
}
