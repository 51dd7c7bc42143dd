package post

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/imgbuild/imgbuild/drivers/diskpost"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/workspace"
)

// hashArtifactFile copies the artifact's file name (relative to the
// workspace) into w, reading it through the workspace so that a symbolic
// link is followed only while it stays inside. What is not a regular file
// is not read and not an error: skip says why (a link to a directory, to
// nothing, or out of the workspace, all common in a root file system
// tree: /etc/resolv.conf, say). A file that is not there at all is an
// error.
func hashArtifactFile(ctx context.Context, env *engine.PostEnv, name string, w io.Writer) (size int64, skip string, err error) {
	root := env.Workspace
	if root == "" {
		root = "."
	}
	f, err := workspace.Open(root, name)
	var esc *workspace.EscapeError
	switch {
	case errors.As(err, &esc):
		return 0, "leads out of the workspace", nil
	case errors.Is(err, fs.ErrNotExist):
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		if li, lerr := os.Lstat(p); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
			return 0, "links to nothing", nil
		}
		return 0, "", fmt.Errorf("artifact file %s does not exist (was it removed after the build?)", name)
	case err != nil:
		return 0, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	if !fi.Mode().IsRegular() {
		return 0, "is not a regular file", nil
	}
	n, err := io.Copy(w, diskpost.ContextReader(ctx, f))
	if err != nil {
		return 0, "", fmt.Errorf("reading artifact file %s: %w", name, err)
	}
	return n, "", nil
}
