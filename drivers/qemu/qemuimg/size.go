package qemuimg

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize reads a size as people write it: "2G", "1536M", "512MiB",
// "1.5G", "10737418240" (bytes). Units are powers of 1024 (K, M, G, T,
// with or without "iB" or "B"); case does not matter.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size: write it like \"2G\" or \"1536M\"")
	}
	i := len(t)
	for i > 0 && !(t[i-1] >= '0' && t[i-1] <= '9') && t[i-1] != '.' {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToUpper(strings.TrimSpace(t[i:]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "IB"), "B")
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
	sh, ok := shift[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("%q is not a size: write it like \"2G\", \"1536M\" or a number of bytes", s)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a size: write it like \"2G\", \"1536M\" or a number of bytes", s)
		}
		if n > math.MaxInt64>>sh {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return n << sh, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a size: write it like \"2G\", \"1536M\" or a number of bytes", s)
	}
	v := f * float64(int64(1)<<sh)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(v), nil
}

// FormatSize writes n bytes the way ParseSize reads it, in the largest
// unit that keeps it whole or, failing that, with one decimal: "2G",
// "1536M", "1.5G".
func FormatSize(n int64) string {
	units := []struct {
		suffix string
		shift  uint
	}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}}
	for _, u := range units {
		size := int64(1) << u.shift
		if n >= size && n%size == 0 {
			return strconv.FormatInt(n/size, 10) + u.suffix
		}
	}
	for _, u := range units {
		size := int64(1) << u.shift
		if n >= size {
			// Truncated to a tenth, so that it never reads back as more.
			return strconv.FormatInt(n/size, 10) + "." + strconv.FormatInt(n%size*10/size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// RoundUpSize rounds n up to a size worth suggesting: a multiple of 64M
// below 1G, of 256M above.
func RoundUpSize(n int64) int64 {
	step := int64(64 << 20)
	if n > 1<<30 {
		step = 256 << 20
	}
	return (n + step - 1) / step * step
}

// HumanSize writes n bytes for people: "333.3M", "2G", "512K".
func HumanSize(n int64) string {
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}} {
		size := int64(1) << u.shift
		if n >= size {
			if n%size == 0 {
				return strconv.FormatInt(n/size, 10) + u.suffix
			}
			return strconv.FormatFloat(float64(n)/float64(size), 'f', 1, 64) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
