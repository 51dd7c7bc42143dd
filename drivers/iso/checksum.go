package iso

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/imgbuild/imgbuild/engine/ctxio"
)

// Algorithms are the checksum algorithms iso_checksum takes, with the
// length of their sums in hexadecimal digits.
var Algorithms = map[string]int{"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}

// algoOfLength names the algorithm whose sums have n hexadecimal digits.
func algoOfLength(n int) string {
	for a, l := range Algorithms {
		if l == n {
			return a
		}
	}
	return ""
}

// NewHash returns a hash for algo (one of Algorithms).
func NewHash(algo string) hash.Hash {
	switch algo {
	case "md5":
		return md5.New()
	case "sha1":
		return sha1.New()
	case "sha256":
		return sha256.New()
	case "sha512":
		return sha512.New()
	}
	return nil
}

// Checksum is a parsed iso_checksum, in one of Packer's forms:
//
//	sha256:<hex>, sha512:<hex>, sha1:<hex>, md5:<hex>
//	<hex>                 the algorithm told by the length
//	file:<path or URL>    a list of sums (SHA256SUMS), the ISO's by its name
//	none                  no check (the build warns)
type Checksum struct {
	// Algo and Sum are the expected checksum; both empty for none and,
	// until Lookup, for a list.
	Algo string
	Sum  string // lower-case hexadecimal
	// List is the file: list's path or URL, "" otherwise.
	List string
}

// None reports whether the checksum is "none".
func (c *Checksum) None() bool { return c.Algo == "" && c.List == "" }

// String is the checksum as "algo:hex", "file:..." or "none".
func (c *Checksum) String() string {
	switch {
	case c.Algo != "":
		return c.Algo + ":" + c.Sum
	case c.List != "":
		return "file:" + c.List
	}
	return "none"
}

// ParseChecksum parses an iso_checksum. It reads nothing: a file: list is
// fetched by Lookup.
func ParseChecksum(s string) (*Checksum, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return nil, fmt.Errorf("is empty: write \"sha256:<hex>\" (or sha512:, sha1:, md5:), \"file:SHA256SUMS\" (a path or URL), or \"none\" to skip the check")
	case strings.EqualFold(s, "none"):
		return &Checksum{}, nil
	}
	if list, ok := strings.CutPrefix(s, "file:"); ok {
		if list == "" {
			return nil, fmt.Errorf("%q names no file: write \"file:SHA256SUMS\" or \"file:https://.../SHA256SUMS\"", s)
		}
		return &Checksum{List: list}, nil
	}
	algo, sum, ok := strings.Cut(s, ":")
	if !ok {
		sum, algo = s, ""
	}
	algo = strings.ToLower(algo)
	sum = strings.ToLower(sum)
	if !hexDigits.MatchString(sum) {
		if ok {
			if _, known := Algorithms[algo]; !known {
				return nil, fmt.Errorf("%q: the algorithm must be sha256, sha512, sha1 or md5, not %q (or file: for a list of sums)", s, algo)
			}
		}
		return nil, fmt.Errorf("%q is not a checksum: write \"sha256:<hex>\" (or sha512:, sha1:, md5:), \"file:SHA256SUMS\", or \"none\"", s)
	}
	if algo == "" {
		algo = algoOfLength(len(sum))
		if algo == "" {
			return nil, fmt.Errorf("%q has %d hexadecimal digits, which is no algorithm's length (md5 32, sha1 40, sha256 64, sha512 128): write the algorithm, as \"sha256:<hex>\"", s, len(sum))
		}
	}
	want, known := Algorithms[algo]
	if !known {
		return nil, fmt.Errorf("%q: the algorithm must be sha256, sha512, sha1 or md5, not %q (or file: for a list of sums)", s, algo)
	}
	if len(sum) != want {
		return nil, fmt.Errorf("%q: a %s checksum is %d hexadecimal digits, not %d", s, algo, want, len(sum))
	}
	return &Checksum{Algo: algo, Sum: sum}, nil
}

// Entry is one line of a checksum list.
type Entry struct {
	Name string // as listed, without "./" or the binary-mode "*"
	Algo string
	Sum  string // lower-case hexadecimal
}

var hexDigits = regexp.MustCompile(`^[0-9a-f]+$`)

var bsdLine = regexp.MustCompile(`^(MD5|SHA1|SHA256|SHA512) ?\((.+)\) ?= ?([0-9a-fA-F]+)$`)

// ParseList reads a checksum list: the lines sha256sum and its kin write
// ("<hex>  name" or "<hex> *name"), or BSD's ("SHA256 (name) = <hex>").
// Lines that are neither (comments, a PGP signature's armour) are skipped.
// The algorithm of each entry is told by its tag or by the sum's length.
func ParseList(r io.Reader) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var e Entry
		if m := bsdLine.FindStringSubmatch(line); m != nil {
			e = Entry{Name: m[2], Algo: strings.ToLower(m[1]), Sum: strings.ToLower(m[3])}
			if len(e.Sum) != Algorithms[e.Algo] {
				continue
			}
		} else {
			sum, name, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			if _, err := hex.DecodeString(sum); err != nil {
				continue
			}
			e = Entry{Name: strings.TrimLeft(name, " "), Algo: algoOfLength(len(sum)), Sum: strings.ToLower(sum)}
			if e.Algo == "" {
				continue
			}
		}
		e.Name = strings.TrimPrefix(strings.TrimPrefix(e.Name, "*"), "./")
		if e.Name == "" {
			continue
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// Find returns the entry for the file called name: the one listed under
// that name, or else the only one whose last path element is name.
func Find(entries []Entry, name string) (Entry, bool) {
	var byBase []Entry
	for _, e := range entries {
		if e.Name == name {
			return e, true
		}
		if path.Base(e.Name) == name {
			byBase = append(byBase, e)
		}
	}
	if len(byBase) == 1 {
		return byBase[0], true
	}
	return Entry{}, false
}

// names lists the entries' names for an error, at most a few.
func names(entries []Entry) string {
	var ns []string
	for _, e := range entries {
		ns = append(ns, e.Name)
	}
	sort.Strings(ns)
	if len(ns) > 8 {
		ns = append(ns[:8], fmt.Sprintf("and %d more", len(ns)-8))
	}
	if len(ns) == 0 {
		return "no file at all"
	}
	return strings.Join(ns, ", ")
}

// SumFile returns the algo checksum of the file at p, in hexadecimal,
// reporting progress as it reads.
func SumFile(ctx context.Context, p, algo string, progress func(done, total int64)) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	h := NewHash(algo)
	if h == nil {
		return "", fmt.Errorf("unknown checksum algorithm %q", algo)
	}
	var done int64
	err = ctxio.Copy(ctx, h, f, make([]byte, 1<<20), func(n int) {
		done += int64(n)
		if progress != nil {
			progress(done, fi.Size())
		}
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
