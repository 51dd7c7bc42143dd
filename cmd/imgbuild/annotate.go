package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/starlark/host"
)

// inGitHubActions reports whether imgbuild runs in a GitHub Actions job,
// whose log turns "::error file=…,line=…,col=…::message" lines into
// annotations on the pull request.
func inGitHubActions() bool { return os.Getenv("GITHUB_ACTIONS") == "true" }

// positioned matches a message that starts with "file:line:col: ".
var positioned = regexp.MustCompile(`^([^\s:]+):(\d+):(\d+): (.*)$`)

// annotateInvalid prints, in GitHub Actions, one annotation per positioned
// line of a description error (several for validate's list), with the file
// relative to the current directory (the repository's root in a job), or
// one annotation without a position when no line has one. file is the
// description, whose workspace positions are relative to.
func annotateInvalid(w io.Writer, file string, err error) {
	if !inGitHubActions() || err == nil {
		return
	}
	root, rerr := host.FindRoot(file)
	if rerr != nil {
		root = filepath.Dir(file)
	}
	n := 0
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		m := positioned.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		// The lines under it that are not positioned (a backtrace, a hint)
		// belong to its message.
		msg := m[4]
		for _, more := range lines[i+1:] {
			if positioned.MatchString(more) {
				break
			}
			msg += "\n" + more
		}
		annotation(w, annotationFile(".", root, m[1]), m[2], m[3], msg)
		n++
	}
	if n == 0 {
		annotation(w, "", "", "", err.Error())
	}
}

// annotateFailures prints, in GitHub Actions, an annotation at each failed
// build's call.
func annotateFailures(w io.Writer, g *engine.Graph, cwd, root string, results []*engine.Result, redact func(string) string) {
	if !inGitHubActions() {
		return
	}
	for _, r := range results {
		if r == nil || r.Status != event.Failed {
			continue
		}
		n, ok := g.Node(r.Build)
		if !ok {
			continue
		}
		msg := "build " + r.Build + " failed"
		if r.Err != nil {
			msg += ": " + redact(r.Err.Error())
		}
		if m := positioned.FindStringSubmatch(n.Pos + ": x"); m != nil {
			annotation(w, annotationFile(cwd, root, m[1]), m[2], m[3], msg)
		} else {
			annotation(w, "", "", "", msg)
		}
	}
}

// annotationFile is a workspace-relative position's file relative to cwd
// ("." for the current directory).
func annotationFile(cwd, root, file string) string {
	if strings.HasPrefix(file, "@") { // a module outside the workspace
		return file
	}
	if cwd == "." {
		return relToCwd(filepath.Join(root, file))
	}
	return relTo(cwd, filepath.Join(root, file))
}

// annotation writes one ::error workflow command, escaped as GitHub
// documents: %, CR and LF in the message; also : and , in properties.
func annotation(w io.Writer, file, line, col, msg string) {
	esc := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	prop := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
	var props []string
	for _, kv := range [][2]string{{"file", file}, {"line", line}, {"col", col}} {
		if kv[1] != "" {
			props = append(props, kv[0]+"="+prop.Replace(kv[1]))
		}
	}
	head := "::error"
	if len(props) > 0 {
		head += " " + strings.Join(props, ",")
	}
	fmt.Fprintf(w, "%s::%s\n", head, esc.Replace(msg))
}

// jsonRequested reports whether args ask run for --json (before a "--").
func jsonRequested(args []string) bool {
	if len(args) < 2 || (args[1] != "run" && args[1] != "build") {
		return false
	}
	i := slices.Index(args, "--")
	if i < 0 {
		i = len(args)
	}
	return slices.Contains(args[2:i], "--json") || slices.Contains(args[2:i], "-json") || slices.Contains(args[2:i], "--json=true")
}

// writeJSONError reports a run that could not start (a usage error, an
// invalid description) as one JSON event, as --json promises.
func writeJSONError(w io.Writer, code int, err error) {
	json.NewEncoder(w).Encode(struct {
		Time     time.Time  `json:"time"`
		Type     event.Type `json:"type"`
		Error    string     `json:"error"`
		ExitCode int        `json:"exit_code"`
	}{time.Now(), event.UsageError, err.Error(), code})
}
