package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/starlark/description"
	"github.com/urfave/cli/v2"
)

// stateFlags are the flags of the commands that read the builds' records.
func stateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "state", EnvVars: []string{"IMGBUILD_STATE"}, Usage: "where the builds' records are shared: s3://bucket/prefix (default: imgbuild.mod's state(...), else .imgbuild/state.json)"},
	}
}

// runStateFlags are run's flags about rebuilding and locks.
func runStateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "force", Usage: "rebuild every build, and replace its previous artifacts: an AMI or VM of the same name, outputs imgbuild made for another build (what imgbuild did not make is never replaced)"},
		&cli.StringSliceFlag{Name: "force-build", Usage: "rebuild these builds (names or globs, comma-separated or repeated) whatever their state, replacing their previous artifacts as --force does"},
		&cli.DurationFlag{Name: "lock-timeout", Value: engine.DefaultLockTimeout, Usage: "how long to wait for a build another run is building before giving up"},
		&cli.DurationFlag{Name: "lock-lease", Value: engine.DefaultLease, Usage: "how long a build's lock outlives a run that stopped renewing it (a runner that died)"},
	}
}

// openState opens the store the description's builds are recorded in and
// the fingerprinter their inputs are compared with.
func openState(c *cli.Context, d *description.Description) (engine.Store, *engine.Fingerprinter, error) {
	location := d.State
	if c.IsSet("state") {
		location = c.String("state")
	}
	store, err := engine.OpenStore(c.Context, registry(), d.Root, location)
	if err != nil {
		return nil, nil, invalid(err)
	}
	fp, err := newFingerprinter(d)
	if err != nil {
		return nil, nil, err
	}
	return store, fp, nil
}

// fingerprintKey is the key secrets are hashed with: $IMGBUILD_FINGERPRINT_KEY,
// else this user's key file.
func fingerprintKey() (*engine.FingerprintKey, error) {
	keyFile, err := engine.DefaultFingerprintKeyFile()
	if err != nil && os.Getenv(engine.FingerprintKeyEnv) == "" {
		return nil, err
	}
	return engine.LoadFingerprintKey(os.Getenv(engine.FingerprintKeyEnv), keyFile)
}

// newFingerprinter is what the description's builds' inputs are compared
// with.
func newFingerprinter(d *description.Description) (*engine.Fingerprinter, error) {
	key, err := fingerprintKey()
	if err != nil {
		return nil, err
	}
	return &engine.Fingerprinter{Registry: registry(), Workspace: d.Root, Key: key, Modules: d.ModuleHashes, ModuleDirs: d.ModuleDirs}, nil
}

// runner names this run for the builds it locks and records: host, process
// and run id.
func runner(runID string) string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown host"
	}
	return fmt.Sprintf("%s pid %d run %s", host, os.Getpid(), runID)
}

// forceBuilds reads --force-build; a pattern that names no build is an
// error listing the builds there are.
func forceBuilds(c *cli.Context, d *description.Description) ([]string, error) {
	patterns := splitList(c.StringSlice("force-build"))
	if err := d.Graph.CheckPatterns(patterns); err != nil {
		return nil, invalid(fmt.Errorf("--force-build: %s", strings.TrimPrefix(err.Error(), "bad build pattern ")))
	}
	return patterns, nil
}

// lockOptions reads --lock-timeout and --lock-lease.
func lockOptions(c *cli.Context, holder string) (engine.LockOptions, error) {
	if c.Duration("lock-timeout") <= 0 {
		return engine.LockOptions{}, invalid(fmt.Errorf("--lock-timeout %s: want a positive duration such as 30m", c.Duration("lock-timeout")))
	}
	if c.Duration("lock-lease") < time.Second {
		return engine.LockOptions{}, invalid(fmt.Errorf("--lock-lease %s: want at least 1s", c.Duration("lock-lease")))
	}
	return engine.LockOptions{Holder: holder, Timeout: c.Duration("lock-timeout"), Lease: c.Duration("lock-lease")}, nil
}
