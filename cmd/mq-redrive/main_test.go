package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Bad usage exits 2 before anything is read or written: a stray argument
// once made the flags after it (-dry-run included) silently ignored.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"extra argument", []string{"-brokers", "127.0.0.1:1", "-dlt", "d", "extra", "-dry-run"}, "unexpected arguments"},
		{"no dead-letter topic", []string{"-brokers", "127.0.0.1:1"}, "-dlt are required"},
		{"header without value", []string{"-brokers", "127.0.0.1:1", "-dlt", "d", "-header", "k"}, "want key=value"},
		{"unknown flag", []string{"-nope"}, "flag provided but not defined"},
		{"help", []string{"-h"}, "Usage of mq-redrive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KAFKA_BROKERS", "127.0.0.1:2")
			var stdout, stderr bytes.Buffer
			assert.Equal(t, exitUsage, run(context.Background(), tc.args, &stdout, &stderr))
			assert.Contains(t, stderr.String(), tc.want)
			assert.Empty(t, stdout.String(), "nothing done")
			assert.NotContains(t, stderr.String(), `(default "127.0.0.1:2")`, "the environment's default said once")
		})
	}
}
