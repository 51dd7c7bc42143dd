package main

import (
	"github.com/imgbuild/imgbuild/drivers/builtin"
	"github.com/imgbuild/imgbuild/engine"
)

// registry returns every driver this binary offers.
func registry() *engine.Registry {
	r := engine.NewRegistry()
	builtin.Register(r)
	return r
}
