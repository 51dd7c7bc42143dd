package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	gossh "golang.org/x/crypto/ssh"

	"github.com/imgbuild/imgbuild/drivers/amazon/awstest"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// regions are where the benchmark's builds go, in turn.
var regions = []string{"us-east-1", "eu-west-1"}

// TestNoopRerunOfAmazonBuilds measures the no-op re-run of unchanged
// amazon_ebs builds beside their full build, as real imgbuild processes
// against a moto server on 127.0.0.1, with the local sshd as every build's
// instance. It is skipped unless IMGBUILD_BENCH=1, and needs the imgbuild
// binary to measure in IMGBUILD_BENCH_BIN (imgbench -amazon runs it so).
//
// IMGBUILD_BENCH_AMAZON_BUILDS builds (default 100), spread over two
// regions, each launching with an EC2 key pair imported beforehand (the
// imgbuild process has no cloud-init to install a temporary one on the
// sshd), connecting, and making an AMI, are run once, then again unchanged.
// The second run must build nothing and verify the AMIs with one
// DescribeImages call per region: the API calls of both runs are counted by
// a reverse proxy in front of moto, and the second run's are printed.
func TestNoopRerunOfAmazonBuilds(t *testing.T) {
	testkit.OptIn(t, "IMGBUILD_BENCH", "a benchmark (imgbench -amazon runs it)")
	bin := os.Getenv("IMGBUILD_BENCH_BIN")
	if bin == "" {
		t.Fatal("IMGBUILD_BENCH_BIN is unset: set it to the imgbuild binary to measure (make build makes bin/imgbuild)")
	}
	n := 100
	if s := os.Getenv("IMGBUILD_BENCH_AMAZON_BUILDS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			t.Fatalf("IMGBUILD_BENCH_AMAZON_BUILDS=%q: want a number of builds, at least 1", s)
		}
	}
	reps := 3
	if s := os.Getenv("IMGBUILD_BENCH_REPS"); s != "" {
		var err error
		if reps, err = strconv.Atoi(s); err != nil || reps < 1 {
			t.Fatalf("IMGBUILD_BENCH_REPS=%q: want a number of re-runs, at least 1", s)
		}
	}
	moto := awstest.StartPrivate(t)
	moto.Setenv(t)
	sshd := sshtest.Start(t, sshtest.WithLogLevel("ERROR"))
	counter := newCallCounter(t, moto.URL)

	ctx := context.Background()
	key := string(gossh.MarshalAuthorizedKey(sshd.ClientSigner.PublicKey()))
	amis := map[string]string{}
	for _, region := range regions {
		c := moto.EC2(region)
		if _, err := c.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String("imgbench"), PublicKeyMaterial: []byte(key)}); err != nil {
			t.Fatalf("importing the key pair in %s: %v", region, err)
		}
		out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{
			Owners:  []string{"amazon"},
			Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"amzn*"}}, {Name: aws.String("architecture"), Values: []string{"x86_64"}}},
		})
		if err != nil || len(out.Images) == 0 {
			t.Fatalf("no public AMI in moto's %s: %v", region, err)
		}
		ids := make([]string, len(out.Images))
		for i, img := range out.Images {
			ids[i] = aws.ToString(img.ImageId)
		}
		sort.Strings(ids)
		amis[region] = ids[0]
	}

	ws := t.TempDir()
	var b strings.Builder
	for i := range n {
		region := regions[i%len(regions)]
		fmt.Fprintf(&b, `amazon_ebs(name = "b%d", region = %q, source_ami = %q, instance_type = "t3.small", ami_name = "imgbench-noop-%d",
    ssh_keypair_name = "imgbench", ssh_private_key_file = %q,
    ssh_host = "127.0.0.1", ssh_port = %d, ssh_username = %q, ssh_host_key = %q, ssh_timeout = "1m", wait_delay = "5ms")
`, i, region, amis[region], i, sshd.ClientKeyFile, sshd.Port, sshd.User, sshd.HostKeyLine)
	}
	if err := os.WriteFile(filepath.Join(ws, "images.star"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func() (time.Duration, string) {
		cmd := exec.Command(bin, "run", "--no-color", "--parallel", "25", "images.star")
		cmd.Dir = ws
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(ws, ".config"), "AWS_ENDPOINT_URL="+counter.URL)
		counter.reset()
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		if err != nil {
			t.Fatalf("%s run: %v\n%s", bin, err, tail(string(out), 40))
		}
		return took, string(out)
	}

	fmt.Printf("%d amazon_ebs builds over %d regions (%s) against moto, `imgbuild run --parallel 25` as a process\n", n, len(regions), strings.Join(regions, ", "))
	printLoad("load average before the full build")
	full, _ := run()
	fullCalls, _ := counter.take()
	printLoad("load average before the no-op re-runs")
	// The re-runs, reps times; the fastest is the figure, as noise on a
	// shared machine only adds.
	var noop time.Duration
	var spans []span
	for rep := range reps {
		took, out := run()
		if want := fmt.Sprintf("%d builds: %d up to date", n, n); !strings.Contains(out, want) {
			t.Fatalf("re-run %d did not find every build up to date (no %q):\n%s", rep+1, want, tail(out, 40))
		}
		calls, sp := counter.take()
		if rep == 0 || took < noop {
			noop, spans = took, sp
		}
		for _, region := range regions {
			if got := calls[region+" DescribeImages"]; got != 1 {
				t.Errorf("no-op re-run %d made %d DescribeImages calls in %s; want 1", rep+1, got, region)
			}
		}
		if len(calls) != len(regions) {
			t.Errorf("no-op re-run %d made calls other than one DescribeImages per region: %s", rep+1, describe(calls))
		}
	}
	fmt.Printf("  full build: %s (%d API calls); no-op re-run (all up to date, AMIs verified), fastest of %d: %s (target < 1s); ratio %.3f\n",
		ms(full), total(fullCalls), reps, ms(noop), noop.Seconds()/full.Seconds())
	fmt.Printf("  API calls of the fastest no-op re-run, from the start of the process: %s\n", describeSpans(spans))
	printLoad("load average after the no-op re-runs")
}

// callCounter is a reverse proxy in front of moto that counts the EC2 API
// calls it passes on, by region and action.
type callCounter struct {
	*httptest.Server
	mu    sync.Mutex
	calls map[string]int // "region Action" → calls
	// start is when the current run started; spans are its calls' times.
	start time.Time
	spans []span
}

// span is one call's time, from the start of its run.
type span struct {
	call       string
	begin, end time.Duration
}

// credentialScope finds the region in a SigV4 Authorization header.
var credentialScope = regexp.MustCompile(`Credential=[^/]+/[0-9]+/([^/]+)/`)

func newCallCounter(t *testing.T, target string) *callCounter {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c := &callCounter{calls: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		action := "?"
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
			action = form.Get("Action")
		}
		region := "?"
		if m := credentialScope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			region = m[1]
		}
		begin := time.Now()
		proxy.ServeHTTP(w, r)
		end := time.Now()
		c.mu.Lock()
		c.calls[region+" "+action]++
		c.spans = append(c.spans, span{region + " " + action, begin.Sub(c.start), end.Sub(c.start)})
		c.mu.Unlock()
	}))
	t.Cleanup(c.Close)
	return c
}

// reset starts counting the calls of a run that starts now.
func (c *callCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls, c.spans, c.start = map[string]int{}, nil, time.Now()
}

// take returns the calls counted since the last reset, and their spans.
func (c *callCounter) take() (map[string]int, []span) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls, c.spans
}

func total(calls map[string]int) int {
	n := 0
	for _, k := range calls {
		n += k
	}
	return n
}

func describe(calls map[string]int) string {
	if len(calls) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range calls {
		parts = append(parts, fmt.Sprintf("%s x%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func describeSpans(spans []span) string {
	var parts []string
	for _, s := range spans {
		parts = append(parts, fmt.Sprintf("%s %s-%s", s.call, ms(s.begin), ms(s.end)))
	}
	return strings.Join(parts, ", ")
}

func printLoad(what string) {
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("  (%s: %s)\n", what, strings.Join(strings.Fields(string(load))[:3], " "))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond)) }

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
