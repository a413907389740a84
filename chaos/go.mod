module github.com/mqkit/mq/chaos

go 1.26.0

// Inside this repository the modules are the ones next to this one; a
// release requires the tagged versions (see RELEASING.md).
replace (
	github.com/mqkit/mq => ../
	github.com/mqkit/mq/mqtest => ../mqtest
)

require (
	github.com/mqkit/mq v0.9.0
	github.com/mqkit/mq/mqtest v0.9.0
	github.com/segmentio/kafka-go v0.4.51
	github.com/twmb/franz-go v1.22.0
	github.com/twmb/franz-go/pkg/kfake v0.0.0-20260918054303-01f206a7e32c
	github.com/twmb/franz-go/pkg/kmsg v1.14.0
	go.uber.org/goleak v1.3.0
	go.uber.org/zap v1.28.0
)

require (
	github.com/klauspost/compress v1.20.0 // indirect
	github.com/pierrec/lz4/v4 v4.1.30 // indirect
	github.com/xdg-go/pbkdf2 v1.0.0 // indirect
	github.com/xdg-go/scram v1.1.2 // indirect
	github.com/xdg-go/stringprep v1.0.4 // indirect
	go.uber.org/multierr v1.10.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
