package s3state

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/retry"
)

// Lock implements engine.Store. The lock object is created with
// If-None-Match: *; one whose lease expired (its holder died) is taken over
// with If-Match on the ETag read, so that of two runners taking it over
// only one succeeds. While the lock is held its lease is renewed every
// third of its length.
func (s *Store) Lock(ctx context.Context, build string, opts engine.LockOptions) (engine.Lease, error) {
	timeout, lease := opts.Timeout, opts.Lease
	if timeout <= 0 {
		timeout = engine.DefaultLockTimeout
	}
	if lease <= 0 {
		lease = engine.DefaultLease
	}
	key := s.lockKey(build)
	start := time.Now()
	poll := min(time.Second, lease/4)
	told := false
	for {
		now := time.Now().UTC()
		info := engine.LockInfo{Holder: opts.Holder, Since: now, Expires: now.Add(lease)}
		etag, ok, err := s.putLock(ctx, key, info, "")
		if err != nil {
			return nil, err
		}
		if ok {
			return s.hold(key, info, etag, lease), nil
		}
		held, heldTag, err := s.readLock(ctx, key)
		if err != nil {
			return nil, err
		}
		switch {
		case heldTag == "":
			continue // released in between
		case time.Now().After(held.Expires):
			// Its holder stopped renewing it: take it over.
			etag, ok, err := s.putLock(ctx, key, info, heldTag)
			if err != nil {
				return nil, err
			}
			if ok {
				return s.hold(key, info, etag, lease), nil
			}
			continue
		}
		if opts.NoWait {
			return nil, engine.ErrLockHeld
		}
		if !told && opts.Waiting != nil {
			told = true
			opts.Waiting(held)
		}
		if time.Since(start) >= timeout {
			return nil, &engine.LockedError{Build: build, Info: held, Waited: timeout}
		}
		if err := retry.Sleep(ctx, poll); err != nil {
			return nil, err
		}
	}
}

// putLock writes the lock object: created only if absent (ifMatch ""), else
// only if it is still the one with that ETag. ok is false when the
// condition failed.
func (s *Store) putLock(ctx context.Context, key string, info engine.LockInfo, ifMatch string) (etag string, ok bool, err error) {
	data, _ := json.Marshal(info)
	return s.putIf(ctx, key, data, ifMatch)
}

// readLock reads the lock object; an empty ETag means there is none.
func (s *Store) readLock(ctx context.Context, key string) (engine.LockInfo, string, error) {
	var info engine.LockInfo
	res, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if isCode(err, "NoSuchKey") {
		return info, "", nil
	}
	if err != nil {
		return info, "", s.explain(err, key)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err == nil {
		err = json.Unmarshal(data, &info)
	}
	if err != nil {
		// A lock nobody can read is treated as expired, so that it is
		// taken over rather than waited for forever.
		info = engine.LockInfo{Holder: "an unreadable lock object", Expires: time.Time{}}
	}
	return info, aws.ToString(res.ETag), nil
}

// hold starts renewing a lock this runner took.
func (s *Store) hold(key string, info engine.LockInfo, etag string, lease time.Duration) *s3Lease {
	l := &s3Lease{store: s, key: key, info: info, etag: etag, lease: lease, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.renew()
	return l
}

type s3Lease struct {
	store *Store
	key   string
	info  engine.LockInfo
	lease time.Duration

	mu   sync.Mutex
	etag string

	lost     chan struct{}
	lostOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func (l *s3Lease) Lost() <-chan struct{} { return l.lost }

// renew extends the lease every third of its length, until Release. A
// renewal refused (another runner took the lock over) or failing until the
// lease ran out loses the lease.
func (l *s3Lease) renew() {
	defer close(l.done)
	retry.Every(l.stop, l.lease/3, func() bool {
		l.mu.Lock()
		etag := l.etag
		l.mu.Unlock()
		info := l.info
		info.Expires = time.Now().UTC().Add(l.lease)
		ctx, cancel := context.WithTimeout(context.Background(), l.lease/3)
		next, ok, err := l.store.putLock(ctx, l.key, info, etag)
		cancel()
		switch {
		case err == nil && ok:
			l.mu.Lock()
			l.etag, l.info = next, info
			l.mu.Unlock()
		case err == nil && !ok, time.Now().After(l.info.Expires):
			l.lostOnce.Do(func() { close(l.lost) })
			return false
		}
		return true
	})
}

// Release stops the renewals and deletes the lock object if it is still
// this runner's (If-Match).
func (l *s3Lease) Release(ctx context.Context) error {
	var err error
	l.stopOnce.Do(func() {
		close(l.stop)
		<-l.done
		select {
		case <-l.lost:
			return // not ours any more
		default:
		}
		l.mu.Lock()
		etag := l.etag
		l.mu.Unlock()
		_, derr := l.store.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &l.store.bucket, Key: &l.key, IfMatch: aws.String(etag)})
		if derr != nil && !isCode(derr, "PreconditionFailed") && !isCode(derr, "NoSuchKey") {
			err = fmt.Errorf("releasing the lock %s: %w", l.key, l.store.explain(derr, l.key))
		}
	})
	return err
}

// Abandon stops renewing the lease without releasing the lock, as a runner
// that dies does (tests).
func (l *s3Lease) Abandon() {
	l.stopOnce.Do(func() {
		close(l.stop)
		<-l.done
	})
}
