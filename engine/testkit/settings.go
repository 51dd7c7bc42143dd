package testkit

import (
	"testing"

	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

// Settings builds the keyword arguments of a description's call from
// keyword, Go value pairs: Settings("source", "a.txt", "mode", 0o644).
func Settings(pairs ...any) *value.Map {
	m := value.NewMap()
	for i := 0; i < len(pairs); i += 2 {
		m.Set(pairs[i].(string), value.FromGo(pairs[i+1]))
	}
	return m
}

// Decode decodes settings with a definition's schema s into a new config,
// as the engine does for a call; the error, such as a Validate message,
// is returned as it is.
func Decode(s *schema.Schema, settings *value.Map) (any, error) {
	cfg := s.New()
	_, err := s.Decode(settings, cfg, schema.Options{})
	return cfg, err
}

// New decodes settings with a definition's schema s and makes the driver
// with the definition's New (a provisioner's, a post-processor's); either
// error fails the test: New(t, def.Schema, def.New, settings).
func New[T any](t testing.TB, s *schema.Schema, newFn func(config any) (T, error), settings *value.Map) T {
	t.Helper()
	cfg, err := Decode(s, settings)
	if err != nil {
		t.Fatal(err)
	}
	d, err := newFn(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
