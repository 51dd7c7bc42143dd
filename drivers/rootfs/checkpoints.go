package rootfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/imgbuild/imgbuild/drivers/rootfs/checkpoint"
	"github.com/imgbuild/imgbuild/engine/event"
)

// checkpointKey is what addresses the tree debootstrap makes for cfg from
// mirror (see drivers/rootfs/checkpoint).
func checkpointKey(cfg *Config, mirror, codename string) (checkpoint.Key, error) {
	deb, err := debootstrapHash(cfg.Suite, codename)
	if err != nil {
		return checkpoint.Key{}, err
	}
	return checkpoint.Key{
		Suite:       cfg.Suite,
		Mirror:      strings.TrimRight(mirror, "/"),
		Variant:     cfg.Variant,
		Components:  cfg.Components,
		Packages:    cfg.Packages,
		Arch:        hostArch(),
		Debootstrap: deb,
	}.Normalize(), nil
}

// debootstrapHash is the sha256 of the debootstrap that would run: its
// program, its functions, and the script of the suite.
func debootstrapHash(suite, codename string) (string, error) {
	prog, err := exec.LookPath("debootstrap")
	if err != nil {
		return "", fmt.Errorf("debootstrap is not installed: apt-get install debootstrap")
	}
	script := "sid"
	for _, s := range []string{suite, codename} {
		if hasScript(s) {
			script = s
			break
		}
	}
	h := sha256.New()
	for _, p := range []string{prog, filepath.Join(filepath.Dir(debootstrapScripts), "functions"), filepath.Join(debootstrapScripts, script)} {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\n", filepath.Base(p))
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// planNotes says whether a run would reuse a checkpoint: what the plan
// shows. The suite's codename is not known without the mirror; the suite
// stands for it.
func planNotes(config any) []string {
	cfg, ok := config.(*Config)
	if !ok || !cfg.Checkpoint {
		return nil
	}
	cache, err := checkpoint.Open()
	if err != nil {
		return []string{"debootstrap: " + err.Error()}
	}
	mirror := cfg.Mirror
	if mirror == "" {
		mirror = HostMirror()
	}
	key, err := checkpointKey(cfg, mirror, cfg.Suite)
	if err != nil {
		return nil
	}
	if e := cache.Has(key); e != nil {
		return []string{fmt.Sprintf("debootstrap: reuses checkpoint %s (made %s), unless the mirror's %s Release has changed since", e.ID, e.Created.Local().Format("2006-01-02 15:04"), cfg.Suite)}
	}
	return []string{fmt.Sprintf("debootstrap: runs, no checkpoint %s yet (keeps one)", key.ID())}
}

// hostArch is the Debian architecture debootstrap installs by default:
// dpkg's, else the one Go was built for.
func hostArch() string {
	archOnce.Do(func() { arch = findArch() })
	return arch
}

var (
	archOnce sync.Once
	arch     string
)

func findArch() string {
	if out, err := exec.Command("dpkg", "--print-architecture").Output(); err == nil {
		if a := strings.TrimSpace(string(out)); a != "" {
			return a
		}
	}
	if a, ok := debianArch[runtime.GOARCH]; ok {
		return a
	}
	return runtime.GOARCH
}

// debianArch names Go's architectures as Debian does, where they differ.
var debianArch = map[string]string{"386": "i386", "arm": "armhf", "ppc64le": "ppc64el", "mips64le": "mips64el"}

// releaseSum is "sha256:<hex>" of a Release file.
func releaseSum(release []byte) string {
	sum := sha256.Sum256(release)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// restoreCheckpoint puts the checkpoint of key at tree, and reports
// whether it did. A missing, stale or damaged checkpoint, or a cache
// that cannot be used, means running debootstrap: said, never failed.
func restoreCheckpoint(ctx context.Context, ui *event.UI, cache *checkpoint.Cache, key checkpoint.Key, release []byte, tree string) (bool, error) {
	e, err := cache.Restore(ctx, key, releaseSum(release), tree)
	switch {
	case ctx.Err() != nil:
		return false, context.Cause(ctx)
	case errors.Is(err, checkpoint.ErrStale):
		ui.Say("debootstrap: %v: installing again", errors.Unwrap(err))
		return false, nil
	case err != nil:
		ui.Warn("debootstrap: not using the checkpoint: %v; installing again", err)
		return false, nil
	case e == nil:
		ui.Say("debootstrap: no checkpoint %s in %s yet: installing, then keeping the tree", key.ID(), cache.Dir)
		return false, nil
	}
	ui.Say("debootstrap: reused checkpoint %s (made %s, %s)", e.ID, e.Created.Local().Format("2006-01-02 15:04"), checkpoint.Human(e.Size))
	return true, nil
}

// saveCheckpoint keeps the tree debootstrap made; a failure is a warning,
// not a failed build.
func saveCheckpoint(ctx context.Context, ui *event.UI, cache *checkpoint.Cache, key checkpoint.Key, release []byte, tree string) {
	s, err := cache.Save(ctx, key, releaseSum(release), releaseField(string(release), "Date"), tree)
	if err != nil {
		if ctx.Err() == nil {
			ui.Warn("debootstrap: the tree was not kept as a checkpoint: %v", err)
		}
		return
	}
	ui.Say("debootstrap: kept the tree as checkpoint %s (%s) in %s", s.Entry.ID, checkpoint.Human(s.Entry.Size), cache.Dir)
	for _, e := range s.Evicted {
		ui.Say("debootstrap: evicted checkpoint %s (%s, last used %s) to stay within %s", e.ID, checkpoint.Human(e.Size), e.LastUsed.Local().Format("2006-01-02 15:04"), checkpoint.Human(cache.MaxSize))
	}
}
