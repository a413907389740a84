package mqs3

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/mqkit/mq"
)

// API is the part of the S3 client that backup and restore use.
// [*s3.Client] implements it; tests wrap it to inject failures.
type API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

var _ API = (*s3.Client)(nil)

// permanentCodes are S3 error codes that retrying cannot fix: the bucket or
// the credentials are wrong.
var permanentCodes = map[string]bool{
	"NoSuchBucket":          true,
	"InvalidBucketName":     true,
	"AccessDenied":          true,
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	"AllAccessDisabled":     true,
}

// permanent reports whether err is an S3 error that retrying cannot fix.
func permanent(err error) bool {
	if mq.IsPermanent(err) {
		return true
	}
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && permanentCodes[apiErr.ErrorCode()]
}
