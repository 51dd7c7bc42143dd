// Package filelock serializes the read-modify-write updates of a file
// that concurrent imgbuild runs share (the state, a manifest), so that no
// run's update is lost: the writer holds an exclusive advisory lock
// (flock, through github.com/gofrs/flock) on a lock file of its own for the
// whole update. The lock is on a separate file because the guarded file is
// replaced by rename on every write, and a lock on a replaced file guards
// nothing.
//
// It knows nothing of what the files hold.
package filelock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// Wait is how long With waits for a lock another process holds.
var Wait = 5 * time.Minute

// local serializes this process's own writers of one lock before they take
// the file lock, so that they queue instead of all waiting in flock.
var local sync.Map // lock path → chan struct{} (a semaphore of one)

// With runs fn holding the exclusive lock of the file lockPath (see Lock).
func With(ctx context.Context, lockPath string, fn func() error) error {
	unlock, err := Lock(ctx, lockPath)
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}

// Lock takes the exclusive lock of the file lockPath (created, with its
// directory, if needed), waiting for it until ctx ends or Wait has gone
// by, and returns the function that releases it.
func Lock(ctx context.Context, lockPath string) (unlock func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, Wait)
	defer cancel()
	busy := func(err error) error {
		return fmt.Errorf("waiting for the lock %s: another imgbuild run is writing the same file: %w", lockPath, err)
	}
	s, _ := local.LoadOrStore(lockPath, make(chan struct{}, 1))
	sem := s.(chan struct{})
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, busy(ctx.Err())
	}
	release := func() { <-sem }
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o755); err != nil {
		release()
		return nil, fmt.Errorf("creating the directory of the lock %s: %w", lockPath, err)
	}
	// flock(2) waits in the kernel, and the lock goes to a waiter as soon
	// as it is released; a waiter given up on releases it when it comes.
	l := flock.New(lockPath)
	got := make(chan error, 1)
	go func() { got <- l.Lock() }()
	select {
	case err := <-got:
		if err != nil {
			release()
			return nil, fmt.Errorf("taking the lock %s: %w", lockPath, err)
		}
	case <-ctx.Done():
		go func() {
			if <-got == nil {
				l.Close()
			}
			release()
		}()
		return nil, busy(ctx.Err())
	}
	return func() {
		l.Close()
		release()
	}, nil
}

// For returns the lock file of an output file of a workspace:
// <workspace>/.imgbuild/locks/<name>-<hash of its absolute path>.lock, so
// that the output's directory holds nothing but what the build writes.
// Without a workspace, it is .<name>.lock beside the file.
func For(workspace, file string) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		abs = file
	}
	if workspace == "" {
		return filepath.Join(filepath.Dir(abs), "."+filepath.Base(abs)+".lock")
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(workspace, ".imgbuild", "locks", filepath.Base(abs)+"-"+hex.EncodeToString(sum[:6])+".lock")
}
