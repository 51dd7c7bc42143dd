package cfgtool

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
)

// Stage is a directory on the build's machine that a tool's files (its
// playbooks, manifests, cookbooks, configuration) are uploaded to before
// it runs, and that is removed when it is done.
type Stage struct {
	// Dir is the directory's path on the machine.
	Dir  string
	comm engine.Communicator
	made bool            // made by us: remove it whole
	dirs map[string]bool // directories made inside it
}

// NewStage makes the staging directory dir on the machine, mode 0700 since
// it may hold secrets (extra variables, node JSON); "" means a fresh
// /tmp/imgbuild-<tool>-<random>. A directory that exists is used as it is
// and only what was uploaded is removed.
func NewStage(ctx context.Context, comm engine.Communicator, tool, dir string) (*Stage, error) {
	s := &Stage{Dir: dir, comm: comm}
	if dir == "" {
		s.Dir = FreshDir("/tmp", tool)
	}
	cdir, err := s.CommandPath(s.Dir)
	if err != nil {
		return nil, err
	}
	line := "if [ -d " + shellquote.Quote(cdir) + " ]; then echo exists; else mkdir -p -m 0700 " + shellquote.Quote(cdir) + "; fi"
	var out bytes.Buffer
	var errOut bytes.Buffer
	status, err := comm.Run(ctx, &engine.Command{Command: line, Stdout: &out, Stderr: &errOut})
	if err != nil {
		return nil, fmt.Errorf("making the staging directory %s on the machine: %w", s.Dir, err)
	}
	if status != 0 {
		return nil, fmt.Errorf("making the staging directory %s on the machine: %s", s.Dir, bytes.TrimSpace(errOut.Bytes()))
	}
	s.made = !bytes.Contains(out.Bytes(), []byte("exists"))
	return s, nil
}

// FreshDir is a new directory's path in parent on the machine,
// imgbuild-<tool>-<random>, for NewStage.
func FreshDir(parent, tool string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return path.Join(parent, "imgbuild-"+tool+"-"+hex.EncodeToString(b[:]))
}

// Path is name's path inside the staging directory, as uploads see it.
func (s *Stage) Path(name string) string { return path.Join(s.Dir, name) }

// CommandPath is the path commands must use for p, a path on the machine
// (different from p only for the local communicator).
func (s *Stage) CommandPath(p string) (string, error) {
	if pm, ok := s.comm.(engine.PathMapper); ok {
		return pm.CommandPath(p)
	}
	return p, nil
}

// CmdPath is the path commands must use for name inside the staging
// directory.
func (s *Stage) CmdPath(name string) string {
	p, err := s.CommandPath(s.Path(name))
	if err != nil {
		return s.Path(name) // CommandPath already succeeded for Dir
	}
	return p
}

// UploadDir copies the local directory src into the staging directory as
// name, and returns its path on the machine.
func (s *Stage) UploadDir(ctx context.Context, name, src string) (string, error) {
	dst := s.Path(name)
	if err := s.comm.UploadDir(ctx, dst, src, engine.Transfer{}); err != nil {
		return "", fmt.Errorf("uploading %s to %s: %w", src, dst, err)
	}
	return dst, nil
}

// UploadFile copies the local file src into the staging directory as name.
func (s *Stage) UploadFile(ctx context.Context, name, src string) (string, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	return s.Write(ctx, name, data, fi.Mode().Perm())
}

// Upload copies src, a file or a directory, into the staging directory as
// name.
func (s *Stage) Upload(ctx context.Context, name, src string) (string, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		return s.UploadDir(ctx, name, src)
	}
	return s.UploadFile(ctx, name, src)
}

// Write writes data to the file name in the staging directory.
func (s *Stage) Write(ctx context.Context, name string, data []byte, mode fs.FileMode) (string, error) {
	dst := s.Path(name)
	if err := s.mkdir(ctx, path.Dir(dst)); err != nil {
		return "", err
	}
	if err := s.comm.Upload(ctx, dst, bytes.NewReader(data), engine.Transfer{Size: int64(len(data)), Mode: mode}); err != nil {
		return "", fmt.Errorf("writing %s on the machine: %w", dst, err)
	}
	return dst, nil
}

// mkdir makes dir, a directory inside the staging directory, unless it
// was made already: not every communicator's Upload makes the directories
// a file goes in.
func (s *Stage) mkdir(ctx context.Context, dir string) error {
	if dir == s.Dir || s.dirs[dir] {
		return nil
	}
	cdir, err := s.CommandPath(dir)
	if err != nil {
		return err
	}
	var errOut bytes.Buffer
	status, err := s.comm.Run(ctx, &engine.Command{Command: "mkdir -p " + shellquote.Quote(cdir), Stderr: &errOut})
	if err == nil && status != 0 {
		err = fmt.Errorf("%s", bytes.TrimSpace(errOut.Bytes()))
	}
	if err != nil {
		return fmt.Errorf("making %s on the machine: %w", dir, err)
	}
	if s.dirs == nil {
		s.dirs = map[string]bool{}
	}
	s.dirs[dir] = true
	return nil
}

// Remove deletes the staging directory (or, when it was there before,
// what was uploaded to it: names), even when ctx was cancelled.
func (s *Stage) Remove(ctx context.Context, names ...string) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	targets := []string{s.Dir}
	if !s.made {
		targets = targets[:0]
		for _, n := range names {
			targets = append(targets, s.Path(n))
		}
	}
	if len(targets) == 0 {
		return nil
	}
	args := []string{"rm", "-rf", "--"}
	for _, t := range targets {
		ct, err := s.CommandPath(t)
		if err != nil {
			return err
		}
		args = append(args, ct)
	}
	var errOut bytes.Buffer
	status, err := s.comm.Run(rctx, &engine.Command{Command: shellquote.Join(args...), Stderr: &errOut})
	if err == nil && status != 0 {
		err = fmt.Errorf("%s", bytes.TrimSpace(errOut.Bytes()))
	}
	if err != nil {
		return fmt.Errorf("removing the staging directory %s: %w", s.Dir, err)
	}
	return nil
}

// LocalName is the last element of a local path, for naming its copy in
// the staging directory.
func LocalName(p string) string { return filepath.Base(filepath.Clean(p)) }
