package qemuimg

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"2G": 2 << 30, "1536M": 1536 << 20, "512MiB": 512 << 20, "1.5G": 3 << 29, "10737418240": 10 << 30,
		"4k": 4096, "1T": 1 << 40, " 2 G ": 2 << 30, "2GB": 2 << 30, "100B": 100,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "2X", "-1G", "1.2.3G", "9999999999T", "NaNG", "0x10"} {
		if n, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, n)
		}
	}
	for n, want := range map[int64]string{2 << 30: "2G", 1536 << 20: "1536M", 1000: "1000", 1<<30 + 1<<29 + 1: "1.5G"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"2G", "1536M", "512MiB", "1.5G", "10737418240", "4k", "", "-1", "1e9G", "9223372036854775807", "8E"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d: negative", s, n)
		}
		// What FormatSize writes, ParseSize reads back (to a tenth of the
		// unit when it had to round).
		back, err := ParseSize(FormatSize(n))
		if err != nil {
			t.Fatalf("ParseSize(FormatSize(%d) = %q): %v", n, FormatSize(n), err)
		}
		if diff := back - n; diff > n/10+1 || -diff > n/10+1 {
			t.Fatalf("ParseSize(FormatSize(%d)) = %d", n, back)
		}
	})
}
