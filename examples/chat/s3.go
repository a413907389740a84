package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqs3"
)

// s3Target backs messages up to S3 with mqs3, one object per message (the
// per-message handler form).
type s3Target struct {
	cfg       S3Config
	topic     string
	client    *s3.Client
	transport *http.Transport
	backup    *mqs3.Backup
	prefix    string              // the run's message ID prefix
	counted   map[string][]string // object key -> IDs of the run's messages in it
}

func openS3Target(ctx context.Context, cfg S3Config, topic, runPrefix string) (backupTarget, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	client, err := mqs3.NewClient(ctx, mqs3.ClientConfig{Endpoint: cfg.Endpoint, Anonymous: cfg.Anonymous,
		HTTPClient: &http.Client{Transport: transport}})
	if err != nil {
		return nil, err
	}
	_, err = client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(cfg.Bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	var exists *types.BucketAlreadyExists
	if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
		return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
	}
	b, err := mqs3.New(client, cfg.Bucket, mqs3.WithPrefix(cfg.Prefix))
	if err != nil {
		return nil, err
	}
	return &s3Target{cfg: cfg, topic: topic, client: client, transport: transport, backup: b, prefix: runPrefix,
		counted: make(map[string][]string)}, nil
}

func (s *s3Target) Handler() mq.Handler[MessageEvent] { return mqs3.Handler[MessageEvent](s.backup) }

// Count lists the topic's objects and reads those it has not read before
// (an object's key fixes its content: a rewrite holds the same records).
func (s *s3Target) Count(ctx context.Context) (records, distinct int, err error) {
	plan, err := mqs3.PlanRestore(ctx, s.client, s.cfg.Bucket, s.cfg.Prefix, mqs3.WithSourceTopic(s.topic))
	if err != nil {
		if strings.Contains(err.Error(), "no backup objects") {
			return 0, 0, nil
		}
		return 0, 0, err
	}
	live := make(map[string]bool)
	for _, pp := range plan.Partitions {
		for _, o := range append(pp.Objects, pp.Redundant...) {
			live[o.Key] = true
			if _, ok := s.counted[o.Key]; ok {
				continue
			}
			recs, err := mqs3.ReadObject(ctx, s.client, s.cfg.Bucket, o)
			if err != nil {
				return 0, 0, err
			}
			var ids []string
			for _, r := range recs {
				var ev MessageEvent
				if json.Unmarshal(r.Value, &ev) == nil && strings.HasPrefix(ev.ID, s.prefix) {
					ids = append(ids, ev.ID)
				}
			}
			s.counted[o.Key] = ids
		}
	}
	seen := make(map[string]bool)
	for key, ids := range s.counted {
		if !live[key] {
			delete(s.counted, key) // replaced by a larger object
			continue
		}
		records += len(ids)
		for _, id := range ids {
			seen[id] = true
		}
	}
	return records, len(seen), nil
}

func (s *s3Target) String() string {
	return fmt.Sprintf("s3 %s bucket %s prefix %q", s.cfg.Endpoint, s.cfg.Bucket, s.cfg.Prefix)
}

// Close releases idle connections; Count still works after it.
func (s *s3Target) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}
