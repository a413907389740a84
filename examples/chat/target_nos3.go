//go:build !s3

package main

import (
	"context"
	"errors"
)

// s3Supported reports whether this binary can back up to S3 (built with
// -tags s3).
const s3Supported = false

// openS3Target fails: S3 support is left out of the default build, so that
// a first `go run ./examples/chat` downloads no AWS SDK.
func openS3Target(context.Context, S3Config, string, string) (backupTarget, error) {
	return nil, errors.New("S3 backup needs the s3 build tag (go run -tags s3 ./examples/chat -s3-bucket NAME)")
}
