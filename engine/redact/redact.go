// Package redact hides secrets in text: every sensitive value a description
// declares is replaced by "(sensitive)" wherever it appears, as written, as
// Go or Starlark quote it ("…" with escapes), or cut short by a "…".
//
// It is the one place that decides what a hidden secret looks like; the
// event bus applies it to every event, the evaluation to its errors and
// print output, the summary to its cells. It knows nothing else.
package redact

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Mask is what a secret reads as once hidden.
const Mask = "(sensitive)"

// ellipsis marks text cut short; what comes before it may be the start of
// a secret.
const ellipsis = "…"

// Set is a set of secrets. The zero value is empty and ready; a Set is
// safe for concurrent use.
type Set struct {
	mu      sync.RWMutex
	secrets []string // longest first, so a secret holding another goes whole
	forms   []string // every form to replace, longest first
	seen    map[string]bool
}

// Add registers secrets; empty strings are ignored.
func (s *Set) Add(secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	changed := false
	for _, sec := range secrets {
		if sec == "" || s.seen[sec] {
			continue
		}
		s.seen[sec] = true
		s.secrets = append(s.secrets, sec)
		changed = true
	}
	if !changed {
		return
	}
	sort.SliceStable(s.secrets, func(i, j int) bool { return len(s.secrets[i]) > len(s.secrets[j]) })
	forms := map[string]bool{}
	s.forms = s.forms[:0]
	for _, sec := range s.secrets {
		// A quoted secret reads as (sensitive), not "(sensitive)"; inside
		// a longer quoted string, its escaped form is what appears.
		quoted := strconv.Quote(sec)
		for _, f := range []string{quoted, quoted[1 : len(quoted)-1], sec} {
			if !forms[f] {
				forms[f] = true
				s.forms = append(s.forms, f)
			}
		}
	}
	sort.SliceStable(s.forms, func(i, j int) bool { return len(s.forms[i]) > len(s.forms[j]) })
}

// Covers reports whether text holds a secret of the set, so that hiding
// those hides all of text that is secret: a string made by joining a secret
// with plain text need not be added itself, and its plain part stays
// readable.
func (s *Set) Covers(text string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, sec := range s.secrets {
		if strings.Contains(text, sec) {
			return true
		}
	}
	return false
}

// Len is the number of secrets.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.secrets)
}

// Redact returns text with every secret hidden.
func (s *Set) Redact(text string) string {
	if s == nil {
		return text
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.secrets) == 0 || text == "" {
		return text
	}
	for _, f := range s.forms {
		if strings.Contains(text, f) {
			text = strings.ReplaceAll(text, f, Mask)
		}
	}
	if strings.Contains(text, ellipsis) {
		text = s.cutShort(text)
	}
	return text
}

// cutShort hides the start of a secret left just before a "…" by code that
// shortened a line without knowing it held one.
func (s *Set) cutShort(text string) string {
	var b strings.Builder
	for {
		i := strings.Index(text, ellipsis)
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		head := text[:i]
		if n := s.longestPrefixAtEnd(head); n > 0 {
			head = head[:len(head)-n] + Mask
		}
		b.WriteString(head)
		b.WriteString(ellipsis)
		text = text[i+len(ellipsis):]
	}
}

// minCutShort is the shortest start of a secret hidden before a "…":
// shorter ones say next to nothing of it, and hiding them would mangle
// ordinary cut lines ("Downloadin(sensitive)…" for a secret that starts
// with "g").
const minCutShort = 3

// longestPrefixAtEnd is the length of the longest start of a secret (in
// any of its forms, shorter than it, and at least minCutShort bytes) that
// text ends with.
func (s *Set) longestPrefixAtEnd(text string) int {
	best := minCutShort - 1
	for _, f := range s.forms {
		for n := min(len(f)-1, len(text)); n > best; n-- {
			if strings.HasSuffix(text, f[:n]) {
				best = n
				break
			}
		}
	}
	if best < minCutShort {
		return 0
	}
	return best
}

// SafeCut returns where text may be cut at or before max so that no
// secret is split across the cut: the cut is moved back before any start
// of a secret that the first part would end with. Text should already be
// redacted, so whole secrets are gone. The cut falls on a UTF-8 boundary
// and is never 0 when max and text are not.
func (s *Set) SafeCut(text []byte, max int) int {
	cut := min(max, len(text))
	if s != nil {
		s.mu.RLock()
		for moved := true; moved; {
			moved = false
			for _, f := range s.forms {
				for n := min(len(f)-1, cut-1); n > 0; n-- {
					if bytes.HasSuffix(text[:cut], []byte(f[:n])) {
						cut -= n
						moved = true
						break
					}
				}
			}
		}
		s.mu.RUnlock()
	}
	for cut > 1 && cut < len(text) && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return cut
}
