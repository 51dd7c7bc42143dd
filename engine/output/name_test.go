package output

import "testing"

func TestSafeNameKeepsOnlyPortableCharactersAndNeverHidesTheFile(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"web-1.prod_a", 40, "web-1.prod_a"},
		{"a/b c:d", 40, "a_b_c_d"},
		{"..", 40, "_.."},
		{".hidden", 40, "_.hidden"},
		{"", 40, "_"},
		{"abcdef", 3, "abc"},
		{"é", 40, "__"},
	} {
		if got := SafeName(c.in, c.max); got != c.want {
			t.Errorf("SafeName(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}
