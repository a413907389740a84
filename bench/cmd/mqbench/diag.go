package main

import (
	"os"

	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/compress/snappy"
)

// Diagnostics only (never set in the published runs): MQBENCH_FAST_SNAPPY=1
// makes kafka-go (and so mq) compress snappy with s2's fast encoder, as
// franz-go does, instead of kafka-go's default "better" encoder.
func init() {
	if _, worker := workerArg(); worker && os.Getenv("MQBENCH_FAST_SNAPPY") != "" {
		compress.Codecs[compress.Snappy] = &snappy.Codec{Compression: snappy.FasterCompression}
	}
}
