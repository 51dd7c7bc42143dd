package provision

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/engine/value"
)

// tree lists the files under dir with their contents ("" for directories).
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == ".imgbuild" {
			return filepath.SkipDir // the record of outputs
		}
		if fi.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, _ := os.ReadFile(p)
		out[rel] = string(b)
		return nil
	})
	return out
}

func TestFileUploads(t *testing.T) {
	t.Chdir(t.TempDir())
	testkit.WriteFile(t, "files/nginx.conf", "worker_processes 1;")
	testkit.WriteFile(t, "files/site/index.html", "hi")
	testkit.WriteFile(t, "files/site/css/a.css", "a")
	for _, tc := range []struct {
		name     string
		settings *value.Map
		want     map[string]string
	}{
		{"file to path", kw("source", "files/nginx.conf", "destination", "/etc/nginx/nginx.conf"),
			map[string]string{"etc/": "", "etc/nginx/": "", "etc/nginx/nginx.conf": "worker_processes 1;"}},
		{"file into directory", kw("source", "files/nginx.conf", "destination", "/etc/"),
			map[string]string{"etc/": "", "etc/nginx.conf": "worker_processes 1;"}},
		{"directory itself", kw("source", "files/site", "destination", "/var/www"),
			map[string]string{"var/": "", "var/www/": "", "var/www/site/": "", "var/www/site/index.html": "hi", "var/www/site/css/": "", "var/www/site/css/a.css": "a"}},
		{"directory contents", kw("source", "files/site/", "destination", "/var/www"),
			map[string]string{"var/": "", "var/www/": "", "var/www/index.html": "hi", "var/www/css/": "", "var/www/css/a.css": "a"}},
		{"sources", kw("sources", []string{"files/nginx.conf", "files/site"}, "destination", "/srv/"),
			map[string]string{"srv/": "", "srv/nginx.conf": "worker_processes 1;", "srv/site/": "", "srv/site/index.html": "hi", "srv/site/css/": "", "srv/site/css/a.css": "a"}},
		{"content", kw("content", "KEY=value\n", "destination", "/etc/default/app"),
			map[string]string{"etc/": "", "etc/default/": "", "etc/default/app": "KEY=value\n"}},
		{"empty content", kw("content", "", "destination", "/etc/empty"),
			map[string]string{"etc/": "", "etc/empty": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t)
			if err := m.provision(provisioner(t, FileDef(), tc.settings)); err != nil {
				t.Fatal(err)
			}
			if got := tree(t, m.comm.Root()); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("machine holds %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestFileModeAndProgress(t *testing.T) {
	t.Chdir(t.TempDir())
	testkit.WriteFile(t, "tool", "#!/bin/sh\n")
	m := newMachine(t)
	if err := m.provision(provisioner(t, FileDef(), kw("source", "tool", "destination", "/usr/local/bin/tool", "mode", 0o755))); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(m.comm.Root(), "usr/local/bin/tool"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	prog := m.ev.Of(event.Progress)
	if len(prog) == 0 {
		t.Fatal("no progress events")
	}
	last := prog[len(prog)-1]
	if last.Message != "upload tool → /usr/local/bin/tool" || last.Done != 10 || last.Total != 10 || last.Unit != "bytes" {
		t.Errorf("last progress %+v", last)
	}
}

func TestFileDownloads(t *testing.T) {
	t.Chdir(t.TempDir())
	m := newMachine(t)
	testkit.WriteFile(t, filepath.Join(m.comm.Root(), "var/log/app.log"), "log")
	testkit.WriteFile(t, filepath.Join(m.comm.Root(), "etc/app/a.conf"), "a")
	testkit.WriteFile(t, filepath.Join(m.comm.Root(), "etc/app/conf.d/b.conf"), "b")
	steps := []*value.Map{
		kw("source", "/var/log/app.log", "destination", "logs/", "direction", "download"),
		kw("source", "/var/log/app.log", "destination", "copy.log", "direction", "download"),
		kw("source", "/etc/app/", "destination", "conf", "direction", "download"),
	}
	for _, s := range steps {
		if err := m.provision(provisioner(t, FileDef(), s)); err != nil {
			t.Fatal(err)
		}
	}
	got := tree(t, ".")
	want := map[string]string{"logs/": "", "logs/app.log": "log", "copy.log": "log", "conf/": "", "conf/a.conf": "a", "conf/conf.d/": "", "conf/conf.d/b.conf": "b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("downloaded %v\nwant %v", keys(got), keys(want))
	}
	err := m.provision(provisioner(t, FileDef(), kw("source", "/nope", "destination", "x", "direction", "download")))
	wantErr(t, err, "downloading /nope: no such file or directory")
	if _, err := os.Stat("x"); err == nil {
		t.Error("a failed download left its destination")
	}
	// A later run downloads over its own files, never over the user's.
	m.env.Outputs.Finish(false)
	m.env.Outputs = nil
	if err := m.provision(provisioner(t, FileDef(), steps[1])); err != nil {
		t.Errorf("again: %v", err)
	}
	testkit.WriteFile(t, "mine.log", "mine")
	err = m.provision(provisioner(t, FileDef(), kw("source", "/var/log/app.log", "destination", "mine.log", "direction", "download")))
	wantErr(t, err, "mine.log exists and imgbuild did not make it: move it away or choose another destination (force replaces only what imgbuild made)")
	if b, _ := os.ReadFile("mine.log"); string(b) != "mine" {
		t.Error("the user's file was replaced")
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestFileConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		settings *value.Map
		want     string
	}{
		{kw("destination", "/x"), "file needs one of source, sources or content"},
		{kw("source", "a", "content", "b", "destination", "/x"), "file takes only one of source, sources or content, got source and content"},
		{kw("source", "a"), `missing required keyword argument "destination"`},
		{kw("sources", []string{"a", "b"}, "destination", "/etc"), `for parameter destination: must be a directory ending in "/" when sources is used, so that every source keeps its name (got "/etc")`},
		{kw("content", "b", "destination", "x", "direction", "download"), `for parameter content: only works with direction = "upload": a download copies source from the machine`},
		{kw("source", "a", "destination", "x", "direction", "sideways"), `for parameter direction: "sideways" is not one of "upload", "download"`},
		{kw("source", "a", "destination", "x", "mode", 0o10000), `for parameter mode: 010000 is not a file mode (0 to 0o7777)`},
		{kw("source", "a", "destination", "x", "mode", 0o644, "direction", "download"), `for parameter mode: only applies to uploads; downloaded files keep the machine's mode`},
		{kw("source", "a", "destinaton", "x"), `unexpected keyword argument "destinaton" (did you mean "destination"?)`},
	} {
		_, err := testkit.Decode(FileDef().Schema, tc.settings)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", value.Format(tc.settings), err, tc.want)
		}
	}
}
