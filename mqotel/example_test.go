package mqotel_test

import (
	"context"
	"fmt"
	"log"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqotel"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

type Order struct {
	ID string `json:"id"`
}

// Wiring an observer into a producer and a consumer. It needs a broker, so
// it is compiled but not run.
func Example() {
	ctx := context.Background()
	brokers := []string{"localhost:9092"}

	// In a real program these providers have exporters; with none set, the
	// global providers are used.
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = mp.Shutdown(ctx); _ = tp.Shutdown(ctx) }()
	obs := mqotel.New(mqotel.WithMeterProvider(mp), mqotel.WithTracerProvider(tp))

	producer, err := mq.NewProducer[Order](brokers, "orders", mq.WithObserver(obs))
	if err != nil {
		log.Fatal(err)
	}
	defer producer.Close()
	unregisterProducer, err := obs.ObserveProducer(producer)
	if err != nil {
		log.Fatal(err)
	}
	defer unregisterProducer()

	consumer, err := mq.NewKafkaConsumer[Order](brokers, "orders", "billing", mq.WithObserver(obs))
	if err != nil {
		log.Fatal(err)
	}
	unregisterConsumer, err := obs.ObserveConsumer("billing", consumer)
	if err != nil {
		log.Fatal(err)
	}
	defer unregisterConsumer()
	_ = consumer.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[Order]) error {
		// ctx holds the "process orders" span, a child of the span that
		// sent the message: spans started here join the producer's trace.
		_, span := tp.Tracer("billing").Start(ctx, "charge "+m.Value.ID)
		defer span.End()
		return nil
	})

	if _, err := producer.Send(ctx, []byte("o-1"), Order{ID: "o-1"}); err != nil {
		log.Fatal(err)
	}
	if err := consumer.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// HeaderCarrier reads or writes trace context in message headers outside
// the observer, here to continue a message's trace by hand.
func ExampleHeaderCarrier() {
	headers := []mq.Header{{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}}

	ctx := propagation.TraceContext{}.Extract(context.Background(), &mqotel.HeaderCarrier{Headers: headers})
	sc := trace.SpanContextFromContext(ctx)
	fmt.Println(sc.TraceID(), sc.SpanID(), sc.IsSampled())

	out := &mqotel.HeaderCarrier{}
	propagation.TraceContext{}.Inject(ctx, out)
	fmt.Printf("%s: %s\n", out.Headers[0].Key, out.Headers[0].Value)
	// Output:
	// 0af7651916cd43dd8448eb211c80319c b7ad6b7169203331 true
	// traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
}
