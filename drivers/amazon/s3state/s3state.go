// Package s3state keeps the builds' records in an S3 bucket, so that many
// CI runners share what was built: imgbuild run --state s3://bucket/prefix
// (or state(location = ...) in imgbuild.mod).
//
// Each build has one object, <prefix>/builds/<build>.json, and while it is
// decided and built, one lock object, <prefix>/locks/<build>.json, naming
// its holder and when its lease expires. Every write is conditional, with
// S3's conditional writes (the ones Terraform's S3 backend locks with): a
// lock is taken with If-None-Match: * (only one runner can create it),
// renewed and taken over with If-Match on the ETag read, and a record is
// replaced with If-Match on the ETag this runner read (If-None-Match: *
// when there was none), so that no runner overwrites another's record.
//
// Clocks: a lease's expiry is written by its holder; runners that share a
// bucket are assumed to keep their clocks within a fraction of the lease
// (NTP does).
//
// It implements engine.Store through aws-sdk-go-v2, so the engine stays
// free of the SDK; the command line registers it for the s3:// scheme. It
// knows nothing of Starlark or of builds beyond their records.
package s3state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"

	"github.com/imgbuild/imgbuild/engine"
)

// Scheme is the --state scheme this package serves.
const Scheme = "s3"

// Register adds the s3:// state backend to r.
func Register(r *engine.Registry) {
	r.AddState(Scheme, func(ctx context.Context, location string) (engine.Store, error) {
		return Open(ctx, location)
	})
}

// Store is the records of one bucket and prefix.
type Store struct {
	client *s3.Client
	bucket string
	prefix string // without a trailing slash; "" for the bucket's root

	mu    sync.Mutex
	etags map[string]string // build → ETag of the record this runner last read or wrote
}

// Open opens s3://bucket/prefix, with the SDK's standard configuration
// (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL...); ?region=eu-west-1 picks
// the bucket's region. The first call (Load, in a run) says whether the
// bucket exists and may be read.
func Open(ctx context.Context, location string) (*Store, error) {
	u, err := url.Parse(location)
	if err != nil || u.Scheme != Scheme || u.Host == "" {
		return nil, fmt.Errorf("--state %q: write it as s3://bucket/prefix", location)
	}
	opts := []func(*config.LoadOptions) error{}
	if r := u.Query().Get("region"); r != "" {
		opts = append(opts, config.WithRegion(r))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("--state %s: loading the AWS configuration: %w", location, err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		// A custom endpoint (a MinIO, moto or LocalStack server) rarely
		// resolves bucket.host names.
		o.UsePathStyle = os.Getenv("AWS_ENDPOINT_URL") != "" || os.Getenv("AWS_ENDPOINT_URL_S3") != ""
		// Records are small JSON objects read whole: no checksums beyond
		// what S3 requires, and no log line about their absence.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &Store{client: client, bucket: u.Host, prefix: strings.Trim(u.Path, "/"), etags: map[string]string{}}, nil
}

// Where implements engine.Store.
func (s *Store) Where() string {
	if s.prefix == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + s.prefix
}

func (s *Store) key(rel string) string {
	if s.prefix == "" {
		return rel
	}
	return s.prefix + "/" + rel
}

func (s *Store) recordKey(build string) string { return s.key("builds/" + build + ".json") }
func (s *Store) lockKey(build string) string   { return s.key("locks/" + build + ".json") }

// Load implements engine.Store: one listing, then the records read 16 at
// a time.
func (s *Store) Load(ctx context.Context) (map[string]*engine.BuildState, error) {
	var builds []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.key("builds/"))})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.explain(err, "")
		}
		for _, o := range page.Contents {
			name := strings.TrimSuffix(path.Base(aws.ToString(o.Key)), ".json")
			if strings.HasSuffix(aws.ToString(o.Key), ".json") {
				builds = append(builds, name)
			}
		}
	}
	out := make(map[string]*engine.BuildState, len(builds))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, b := range builds {
		g.Go(func() error {
			rec, err := s.Get(gctx, b)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if rec != nil {
				out[b] = rec
			}
			return nil
		})
	}
	return out, g.Wait()
}

// Get implements engine.Store, remembering the record's ETag for Put.
func (s *Store) Get(ctx context.Context, build string) (*engine.BuildState, error) {
	key := s.recordKey(build)
	res, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if isCode(err, "NoSuchKey") {
		s.setETag(build, "")
		return nil, nil
	}
	if err != nil {
		return nil, s.explain(err, key)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("reading s3://%s/%s: %w", s.bucket, key, err)
	}
	rec := &engine.BuildState{}
	if err := json.Unmarshal(data, rec); err != nil {
		return nil, fmt.Errorf("state object s3://%s/%s is damaged (%v): delete it (aws s3 rm s3://%s/%s) and build %q is built again", s.bucket, key, err, s.bucket, key, build)
	}
	s.setETag(build, aws.ToString(res.ETag))
	return rec, nil
}

func (s *Store) setETag(build, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.etags[build] = etag
}

// Put implements engine.Store: the record is replaced only if it is still
// the one this runner read (If-Match), or created only if there was none
// (If-None-Match: *).
func (s *Store) Put(ctx context.Context, build string, rec *engine.BuildState) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	s.mu.Lock()
	etag, read := s.etags[build]
	s.mu.Unlock()
	if !read {
		if _, err := s.Get(ctx, build); err != nil {
			return err
		}
		s.mu.Lock()
		etag = s.etags[build]
		s.mu.Unlock()
	}
	key := s.recordKey(build)
	next, ok, err := s.putIf(ctx, key, data, etag)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the record s3://%s/%s was changed by another runner since this one read it: not overwritten", s.bucket, key)
	}
	s.setETag(build, next)
	return nil
}

// putIf writes a JSON object only if it is still the one with the ETag
// ifMatch, or, with ifMatch "", only if there is none. ok is false when that
// condition failed; etag is the new object's.
func (s *Store) putIf(ctx context.Context, key string, data []byte, ifMatch string) (etag string, ok bool, err error) {
	in := &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(data), ContentType: aws.String("application/json")}
	if ifMatch == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(ifMatch)
	}
	res, err := s.client.PutObject(ctx, in)
	switch {
	case isCode(err, "PreconditionFailed") || isCode(err, "ConditionalRequestConflict"):
		return "", false, nil
	case err != nil:
		return "", false, s.explain(err, key)
	}
	return aws.ToString(res.ETag), true, nil
}

// Close implements engine.Store: every write is made at once.
func (s *Store) Close(ctx context.Context) error { return nil }

// permissions is the IAM permission each call needs.
var permissions = map[string]string{
	"ListObjectsV2": "s3:ListBucket",
	"GetObject":     "s3:GetObject",
	"PutObject":     "s3:PutObject",
	"DeleteObject":  "s3:DeleteObject",
}

// explain turns an S3 error into what a user must do: a missing bucket, a
// call denied (with the permission it needs), anything else as it came.
func (s *Store) explain(err error, key string) error {
	op := "S3"
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		op = oe.OperationName
	}
	resource := "arn:aws:s3:::" + s.bucket
	if key != "" {
		resource += "/" + key
	}
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch {
	case code == "NoSuchBucket":
		return fmt.Errorf("the state bucket %q does not exist (%s answered %s): create it (aws s3 mb s3://%s) or fix --state %s", s.bucket, op, code, s.bucket, s.Where())
	case isCode(err, "AccessDenied") || isCode(err, "Forbidden") || isCode(err, "AllAccessDisabled"):
		perm := permissions[op]
		if perm == "" {
			perm = "the S3 permission for " + op
		}
		return fmt.Errorf("access to the state in %s was denied: %s on %s needs %s; the runner's credentials need s3:ListBucket on arn:aws:s3:::%s and s3:GetObject, s3:PutObject and s3:DeleteObject on arn:aws:s3:::%s",
			s.Where(), op, resource, perm, s.bucket, s.bucket+"/"+s.key("*"))
	}
	return fmt.Errorf("the state in %s: %w", s.Where(), err)
}

// isCode reports whether err is an S3 API error with the given code.
func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
