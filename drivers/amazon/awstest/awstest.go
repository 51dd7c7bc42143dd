// Package awstest runs the amazon driver's tests against a real moto server
// on 127.0.0.1, never against AWS and never against a mock of our client.
//
// Start starts the package's moto server once (moto_server's own code, with
// the EC2 behaviour imgbuild needs added: see imgbuild_moto.py) on a free
// port and points the SDK's standard configuration at it: AWS_ENDPOINT_URL,
// dummy credentials, empty shared files, the instance metadata service
// disabled. Guard is an SDK middleware that refuses to send a request
// anywhere but that server, so that nothing a test does can reach AWS.
//
// Around it: Faults fails, loses the answer of, or cancels the k-th API
// call (a test-only middleware); Inventory lists what exists in moto, to
// find what a build left; CloudInit plays the instance's cloud-init,
// installing a launched instance's key pair on the local sshd the tests
// connect to; StartPrivate and the IAM helpers give a test a server of its
// own with IAM enforcement; Instances and PublicImages the environment of
// such a server whose instances are the local sshd and whose public AMIs
// are the ones a test names.
//
// When moto_server is not installed, Start skips the test through
// testkit.Skip: a failure under IMGBUILD_INTEGRATION=1, where CI must not
// skip.
//
// The package knows nothing of builds, drivers or Starlark.
package awstest

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

//go:embed imgbuild_moto.py
var launcher []byte

// Account is the AWS account moto plays.
const Account = "123456789012"

// PendingPolls is how many DescribeImages calls see a new AMI "pending"
// before it is available, so that waiters wait and report progress.
const PendingPolls = 2

// Server is one running moto server.
type Server struct {
	// URL is its endpoint ("http://127.0.0.1:41234"), Port its port.
	URL  string
	Port int

	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
	dir     string
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
	sharedDir  string
)

// Main runs the package's tests and then stops the shared server, if one
// was started. Call it from TestMain: os.Exit(awstest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	return code
}

// Start returns the package's moto server, starting it the first time,
// and points the SDK's environment at it. It skips the test when moto is
// not installed (fails it under IMGBUILD_INTEGRATION=1).
func Start(t testing.TB) *Server {
	t.Helper()
	python := Python(t)
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "imgbuild-moto-")
		if sharedErr != nil {
			return
		}
		shared, sharedErr = start(python, sharedDir, []string{fmt.Sprintf("IMGBUILD_MOTO_PENDING_POLLS=%d", PendingPolls)})
		if sharedErr != nil {
			return
		}
		sharedErr = shared.setEnv(sharedDir)
	})
	if sharedErr != nil {
		t.Fatalf("awstest: %v", sharedErr)
	}
	return shared
}

// StartPrivate starts a moto server for this test alone (with env added
// to its environment), stopped when the test ends. It does not change the
// SDK's environment: the test points at it itself (t.Setenv).
func StartPrivate(t testing.TB, env ...string) *Server {
	t.Helper()
	python := Python(t)
	dir := t.TempDir()
	s, err := start(python, dir, env)
	if err != nil {
		t.Fatalf("awstest: %v", err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("moto log:\n%s", s.Log())
		}
	})
	return s
}

// Python returns a Python interpreter that has moto's server, or skips the
// test (fails it under IMGBUILD_INTEGRATION=1) when moto_server is not
// installed.
func Python(t testing.TB) string {
	t.Helper()
	server, err := exec.LookPath("moto_server")
	if err != nil {
		testkit.Skip(t, "moto_server not found: install it with pip install 'moto[server]' to run the AWS tests")
		return ""
	}
	candidates := []string{"python3"}
	if head, err := os.ReadFile(server); err == nil {
		first, _, _ := strings.Cut(string(head), "\n")
		if strings.HasPrefix(first, "#!") && strings.Contains(first, "python") {
			fields := strings.Fields(strings.TrimPrefix(first, "#!"))
			if len(fields) > 0 && !strings.HasSuffix(fields[0], "/env") {
				candidates = append([]string{fields[0]}, candidates...)
			}
		}
	}
	for _, py := range candidates {
		if err := exec.Command(py, "-c", "import moto.server").Run(); err == nil {
			return py
		}
	}
	testkit.Skipf(t, "moto_server is at %s, but no Python interpreter (%s) imports moto.server", server, strings.Join(candidates, ", "))
	return ""
}

func start(python, dir string, env []string) (*Server, error) {
	script := filepath.Join(dir, "imgbuild_moto.py")
	if err := os.WriteFile(script, launcher, 0o600); err != nil {
		return nil, err
	}
	var lastErr error
	for try := 0; try < 3; try++ {
		port, err := testkit.FreePort()
		if err != nil {
			return nil, err
		}
		s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Port: port, dir: dir, logPath: filepath.Join(dir, fmt.Sprintf("moto-%d.log", port))}
		if lastErr = s.run(python, script, env); lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

func (s *Server) run(python, script string, env []string) error {
	logf, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(python, script, "-H", "127.0.0.1", "-p", strconv.Itoa(s.Port))
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// moto dies with the test binary, however that ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting moto: %w", err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.exited) }()
	died, up := false, false
	testkit.Poll(60*time.Second, func() bool {
		select {
		case <-s.exited:
			died = true
			return true
		default:
		}
		resp, err := http.Get(s.URL + "/moto-api/data.json")
		if err == nil {
			resp.Body.Close()
			up = resp.StatusCode == http.StatusOK
		}
		return up
	})
	switch {
	case died:
		return fmt.Errorf("moto exited at start: %s", s.Log())
	case up:
		return nil
	}
	s.Stop()
	return fmt.Errorf("moto did not answer on %s within 60s: %s", s.URL, s.Log())
}

// setEnv points the SDK's standard configuration at s, for the whole test
// process: endpoint, dummy credentials, shared files of its own (never the
// developer's ~/.aws) and no instance metadata service.
func (s *Server) setEnv(dir string) error {
	unset, set, err := s.sdkEnv(dir)
	if err != nil {
		return err
	}
	for _, k := range unset {
		os.Unsetenv(k)
	}
	for k, v := range set {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Setenv points the SDK's standard configuration at s for this test only
// (t.Setenv), as Start does for the package's server: for a server of
// StartPrivate that the test's builds use.
func (s *Server) Setenv(t testing.TB) {
	t.Helper()
	unset, set, err := s.sdkEnv(t.TempDir())
	if err != nil {
		t.Fatalf("awstest: %v", err)
	}
	for _, k := range unset {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for k, v := range set {
		t.Setenv(k, v)
	}
}

// sdkEnv is the environment that points the SDK at s: the variables to
// unset and those to set, with empty shared files written in dir.
func (s *Server) sdkEnv(dir string) (unset []string, set map[string]string, err error) {
	creds := filepath.Join(dir, "credentials")
	conf := filepath.Join(dir, "config")
	for _, f := range []string{creds, conf} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			return nil, nil, err
		}
	}
	unset = []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_STS",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_REGION", "AWS_DEFAULT_REGION"}
	set = map[string]string{
		"AWS_ENDPOINT_URL":            s.URL,
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_SHARED_CREDENTIALS_FILE": creds,
		"AWS_CONFIG_FILE":             conf,
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
	return unset, set, nil
}

// Stop stops the server.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// Log returns what the server logged.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// Guard returns an SDK middleware that refuses to send a request anywhere
// but this server: add it to every client a test makes, so that a
// misconfiguration fails the test instead of reaching AWS. It also refuses
// to run when AWS_ENDPOINT_URL is unset.
func (s *Server) Guard() func(*middleware.Stack) error {
	want, _ := url.Parse(s.URL)
	return func(stack *middleware.Stack) error {
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("awstest/guard",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				req, ok := in.Request.(*smithyhttp.Request)
				if !ok {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, errors.New("awstest: refusing a request that is not HTTP")
				}
				if os.Getenv("AWS_ENDPOINT_URL") == "" {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, errors.New("awstest: refusing to send a request: AWS_ENDPOINT_URL is unset, so it could reach AWS")
				}
				if req.URL.Host != want.Host {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("awstest: refusing to send a request to %s: tests talk to moto at %s only", req.URL.Host, want.Host)
				}
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	}
}

// EC2 returns the test's own EC2 client for region (dummy credentials,
// guarded), for setting things up and looking at what a build did.
func (s *Server) EC2(region string) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       region,
		BaseEndpoint: aws.String(s.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		APIOptions:   []func(*middleware.Stack) error{s.Guard()},
	})
}
