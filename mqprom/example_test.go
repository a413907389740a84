package mqprom_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type Order struct {
	ID string `json:"id"`
}

// Wiring an observer into a producer and a consumer, and serving the
// metrics. It needs a broker, so it is compiled but not run.
func Example() {
	ctx := context.Background()
	brokers := []string{"localhost:9092"}
	reg := prometheus.NewRegistry()
	obs, err := mqprom.New(reg)
	if err != nil {
		log.Fatal(err)
	}

	producer, err := mq.NewProducer[Order](brokers, "orders", mq.WithObserver(obs))
	if err != nil {
		log.Fatal(err)
	}
	defer producer.Close()
	defer obs.ObserveProducer(producer)()

	consumer, err := mq.NewKafkaConsumer[Order](brokers, "orders", "billing", mq.WithObserver(obs))
	if err != nil {
		log.Fatal(err)
	}
	defer obs.ObserveConsumer("billing", consumer)()
	_ = consumer.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[Order]) error {
		return nil
	}, mq.WithHandlerName("charge"))

	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	go func() { log.Println(http.ListenAndServe("localhost:2112", nil)) }()

	if _, err := producer.Send(ctx, []byte("o-1"), Order{ID: "o-1"}); err != nil {
		log.Fatal(err)
	}
	if err := consumer.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// Metric names take the namespace; series appear as events arrive.
func ExampleWithNamespace() {
	reg := prometheus.NewRegistry()
	obs, err := mqprom.New(reg, mqprom.WithNamespace("billing"))
	if err != nil {
		log.Fatal(err)
	}
	obs.Rebalanced("invoices", 1, map[string][]int{"orders": {0, 1}})

	families, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			fmt.Println(f.GetName(), m.GetLabel()[0].GetValue(), m.GetCounter().GetValue())
		}
	}
	// Output:
	// billing_rebalances_total invoices 1
}
