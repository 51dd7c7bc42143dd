package engine

import "fmt"

// Typed makes a definition's New from a constructor that takes the
// driver's own config type: the schema decodes a call into *C, and a config
// of any other type (a registration mistake) is an error naming both.
func Typed[C, T any](name string, make func(*C) T) func(any) (T, error) {
	return func(config any) (T, error) {
		cfg, ok := config.(*C)
		if !ok {
			var none T
			return none, fmt.Errorf("%s: config is %T, want %T", name, config, cfg)
		}
		return make(cfg), nil
	}
}
