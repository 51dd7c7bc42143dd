package output

// SafeName turns a build's name into one file name component: every
// character other than an ASCII letter, a digit, '-', '_' or '.' becomes
// '_', the result is cut to max bytes, and one that would be empty or begin
// with '.' (hidden, or "." and "..") gets a leading '_'. It names the
// files a run keeps per build: logs, lock files, scratch directories.
func SafeName(s string, max int) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) > max {
		b = b[:max]
	}
	if len(b) == 0 || b[0] == '.' {
		b = append([]byte{'_'}, b...)
	}
	return string(b)
}
