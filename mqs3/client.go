package mqs3

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// ClientConfig says how [NewClient] reaches an S3-compatible server.
type ClientConfig struct {
	// Endpoint is the server's URL, e.g. "http://127.0.0.1:8333" for
	// SeaweedFS or MinIO; empty means AWS S3. With an endpoint, buckets are
	// addressed by path ("http://host/bucket/key").
	Endpoint string
	// Region defaults to the AWS configuration's (AWS_REGION), else
	// us-east-1.
	Region string
	// Anonymous sends unsigned requests (a local SeaweedFS without
	// identities accepts them). Otherwise credentials come from the AWS
	// default chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the shared
	// config and credentials files, or the instance role.
	Anonymous bool
	// HTTPClient, if set, sends the requests (the SDK's default client
	// otherwise). Give one whose transport you can close, to release idle
	// connections when done.
	HTTPClient *http.Client
}

// NewClient returns an S3 client for cfg. It leaves request checksums to
// the operations that require them, which S3-compatible servers accept.
func NewClient(ctx context.Context, cfg ClientConfig) (*s3.Client, error) {
	var loadOpts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	if cfg.Anonymous {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(aws.AnonymousCredentials{}))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("mqs3: AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
		if cfg.HTTPClient != nil {
			o.HTTPClient = cfg.HTTPClient
		}
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}
