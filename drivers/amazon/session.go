package amazon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/imgbuild/imgbuild/engine"
)

// Options tune the driver for a program or for its tests; the zero value is
// right for production.
type Options struct {
	// APIOptions are added to the middleware stack of every AWS client the
	// driver makes (EC2 and STS). Tests add fault injection and a guard
	// that refuses any endpoint but the local moto server here.
	APIOptions []func(*middleware.Stack) error
	// CallsPerRegion caps how many API calls are in flight at once in one
	// region, across every build of the process; 0 means 16.
	CallsPerRegion int
	// MaxAttempts is how many times a call is tried when AWS throttles it
	// or fails transiently; 0 means 8.
	MaxAttempts int
}

// Driver is the amazon driver: the amazon_ebs() builder and the aws_ami()
// lookup, and what their builds share per region (a retryer whose
// client-side rate limit adapts to throttling, and the cap on calls in
// flight). One Driver serves a whole process.
type Driver struct {
	opts Options

	mu      sync.Mutex
	regions map[string]*regionShare
}

// regionShare is what every build of the process shares in one region.
type regionShare struct {
	retryer aws.Retryer
	calls   chan struct{}
}

// New returns a Driver with opts.
func New(opts Options) *Driver {
	if opts.CallsPerRegion <= 0 {
		opts.CallsPerRegion = 16
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	return &Driver{opts: opts, regions: map[string]*regionShare{}}
}

// Register adds amazon_ebs() and aws_ami() to r, with the default options.
func Register(r *engine.Registry) { New(Options{}).Register(r) }

// Register adds amazon_ebs() and aws_ami() to r.
func (d *Driver) Register(r *engine.Registry) {
	r.AddBuilder(d.Def())
	r.AddLookup(d.lookupDef())
	r.AddReaper(JournalKind, reaper{d})
}

func (d *Driver) share(region string) *regionShare {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.regions[region]; ok {
		return s
	}
	s := &regionShare{
		retryer: retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
			o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
				so.MaxAttempts = d.opts.MaxAttempts
				so.MaxBackoff = 20 * time.Second
				// Throttling is paced by the adaptive rate limit, shared
				// by every build in the region; a retry quota on top
				// would make fifty builds give up together.
				so.RateLimiter = ratelimit.None
			})
		}),
		calls: make(chan struct{}, d.opts.CallsPerRegion),
	}
	d.regions[region] = s
	return s
}

// capCalls is a Finalize middleware, placed after the retryer so that it
// holds a slot per attempt and never while backing off: it keeps the calls
// in flight in a region under CallsPerRegion.
func (d *Driver) capCalls(stack *middleware.Stack) error {
	return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("imgbuild/calls-per-region",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			sem := d.share(awsmiddleware.GetRegion(ctx)).calls
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return middleware.FinalizeOutput{}, middleware.Metadata{}, ctx.Err()
			}
			defer func() { <-sem }()
			return next.HandleFinalize(ctx, in)
		}), "Retry", middleware.After)
}

// explainErrors is an Initialize middleware that turns the API's errors
// into *APIError, which say which call failed where and what to do.
func explainErrors(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("imgbuild/explain-errors",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			if err != nil {
				err = newAPIError(ctx, err)
			}
			return out, md, err
		}), middleware.After)
}

// sessionConfig is what a session is made from.
type sessionConfig struct {
	Region     string
	Profile    string
	AssumeRole *AssumeRole
	// Name names the role session (the build's name).
	Name string
}

// session is one build's (or one lookup's) AWS configuration: its
// credentials, and EC2 clients per region made from it.
type session struct {
	d   *Driver
	sc  sessionConfig
	cfg aws.Config

	mu      sync.Mutex
	clients map[string]*ec2.Client
}

// newSession loads the SDK's configuration the standard way (environment,
// shared files, profile; AWS_ENDPOINT_URL and friends apply unchanged) and
// adds assume_role.
func (d *Driver) newSession(ctx context.Context, sc sessionConfig) (*session, error) {
	apiOptions := append([]func(*middleware.Stack) error{explainErrors, d.capCalls}, d.opts.APIOptions...)
	opts := []func(*config.LoadOptions) error{config.WithAPIOptions(apiOptions)}
	if sc.Region != "" {
		opts = append(opts, config.WithRegion(sc.Region))
	}
	if sc.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(sc.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		var missing config.SharedConfigProfileNotExistError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("AWS profile %q is not in %s or %s: check profile (or AWS_PROFILE), or run \"aws configure --profile %s\"",
				missing.Profile, sharedCredentialsFile(), sharedConfigFile(), missing.Profile)
		}
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	s := &session{d: d, sc: sc, cfg: cfg, clients: map[string]*ec2.Client{}}
	if ar := sc.AssumeRole; ar != nil {
		name := ar.SessionName
		if name == "" {
			name = "imgbuild-" + sc.Name
		}
		stsClient := sts.NewFromConfig(cfg, func(o *sts.Options) { o.Retryer = d.share(cfg.Region).retryer })
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, ar.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = sessionName(name)
			if ar.ExternalID != "" {
				o.ExternalID = aws.String(ar.ExternalID)
			}
			if ar.Duration > 0 {
				o.Duration = ar.Duration
			}
		}))
		s.cfg = cfg
	}
	return s, nil
}

// sessionName makes name a valid role session name: at most 64 of
// [A-Za-z0-9+=,.@-].
func sessionName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("+=,.@-", c) >= 0) {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// region is the session's region: the one asked for, else the SDK's.
func (s *session) region() string {
	if s.sc.Region != "" {
		return s.sc.Region
	}
	return s.cfg.Region
}

// ec2 returns the session's EC2 client for region, sharing the region's
// retryer with every other build.
func (s *session) ec2(region string) *ec2.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[region]; ok {
		return c
	}
	c := ec2.NewFromConfig(s.cfg, func(o *ec2.Options) {
		o.Region = region
		o.Retryer = s.d.share(region).retryer
	})
	s.clients[region] = c
	return c
}

// checkCredentials gets credentials now, so that a build without any fails
// before it does anything, saying where it looked.
func (s *session) checkCredentials(ctx context.Context) error {
	if s.cfg.Credentials == nil {
		return s.noCredentials(errors.New("no credentials provider"))
	}
	if _, err := s.cfg.Credentials.Retrieve(ctx); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if ar := s.sc.AssumeRole; ar != nil {
			var api *APIError
			if errors.As(err, &api) {
				return fmt.Errorf("assuming role %s: %w", ar.RoleARN, api)
			}
			if strings.Contains(err.Error(), "AssumeRole") {
				return fmt.Errorf("assuming role %s: %w", ar.RoleARN, err)
			}
		}
		return s.noCredentials(err)
	}
	return nil
}

// noCredentials explains that the credential chain found nothing: where it
// looked, in order, and how to give it something.
func (s *session) noCredentials(err error) error {
	profile := s.sc.Profile
	if profile == "" {
		profile = os.Getenv("AWS_PROFILE")
	}
	if profile == "" {
		profile = "default"
	}
	unset := func(names ...string) string {
		var set []string
		for _, n := range names {
			if os.Getenv(n) != "" {
				set = append(set, n)
			}
		}
		if len(set) == 0 {
			return strings.Join(names, " and ") + " not set"
		}
		return strings.Join(set, " and ") + " set, but not usable"
	}
	imds := "no instance role answered"
	if strings.EqualFold(os.Getenv("AWS_EC2_METADATA_DISABLED"), "true") {
		imds = "disabled by AWS_EC2_METADATA_DISABLED"
	}
	chain := []string{
		fmt.Sprintf("the environment (%s)", unset("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
		fmt.Sprintf("profile %q of the shared files %s and %s (keys, sso_session, role_arn, credential_process, web_identity_token_file)", profile, sharedCredentialsFile(), sharedConfigFile()),
		fmt.Sprintf("web identity (%s)", unset("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN")),
		fmt.Sprintf("container credentials, ECS or EKS Pod Identity (%s)", unset("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")),
		fmt.Sprintf("the EC2 instance role through the instance metadata service (%s)", imds),
	}
	for i := range chain {
		chain[i] = fmt.Sprintf("%d. %s", i+1, chain[i])
	}
	return fmt.Errorf("no AWS credentials found; the SDK's credential chain searched, in order: %s. Give credentials to one of them (export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, run \"aws configure\" or \"aws sso login\"), or name a profile that has them with profile = \"...\" (the SDK said: %v)",
		strings.Join(chain, "; "), err)
}

func sharedCredentialsFile() string {
	if f := os.Getenv("AWS_SHARED_CREDENTIALS_FILE"); f != "" {
		return f
	}
	return config.DefaultSharedCredentialsFilename()
}

func sharedConfigFile() string {
	if f := os.Getenv("AWS_CONFIG_FILE"); f != "" {
		return f
	}
	return config.DefaultSharedConfigFilename()
}
