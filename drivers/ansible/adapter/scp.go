package adapter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"

	gossh "golang.org/x/crypto/ssh"
)

// scpRequest is a parsed "scp -t" (sink: the client sends files) or
// "scp -f" (source: the client fetches files) command.
type scpRequest struct {
	sink      bool
	recursive bool // -r
	targetDir bool // -d: the target must be a directory
	preserve  bool // -p: times are sent
	paths     []string
}

// parseSCP recognises the command line the legacy SCP protocol runs on
// the server: scp, its flags, then the paths. Anything else, a line with
// shell syntax in it included, is not an SCP request.
func parseSCP(line string) (*scpRequest, bool) {
	words, ok := splitWords(line)
	if !ok || len(words) < 2 || path.Base(words[0]) != "scp" {
		return nil, false
	}
	s := &scpRequest{}
	mode := 0
	i := 1
	for ; i < len(words); i++ {
		w := words[i]
		if w == "--" {
			i++
			break
		}
		if !strings.HasPrefix(w, "-") || w == "-" {
			break
		}
		for _, c := range w[1:] {
			switch c {
			case 't':
				mode |= 1
				s.sink = true
			case 'f':
				mode |= 2
			case 'r':
				s.recursive = true
			case 'd':
				s.targetDir = true
			case 'p':
				s.preserve = true
			case 'v', 'q', 'E':
			default:
				return nil, false
			}
		}
	}
	s.paths = words[i:]
	switch {
	case mode != 1 && mode != 2, len(s.paths) == 0, s.sink && len(s.paths) != 1:
		return nil, false
	}
	for _, p := range s.paths {
		if p == "" {
			return nil, false
		}
	}
	return s, true
}

// splitWords splits a command line into words as a POSIX shell would,
// for the quoting scp's callers use: '...', "..." (with \" \\ \$ \`
// escapes) and backslashes. It fails on anything the shell would treat
// as syntax (; | & $ ` < > ( ) and the like, outside quotes).
func splitWords(line string) ([]string, bool) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, false
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				switch line[i] {
				case '\\':
					if i+1 < len(line) && strings.IndexByte("\"\\$`\n", line[i+1]) >= 0 {
						i++
					}
				case '$', '`':
					return nil, false
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, false
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(line) {
				return nil, false
			}
			i++
			cur.WriteByte(line[i])
			inWord = true
		case strings.IndexByte(";|&$`<>()*?[]{}!", c) >= 0, !inWord && (c == '#' || c == '~'):
			return nil, false
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, true
}

// scp speaks the SCP protocol on ch and returns the exit status.
func (a *Adapter) scp(ctx context.Context, ch gossh.Channel, s *scpRequest) uint32 {
	a.fileOps.Add(1)
	r := bufio.NewReader(ch)
	var err error
	if s.sink {
		err = a.scpSink(ctx, ch, r, s)
	} else {
		err = a.scpSource(ctx, ch, r, s)
	}
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		if s.sink {
			// A sink reports to the source through the channel.
			fmt.Fprintf(ch, "\x02scp: %s\n", msg)
		}
		fmt.Fprintf(ch.Stderr(), "scp: %s\n", msg)
		return 1
	}
	return 0
}

// scpSink receives files into s.paths[0].
func (a *Adapter) scpSink(ctx context.Context, ch gossh.Channel, r *bufio.Reader, s *scpRequest) error {
	f := a.files
	target := s.paths[0]
	ack := func() error {
		_, err := ch.Write([]byte{0})
		return err
	}
	targetIsDir := false
	if fi, err := f.stat(ctx, target, true); err == nil {
		targetIsDir = fi.IsDir()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if s.targetDir && !targetIsDir {
		return fmt.Errorf("%s: not a directory", target)
	}
	if err := ack(); err != nil {
		return err
	}
	var dirs []string // the directories being received, innermost last
	dest := func(name string) (string, error) {
		if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
			return "", fmt.Errorf("refusing the file name %q", name)
		}
		switch {
		case len(dirs) > 0:
			return path.Join(dirs[len(dirs)-1], name), nil
		case targetIsDir:
			return path.Join(target, name), nil
		}
		return target, nil
	}
	var times []int64
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF && line == "" {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the SCP protocol: %w", err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return errors.New("an empty SCP protocol line")
		}
		switch line[0] {
		case 1:
			a.warn("scp client: %s", line[1:])
			continue
		case 2:
			return fmt.Errorf("the client gave up: %s", line[1:])
		case 'T':
			if times, err = parseSCPTimes(line[1:]); err != nil {
				return err
			}
		case 'E':
			if len(dirs) == 0 {
				return errors.New("an SCP end of directory without a directory")
			}
			dirs = dirs[:len(dirs)-1]
		case 'C', 'D':
			mode, size, name, err := parseSCPEntry(line[1:])
			if err != nil {
				return err
			}
			dst, err := dest(name)
			if err != nil {
				return err
			}
			if line[0] == 'D' {
				if !s.recursive {
					return errors.New("a directory was sent without -r")
				}
				if err := f.command(ctx, "mkdir", dst, "mkdir", "-p", "-m", strconv.FormatUint(uint64(mode), 8), "--", dst); err != nil {
					return err
				}
				dirs = append(dirs, dst)
				break
			}
			if err := ack(); err != nil {
				return err
			}
			a.uploads.Add(1)
			if err := f.upload(ctx, dst, io.LimitReader(r, size), size, mode); err != nil {
				return err
			}
			if b, err := r.ReadByte(); err != nil || b != 0 {
				return fmt.Errorf("the client did not confirm %s", dst)
			}
			if times != nil {
				if err := f.command(ctx, "utimes", dst, "touch", "-m", "-d", "@"+strconv.FormatInt(times[0], 10), "--", dst); err != nil {
					return err
				}
				times = nil
			}
		default:
			return fmt.Errorf("unknown SCP protocol line %q", line)
		}
		if err := ack(); err != nil {
			return err
		}
	}
}

// parseSCPEntry reads "0644 1234 name" (a C or D line without its letter).
func parseSCPEntry(s string) (fs.FileMode, int64, string, error) {
	parts := strings.SplitN(s, " ", 3)
	if len(parts) != 3 {
		return 0, 0, "", fmt.Errorf("an SCP entry %q without mode, size and name", s)
	}
	mode, err := strconv.ParseUint(parts[0], 8, 32)
	if err != nil || mode > 0o7777 {
		return 0, 0, "", fmt.Errorf("an SCP entry with mode %q", parts[0])
	}
	size, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || size < 0 {
		return 0, 0, "", fmt.Errorf("an SCP entry with size %q", parts[1])
	}
	return fs.FileMode(mode), size, parts[2], nil
}

// parseSCPTimes reads "mtime 0 atime 0" (a T line without its letter).
func parseSCPTimes(s string) ([]int64, error) {
	parts := strings.Fields(s)
	if len(parts) != 4 {
		return nil, fmt.Errorf("an SCP time line %q", s)
	}
	var out []int64
	for _, i := range []int{0, 2} {
		n, err := strconv.ParseInt(parts[i], 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("an SCP time line %q", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// scpSource sends the files in s.paths.
func (a *Adapter) scpSource(ctx context.Context, ch gossh.Channel, r *bufio.Reader, s *scpRequest) error {
	readAck := func() error {
		b, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("reading the SCP protocol: %w", err)
		}
		if b == 0 {
			return nil
		}
		msg, _ := r.ReadString('\n')
		if b == 1 {
			a.warn("scp client: %s", strings.TrimSpace(msg))
			return nil
		}
		return fmt.Errorf("the client gave up: %s", strings.TrimSpace(msg))
	}
	if err := readAck(); err != nil {
		return err
	}
	for _, p := range s.paths {
		fi, err := a.files.stat(ctx, p, true)
		if err != nil {
			return err
		}
		if err := a.scpSend(ctx, ch, readAck, s, p, fi); err != nil {
			return err
		}
	}
	return nil
}

func (a *Adapter) scpSend(ctx context.Context, ch gossh.Channel, readAck func() error, s *scpRequest, p string, fi *fileInfo) error {
	send := func(format string, args ...any) error {
		if _, err := fmt.Fprintf(ch, format, args...); err != nil {
			return err
		}
		return readAck()
	}
	if s.preserve {
		if err := send("T%d 0 %d 0\n", fi.mtime.Unix(), fi.atime.Unix()); err != nil {
			return err
		}
	}
	name := path.Base(p)
	switch {
	case fi.IsDir():
		if !s.recursive {
			return fmt.Errorf("%s: is a directory (use -r)", p)
		}
		if err := send("D%04o 0 %s\n", fi.mode.Perm(), name); err != nil {
			return err
		}
		list, err := a.files.list(ctx, p)
		if err != nil {
			return err
		}
		for _, e := range list {
			efi := e.(*fileInfo)
			ep := path.Join(p, efi.name)
			if efi.mode&fs.ModeSymlink != 0 {
				if efi, err = a.files.stat(ctx, ep, true); err != nil {
					return err
				}
			}
			if err := a.scpSend(ctx, ch, readAck, s, ep, efi); err != nil {
				return err
			}
		}
		return send("E\n")
	case !fi.mode.IsRegular():
		return fmt.Errorf("%s: not a regular file", p)
	}
	a.downloads.Add(1)
	f, err := a.files.download(ctx, p)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return err
	}
	if err := send("C%04o %d %s\n", fi.mode.Perm(), size, name); err != nil {
		return err
	}
	if _, err := io.Copy(ch, f); err != nil {
		return err
	}
	if _, err := ch.Write([]byte{0}); err != nil {
		return err
	}
	return readAck()
}
