package ansible

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/imgbuild/imgbuild/drivers/cfgtool"
	"github.com/imgbuild/imgbuild/drivers/local"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
)

// requirements says what a galaxy requirements file asks for: roles,
// collections or both.
type requirements struct {
	roles, collections bool
}

// readRequirements reads a requirements file: a list of roles (the old
// form) or a dict with roles and collections.
func readRequirements(data []byte) (requirements, error) {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return requirements{}, fmt.Errorf("is not YAML: %v", err)
	}
	switch d := doc.(type) {
	case nil:
		return requirements{}, nil
	case []any:
		return requirements{roles: len(d) > 0}, nil
	case map[string]any:
		var r requirements
		for k, v := range d {
			list, ok := v.([]any)
			if !ok && v != nil {
				return requirements{}, fmt.Errorf("has %s: %T, want a list", k, v)
			}
			switch k {
			case "roles":
				r.roles = len(list) > 0
			case "collections":
				r.collections = len(list) > 0
			default:
				return requirements{}, fmt.Errorf("has %q: a requirements file holds roles and collections", k)
			}
		}
		return r, nil
	}
	return requirements{}, fmt.Errorf("holds a %T: want a list of roles, or a dict of roles and collections", doc)
}

// galaxy installs galaxy_file's roles and collections into dir (the run's
// scratch directory) and returns the directories to search first.
func (s *Shared) galaxy(ctx context.Context, env *engine.ProvisionEnv, dir string, environ []string) (roles, collections string, err error) {
	if s.GalaxyFile == "" {
		return "", "", nil
	}
	data, err := os.ReadFile(s.GalaxyFile)
	if err != nil {
		return "", "", fmt.Errorf("galaxy_file: %w", err)
	}
	req, err := readRequirements(data)
	if err != nil {
		return "", "", fmt.Errorf("galaxy_file %s %v", s.GalaxyFile, err)
	}
	bin, err := lookPath(s.GalaxyCommand, "galaxy_command")
	if err != nil {
		return "", "", err
	}
	environ = append(environ, "ANSIBLE_GALAXY_CACHE_DIR="+filepath.Join(dir, "galaxy-cache"))
	if req.roles {
		roles = filepath.Join(dir, "roles")
		if err := s.galaxyRun(ctx, env, environ, bin, "role", "install", "-r", s.GalaxyFile, "-p", roles); err != nil {
			return "", "", err
		}
	}
	if req.collections {
		collections = filepath.Join(dir, "collections")
		args := []string{"collection", "install", "-r", s.GalaxyFile, "-p", collections}
		if s.GalaxyOffline {
			args = append(args, "--offline")
		}
		if err := s.galaxyRun(ctx, env, environ, bin, args...); err != nil {
			return "", "", err
		}
	}
	return roles, collections, nil
}

func (s *Shared) galaxyRun(ctx context.Context, env *engine.ProvisionEnv, environ []string, bin string, args ...string) error {
	line := shellquote.Join(append([]string{bin}, args...)...)
	env.UI.Say("installing galaxy_file's %ss: %s", args[0], line)
	stdout := cfgtool.Stream(env.UI, "stdout", 0)
	stderr := cfgtool.Stream(env.UI, "stderr", 100)
	status, err := local.RunShell(ctx, filepath.Dir(s.GalaxyFile), environ, &engine.Command{Command: line, Stdout: stdout, Stderr: stderr})
	stdout.Close()
	stderr.Close()
	if err != nil {
		return fmt.Errorf("galaxy_file: %w", err)
	}
	if status != 0 {
		msg := errorBlock(stderr.Last())
		if msg == "" {
			msg = cfgtool.Indent(stderr.Last())
		} else {
			msg = "\n" + msg
		}
		return fmt.Errorf("galaxy_file %s: ansible-galaxy %s install failed (exit status %d):%s", s.GalaxyFile, args[0], status, msg)
	}
	return nil
}
