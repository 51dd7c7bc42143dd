package oci

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// Config is oci_image()'s configuration. The image's keywords are the
// fields of the OCI image configuration (and of a Dockerfile's
// instructions of the same names).
type Config struct {
	Format            string            `kw:"format" default:"oci" enum:"oci|docker-archive" doc:"oci writes an OCI image layout (a directory: skopeo's oci:, umoci, podman's oci:); docker-archive a tar that docker load and podman load read (skopeo's docker-archive:)."`
	Output            string            `kw:"output" default:"output/{build}/{build}.{format}" path:"output" pathvars:"format=format" doc:"The image layout directory (format = \"oci\") or tar file (\"docker-archive\"), relative to the workspace ({build} is the build's name, {format} the format)."`
	Repository        string            `kw:"repository" doc:"The image's repository (\"acme/web\", \"registry.example.com/acme/web\"); \"\" means the build's name. Packer's docker-tag names it so."`
	Tags              []string          `kw:"tags" default:"[\"latest\"]" doc:"The image's tags: each is a reference (org.opencontainers.image.ref.name) in an OCI layout, a repository:tag in a docker archive."`
	Entrypoint        []string          `kw:"entrypoint" doc:"The command a container runs (the OCI config's Entrypoint), as a list of words."`
	Cmd               []string          `kw:"cmd" doc:"The default arguments of the entrypoint, or the command when there is none (Cmd)."`
	Env               map[string]string `kw:"env" doc:"Environment variables of the container's process (Env)."`
	Labels            map[string]string `kw:"labels" doc:"The image's labels (Labels), such as org.opencontainers.image.source."`
	User              string            `kw:"user" doc:"The user the process runs as: a name or uid, optionally :group or :gid (User); \"\" means root."`
	Workdir           string            `kw:"workdir" doc:"The process's working directory, an absolute path (WorkingDir); \"\" means /."`
	ExposedPorts      []string          `kw:"exposed_ports" doc:"Ports the container listens on: \"80\", \"80/tcp\", \"53/udp\" (ExposedPorts)."`
	Architecture      string            `kw:"architecture" doc:"The image's CPU architecture as OCI names it (amd64, arm64, ...); \"\" means this machine's, which is the one rootfs() installs."`
	CompressionLevel  int               `kw:"compression_level" default:"6" doc:"gzip level of the layer, 1 (fast) to 9 (small); it is compressed on every core."`
	KeepInputArtifact bool              `kw:"keep_input_artifact" default:"True" doc:"Keep the input's files in the artifact passed on (the image's join them); False passes on the image alone."`
	Force             bool              `kw:"force" default:"False" doc:"Also replace an image imgbuild made for another build (one of this build's earlier runs is replaced anyway; what imgbuild did not make never is)."`
}

// architectures are the values of GOARCH the OCI image specification
// names for linux.
var architectures = []string{"386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64", "ppc64le", "riscv64", "s390x"}

var (
	userSpec = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$`)
	tagName  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// Validate implements schema.Validator.
func (c *Config) Validate(deferred schema.Deferred) error {
	if c.Repository != "" && !deferred.Has("repository") {
		if _, err := name.NewRepository(c.Repository); err != nil {
			return schema.Errorf("repository", "%q is not an image repository: lower-case letters, digits and separators (. _ -) in components joined by /, optionally after a registry host (\"registry.example.com/acme/web\"); the tags go in tags", c.Repository)
		}
	}
	if !deferred.Has("tags") {
		if len(c.Tags) == 0 {
			return schema.Errorf("tags", "is empty: name at least one tag, such as \"latest\"")
		}
		for _, t := range c.Tags {
			if !tagName.MatchString(t) {
				return schema.Errorf("tags", "%q is not an image tag: letters, digits, _ . and -, not starting with . or -, at most 128", t)
			}
		}
	}
	for k := range c.Env {
		if !shellquote.ValidName(k) {
			return schema.Errorf("env", "%q is not a valid environment variable name (letters, digits and _, not starting with a digit)", k)
		}
	}
	for k := range c.Labels {
		if k == "" {
			return schema.Errorf("labels", "a label has an empty name")
		}
	}
	if c.User != "" && !deferred.Has("user") && !userSpec.MatchString(c.User) {
		return schema.Errorf("user", "%q is not a user: a name or uid, optionally :group or :gid (\"app\", \"1000:1000\")", c.User)
	}
	if c.Workdir != "" && !deferred.Has("workdir") && !path.IsAbs(c.Workdir) {
		return schema.Errorf("workdir", "%q is not an absolute path: write \"/%s\"", c.Workdir, c.Workdir)
	}
	if !deferred.Has("exposed_ports") {
		for _, p := range c.ExposedPorts {
			if _, err := Port(p); err != nil {
				return schema.Errorf("exposed_ports", "%v", err)
			}
		}
	}
	if c.Architecture != "" && !deferred.Has("architecture") && !slices.Contains(architectures, c.Architecture) {
		msg := fmt.Sprintf("%q is not an architecture of the OCI image specification", c.Architecture)
		if near := schema.Nearest(c.Architecture, architectures); near != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", near)
		}
		return schema.Errorf("architecture", "%s; Debian's amd64 and arm64 are OCI's too, its i386 is 386 and its armhf arm", msg)
	}
	if c.CompressionLevel < 1 || c.CompressionLevel > 9 {
		return schema.Errorf("compression_level", "%d is not between 1 (fast) and 9 (small)", c.CompressionLevel)
	}
	return nil
}

// Port is an exposed port as the image configuration keys it: "80" is
// "80/tcp".
func Port(p string) (string, error) {
	num, proto, hasProto := strings.Cut(p, "/")
	if !hasProto {
		proto = "tcp"
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 || num != strconv.Itoa(n) {
		return "", fmt.Errorf("%q is not a port: a number from 1 to 65535, optionally /tcp, /udp or /sctp (\"8080\", \"53/udp\")", p)
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return "", fmt.Errorf("%q: %q is not a protocol a port is exposed for (tcp, udp, sctp)", p, proto)
	}
	return num + "/" + proto, nil
}
