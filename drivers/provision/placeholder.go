package provision

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

var goTemplate = regexp.MustCompile(`\{\{-?\s*\.`)

// ExpandPlaceholders replaces each {name} in tmpl by vals[name], in one
// pass: a replacement is never scanned again. A placeholder is a "{", one
// or more lower-case letters or "_", and a "}", not preceded by "$". Any
// other text is kept as written, so the shell's ${VAR} and {a,b} and
// { list; } pass through. A placeholder not in vals is an error naming the
// known ones; so is Packer's {{.Path}} syntax, with the way to write it.
func ExpandPlaceholders(tmpl string, vals map[string]string) (string, error) {
	if goTemplate.MatchString(tmpl) {
		return "", fmt.Errorf("%q uses Go template syntax ({{.Path}}, {{.Vars}}); write the placeholders as %s", tmpl, knownList(vals))
	}
	var b strings.Builder
	for i := 0; i < len(tmpl); {
		c := tmpl[i]
		if c != '{' || (i > 0 && tmpl[i-1] == '$') {
			b.WriteByte(c)
			i++
			continue
		}
		j := i + 1
		for j < len(tmpl) && (tmpl[j] >= 'a' && tmpl[j] <= 'z' || tmpl[j] == '_') {
			j++
		}
		if j == i+1 || j >= len(tmpl) || tmpl[j] != '}' {
			b.WriteByte(c)
			i++
			continue
		}
		name := tmpl[i+1 : j]
		v, ok := vals[name]
		if !ok {
			return "", fmt.Errorf("unknown placeholder {%s} in %q (known: %s)", name, tmpl, knownList(vals))
		}
		b.WriteString(v)
		i = j + 1
	}
	return b.String(), nil
}

func knownList(vals map[string]string) string {
	names := make([]string, 0, len(vals))
	for k := range vals {
		names = append(names, "{"+k+"}")
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
