package s3state_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/imgbuild/imgbuild/drivers/amazon/awstest"
	"github.com/imgbuild/imgbuild/drivers/amazon/s3state"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

var buckets atomic.Int32

// bucket makes a fresh bucket in the shared moto server.
func bucket(t *testing.T) (string, *s3.Client) {
	t.Helper()
	awstest.Start(t)
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	name := fmt.Sprintf("state-%d-%d", os.Getpid(), buckets.Add(1))
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	return name, c
}

func open(t *testing.T, location string) *s3state.Store {
	t.Helper()
	s, err := s3state.Open(context.Background(), location)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func record(id string) *engine.BuildState {
	return &engine.BuildState{Driver: "local", Status: event.Succeeded, Fingerprint: "f-" + id, Artifact: &engine.Artifact{ID: id}}
}

func TestRecordsAreOneObjectPerBuildAndWritesAreConditional(t *testing.T) {
	b, c := bucket(t)
	ctx := context.Background()
	a := open(t, "s3://"+b+"/team/images")
	if err := a.Put(ctx, "base", record("one")); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, "web", record("two")); err != nil {
		t.Fatal(err)
	}
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &b})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, *o.Key)
	}
	if got := strings.Join(keys, " "); got != "team/images/builds/base.json team/images/builds/web.json" {
		t.Errorf("objects: %s", got)
	}
	other := open(t, "s3://"+b+"/team/images")
	all, err := other.Load(ctx)
	if err != nil || len(all) != 2 || all["base"].Artifact.ID != "one" {
		t.Fatalf("load: %v %v", all, err)
	}
	// Runner a writes base again; other still holds the record it read
	// before, so its write is refused rather than overwriting a's.
	if err := a.Put(ctx, "base", record("three")); err != nil {
		t.Fatal(err)
	}
	err = other.Put(ctx, "base", record("stale"))
	if err == nil || !strings.Contains(err.Error(), "team/images/builds/base.json was changed by another runner since this one read it: not overwritten") {
		t.Errorf("stale write: %v", err)
	}
	// Two runners creating one record: only the first gets it.
	fresh1, fresh2 := open(t, "s3://"+b+"/p"), open(t, "s3://"+b+"/p")
	if _, err := fresh1.Get(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh2.Get(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if err := fresh1.Put(ctx, "x", record("1")); err != nil {
		t.Fatal(err)
	}
	if err := fresh2.Put(ctx, "x", record("2")); err == nil {
		t.Errorf("If-None-Match: * let a second runner create the record")
	}
}

func TestALockIsWaitedForAndAnExpiredLeaseTakenOver(t *testing.T) {
	b, _ := bucket(t)
	ctx := context.Background()
	s := open(t, "s3://"+b)
	held, err := s.Lock(ctx, "base", engine.LockOptions{Holder: "runner-a", Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var told engine.LockInfo
	_, err = s.Lock(ctx, "base", engine.LockOptions{Holder: "runner-b", Timeout: 300 * time.Millisecond, Lease: time.Hour, Waiting: func(i engine.LockInfo) { told = i }})
	var le *engine.LockedError
	if !errors.As(err, &le) || told.Holder != "runner-a" {
		t.Fatalf("a held lock: %v (told %+v)", err, told)
	}
	since := le.Info.Since.UTC().Format(time.RFC3339)
	if want := `build "base" is locked by runner-a since ` + since; !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "gave up after waiting --lock-timeout 300ms") {
		t.Errorf("message:\n%s\nwant it to start %q", err, want)
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}

	// A runner that dies stops renewing: its short lease expires and
	// another takes the lock over; the dead one's lease is then lost.
	dead, err := s.Lock(ctx, "web", engine.LockOptions{Holder: "runner-dead", Lease: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	killLease(dead)
	took, err := s.Lock(ctx, "web", engine.LockOptions{Holder: "runner-c", Lease: time.Hour, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("took the lock over after %s, before the lease expired", waited)
	}
	took.Release(ctx)
}

// killLease stops a lease's renewals as a dead runner's stop, without
// releasing the lock.
func killLease(l engine.Lease) {
	l.(interface{ Abandon() }).Abandon()
}

func TestABucketThatDoesNotExistOrDeniesAccessSaysWhichCallAndPermission(t *testing.T) {
	awstest.Start(t)
	_, err := open(t, "s3://no-such-state-bucket/x").Load(context.Background())
	if err == nil || !strings.Contains(err.Error(), `the state bucket "no-such-state-bucket" does not exist (ListObjectsV2 answered NoSuchBucket): create it (aws s3 mb s3://no-such-state-bucket) or fix --state s3://no-such-state-bucket/x`) {
		t.Errorf("missing bucket: %v", err)
	}

	moto := awstest.StartPrivate(t)
	t.Setenv("AWS_ENDPOINT_URL", moto.URL)
	cfg, _ := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"))
	admin := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := admin.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("locked-down")}); err != nil {
		t.Fatal(err)
	}
	// May list and read, but not write. (Load is not called: moto 5.2.1
	// refuses ListObjectsV2's signature under IAM enforcement, moto issue
	// 5948.)
	id, secret := moto.IAMUser(t, "reader", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:ListBucket","s3:GetObject"],"Resource":"*"}]}`)
	moto.EnforceIAM(t)
	t.Setenv("AWS_ACCESS_KEY_ID", id)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	s := open(t, "s3://locked-down/ci")
	err = s.Put(context.Background(), "base", record("x"))
	want := "access to the state in s3://locked-down/ci was denied: PutObject on arn:aws:s3:::locked-down/ci/builds/base.json needs s3:PutObject; the runner's credentials need s3:ListBucket on arn:aws:s3:::locked-down and s3:GetObject, s3:PutObject and s3:DeleteObject on arn:aws:s3:::locked-down/ci/*"
	if err == nil || err.Error() != want {
		t.Errorf("denied write:\n%v\nwant:\n%s", err, want)
	}
}

func TestACorruptStateObjectNamesItAndHowToRecover(t *testing.T) {
	b, c := bucket(t)
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &b, Key: aws.String("p/builds/base.json"), Body: strings.NewReader("{not json")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = open(t, "s3://"+b+"/p").Load(context.Background())
	want := fmt.Sprintf(`state object s3://%s/p/builds/base.json is damaged (invalid character 'n' looking for beginning of object key string): delete it (aws s3 rm s3://%s/p/builds/base.json) and build "base" is built again`, b, b)
	if err == nil || err.Error() != want {
		t.Errorf("corrupt object:\n%v\nwant:\n%s", err, want)
	}
}
