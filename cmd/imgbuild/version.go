package main

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// Version and Commit are set at link time by make release and make build:
//
//	go build -ldflags "-X main.Version=v1.2.3 -X main.Commit=0123abcd..."
//
// Without them (go install), the module's version and the VCS revision from
// the build info are shown.
var (
	Version = ""
	Commit  = ""
)

// version is imgbuild's version: "v1.2.3", "v1.2.3-4-g0123abc-dirty" from
// git describe, or "(devel)".
func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// commit is the git commit imgbuild was built from, with "-dirty" when the
// tree had changes, or "unknown".
func commit() string {
	if Commit != "" {
		return Commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// writeVersion prints what imgbuild version and --version print:
//
//	imgbuild v1.2.3
//	commit:  0123abcd...
//	go:      go1.26.8 linux/amd64
//	drivers: builders amazon_ebs, local, ...; provisioners ...
func writeVersion(w io.Writer) {
	reg := registry()
	fmt.Fprintf(w, "imgbuild %s\n", version())
	fmt.Fprintf(w, "commit:          %s\n", commit())
	fmt.Fprintf(w, "go:              %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "builders:        %s\n", strings.Join(slices.Sorted(maps.Keys(reg.Builders)), ", "))
	fmt.Fprintf(w, "provisioners:    %s\n", strings.Join(slices.Sorted(maps.Keys(reg.Provisioners)), ", "))
	fmt.Fprintf(w, "post-processors: %s\n", strings.Join(slices.Sorted(maps.Keys(reg.PostProcessors)), ", "))
	fmt.Fprintf(w, "lookups:         %s\n", strings.Join(slices.Sorted(maps.Keys(reg.Lookups)), ", "))
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print imgbuild's version, commit, Go version and the drivers built in",
		Action: func(c *cli.Context) error {
			writeVersion(c.App.Writer)
			return nil
		},
	}
}
