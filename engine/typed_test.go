package engine

import "testing"

type typedConfig struct{ N int }

func TestTypedHandsOverItsConfigAndNamesAWrongOne(t *testing.T) {
	mk := Typed("thing", func(c *typedConfig) int { return c.N })
	if n, err := mk(&typedConfig{N: 7}); err != nil || n != 7 {
		t.Errorf("got %d, %v", n, err)
	}
	_, err := mk("oops")
	if want := "thing: config is string, want *engine.typedConfig"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}
