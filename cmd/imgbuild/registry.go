package main

import (
	"sync"

	"github.com/imgbuild/imgbuild/drivers/all"
	"github.com/imgbuild/imgbuild/engine"
)

// registry returns every driver this binary offers. It is made once per
// process: drivers keep process-wide state there (the amazon driver's
// per-region cap on concurrent API calls, shared by all builds).
var registry = sync.OnceValue(func() *engine.Registry {
	r := engine.NewRegistry()
	all.Register(r)
	return r
})
