// Package shellquote quotes values for a POSIX shell command line, so that
// environment variables and arguments reach a remote or chroot command
// exactly, whatever they contain (quotes, $(…), backticks, newlines,
// unicode). sshd usually refuses environment requests, so environment is
// passed in the command line itself.
package shellquote

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Quote returns s as one single-quoted shell word. Inside single quotes
// nothing is special but the single quote itself, which is written as the
// four characters quote, backslash, quote, quote.
func Quote(s string) string {
	if s != "" && safe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var safe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidName reports whether name can be an environment variable's name.
func ValidName(name string) bool { return envName.MatchString(name) }

// Env renders env as "export A='x' B='y'; " (sorted by name) to put before a
// command; empty when env is empty. A name that is not a valid variable
// name is an error.
func Env(env map[string]string) (string, error) {
	if len(env) == 0 {
		return "", nil
	}
	names := make([]string, 0, len(env))
	for k := range env {
		if !ValidName(k) {
			return "", fmt.Errorf("%q is not a valid environment variable name (letters, digits and _, not starting with a digit)", k)
		}
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("export")
	for _, k := range names {
		b.WriteString(" " + k + "=" + Quote(env[k]))
	}
	b.WriteString("; ")
	return b.String(), nil
}

// Join quotes each word and joins them with spaces.
func Join(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = Quote(w)
	}
	return strings.Join(q, " ")
}
