package vsphere

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/vsphere/vcsimtest"
)

// Each bad input the issue lists, and the others a user is likely to make,
// fails with a message that says what is wrong and what to do; none leaves
// anything behind.

func TestUnreachableVCenter(t *testing.T) {
	e := newVCEnv(t)
	port := closedPort(t)
	j, rec := e.job(CloneDef(), "web", e.cloneKW(map[string]any{"vcenter_server": fmt.Sprintf("127.0.0.1:%d", port)}))
	_, err := run(context.Background(), CloneDef(), j, false)
	want := fmt.Sprintf("connect to vCenter: cannot reach vCenter at https://127.0.0.1:%d/sdk: connection refused: check vcenter_server (or GOVC_URL) and that vCenter is up and reachable from here", port)
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
	if got := rec.Steps(""); len(got) != 1 {
		t.Errorf("steps after the failed login: %v", got)
	}
}

func TestWrongPassword(t *testing.T) {
	e := newVCEnv(t)
	j, _ := e.job(CloneDef(), "web", e.cloneKW(map[string]any{"password": "not-the-password"}))
	_, err := run(context.Background(), CloneDef(), j, false)
	want := fmt.Sprintf("connect to vCenter: vCenter at %s refused the login of %q: the user name or password is wrong (check username and password, or GOVC_USERNAME and GOVC_PASSWORD)", e.sim.URL, vcsimtest.Username)
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
}

func TestUntrustedCertificate(t *testing.T) {
	e := newVCEnv(t)
	j, _ := e.job(CloneDef(), "web", e.cloneKW(map[string]any{"insecure_connection": false}))
	_, err := run(context.Background(), CloneDef(), j, false)
	if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("connect to vCenter: vCenter at %s presented a TLS certificate this machine does not trust (", e.sim.URL)) ||
		!strings.HasSuffix(err.Error(), "): install its CA certificate in the system's trust store, or set insecure_connection = True (GOVC_INSECURE=1) to skip the check") {
		t.Errorf("error: %v", err)
	}
}

func TestNotFoundListsWhatExists(t *testing.T) {
	e := newVCEnv(t)
	before := e.snapshot(t)
	for _, tc := range []struct {
		kw   map[string]any
		want string
	}{
		{map[string]any{"datacenter": "DC9"},
			`check placement: datacenter "DC9" not found in vCenter at ` + e.sim.URL.String() + ` (did you mean "DC0"?): there is one datacenter: DC0; check datacenter`},
		{map[string]any{"cluster": "DC0_C9"},
			`check placement: cluster "DC0_C9" not found in datacenter DC0 (did you mean "DC0_C0"?): there is one cluster: DC0_C0; check cluster`},
		{map[string]any{"datastore": "LocalDS_9"},
			`check placement: datastore "LocalDS_9" not found in datacenter DC0 (did you mean "LocalDS_0"?): there is one datastore: LocalDS_0; check datastore`},
		{map[string]any{"template": "debian-13"},
			`check placement: template "debian-13" not found in datacenter DC0 (did you mean "debian-12"?): there are 2 templates: debian-12, ubuntu; check template`},
		{map[string]any{"template": "centos"},
			`check placement: template "centos" not found in datacenter DC0: there are 2 templates: debian-12, ubuntu; check template`},
		{map[string]any{"folder": "templatez"},
			`check placement: VM folder "templatez" not found in datacenter DC0's VM folder (did you mean "templates"?): there is one VM folder: templates; check folder`},
		{map[string]any{"host": "DC0_C0_H7"},
			`check placement: host "DC0_C0_H7" not found in cluster DC0_C0 (did you mean "DC0_C0_H0"?): there are 3 hosts: DC0_C0_H0, DC0_C0_H1, DC0_C0_H2; check host`},
		{map[string]any{"resource_pool": "builds"},
			`check placement: resource pool "builds" not found in datacenter DC0: there are 2 resource pools: /DC0/host/DC0_C0/Resources, /DC0/host/DC0_H0/Resources; check resource_pool`},
		{map[string]any{"network": "VM Netwrk"},
			`check placement: network "VM Netwrk" not found in datacenter DC0 (did you mean "VM Network"?): there are 3 networks: DC0_DVPG0, DVS0-DVUplinks-8, VM Network; check network`},
		{map[string]any{"cluster": nil},
			`check placement: datacenter DC0 has several places to run the VM: set cluster, host or resource_pool (resource pools: /DC0/host/DC0_C0/Resources, /DC0/host/DC0_H0/Resources)`},
		{map[string]any{"content_library_destination": map[string]any{"library": "imges"}},
			`check placement: content library "imges" not found in vCenter at ` + e.sim.URL.String() + ` (did you mean "images"?): there is one content library: images; check content_library_destination`},
		{map[string]any{"vm_name": "DC0_H0_VM0"},
			`check placement: vm_name "DC0_H0_VM0" is already taken: /DC0/vm/DC0_H0_VM0 exists (a powered-on VM); choose another vm_name, remove it, or set force = True to replace it once the new one is built`},
		{map[string]any{"vm_name": "debian-12"},
			`check placement: vm_name "debian-12" is already taken: /DC0/vm/debian-12 exists (a template); choose another vm_name, remove it, or set force = True to replace it once the new one is built`},
		{map[string]any{"linked_clone": true, "template": "DC0_H0_VM1"},
			`check placement: linked_clone needs a snapshot of /DC0/vm/DC0_H0_VM1 to base the clone's disks on, and it has none: take one (govc snapshot.create), build it with create_snapshot = True, or set linked_clone = False`},
	} {
		t.Run(tc.want[len("check placement: "):40], func(t *testing.T) {
			j, _ := e.job(CloneDef(), "web", e.cloneKW(tc.kw))
			_, err := run(context.Background(), CloneDef(), j, false)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error:\n got %v\nwant %s", err, tc.want)
			}
		})
	}
	e.noLeftovers(t, before)
}

func TestIPWaitTimeoutSaysWhatItWaitedFor(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot(t)
	// No customization: the guest reports no address.
	j, _ := e.job(CloneDef(), "web", e.cloneKW(map[string]any{"customize": nil, "ip_wait_timeout": "1s", "ip_wait_address": "10.0.0.0/8"}))
	_, err := run(context.Background(), CloneDef(), j, false)
	want := "wait for IP: VMware Tools reported no IP address in 10.0.0.0/8 for /DC0/vm/web within ip_wait_timeout (1s); it reported no address at all: check that the guest boots, runs VMware Tools (open-vm-tools) and gets an address on its network, widen ip_wait_address or raise ip_wait_timeout, or set ssh_host to connect to a known address"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
	// An address outside ip_wait_address is named.
	j, _ = e.job(CloneDef(), "web", e.cloneKW(map[string]any{"ip_wait_timeout": "1s", "ip_wait_address": "10.0.0.0/8"}))
	_, err = run(context.Background(), CloneDef(), j, false)
	if err == nil || !strings.Contains(err.Error(), "; it reported only 127.0.0.1: check") {
		t.Errorf("error: %v", err)
	}
	e.noLeftovers(t, before)
}

func TestShutdownProblemsAreExplained(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot(t)
	e.sim.SetGuest(vcsimtest.Guest{AuthorizedKey: func(line string) { e.ssh.AddAuthorizedKey(t, line) }})
	j, _ := e.job(CloneDef(), "web", e.cloneKW(nil))
	_, err := run(context.Background(), CloneDef(), j, false)
	want := `shut down: VMware Tools are not running in /DC0/vm/web, so it cannot be shut down through them: install open-vm-tools in the image, or set shutdown_command ("sudo systemctl poweroff")`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
	j, _ = e.job(CloneDef(), "web", e.cloneKW(map[string]any{"shutdown_command": "true", "shutdown_timeout": "1s"}))
	_, err = run(context.Background(), CloneDef(), j, false)
	want = "shut down: /DC0/vm/web did not power off within shutdown_timeout (1s) after shutdown_command: check that the command shuts the system down (and that sudo needs no password), or raise shutdown_timeout"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
	e.noLeftovers(t, before)
}

func TestCustomizationNeedsOneInterfacePerAdapter(t *testing.T) {
	e := newEnv(t)
	j, _ := e.job(CloneDef(), "web", e.cloneKW(map[string]any{"customize": map[string]any{
		"network_interface": []any{map[string]any{"ipv4_address": "127.0.0.1"}, map[string]any{}},
	}}))
	_, err := run(context.Background(), CloneDef(), j, false)
	want := "customize guest: customize has 2 network_interface entries but /DC0/vm/web has 1 network adapter(s): give one entry per adapter, in order"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
}

func TestGovcEnvironmentFillsUnsetConnectionKeywords(t *testing.T) {
	e := newVCEnv(t)
	u := *e.sim.URL
	env := map[string]string{
		"GOVC_URL":        "https://" + vcsimtest.Username + ":" + vcsimtest.Password + "@" + u.Host + "/sdk",
		"GOVC_INSECURE":   "1",
		"GOVC_DATACENTER": "DC0",
	}
	getenv = func(k string) string { return env[k] }
	t.Cleanup(func() { getenv = func(string) string { return "" } })
	kw := e.cloneKW(map[string]any{"vcenter_server": nil, "username": nil, "password": nil, "insecure_connection": nil, "template": "nope"})
	j, rec := e.job(CloneDef(), "web", kw)
	_, err := run(context.Background(), CloneDef(), j, false)
	// It logged in and looked in DC0: the template is what is missing.
	if err == nil || !strings.HasPrefix(err.Error(), `check placement: template "nope" not found in datacenter DC0`) {
		t.Errorf("error: %v", err)
	}
	if strings.Contains(rec.JSON(), vcsimtest.Password) {
		t.Errorf("the password from GOVC_URL shows in the events")
	}
	// The keyword wins over the environment.
	env["GOVC_DATACENTER"] = "DC7"
	kw["datacenter"] = "DC0"
	j, _ = e.job(CloneDef(), "web", kw)
	_, err = run(context.Background(), CloneDef(), j, false)
	if err == nil || !strings.HasPrefix(err.Error(), `check placement: template "nope" not found in datacenter DC0`) {
		t.Errorf("error: %v", err)
	}
	delete(kw, "datacenter")
	j, _ = e.job(CloneDef(), "web", kw)
	_, err = run(context.Background(), CloneDef(), j, false)
	if err == nil || !strings.HasPrefix(err.Error(), `check placement: datacenter "DC7" not found in vCenter at `) || !strings.HasSuffix(err.Error(), "; check datacenter (or GOVC_DATACENTER)") {
		t.Errorf("error: %v", err)
	}
}

func TestResolveEndpoint(t *testing.T) {
	env := map[string]string{}
	getenv = func(k string) string { return env[k] }
	t.Cleanup(func() { getenv = func(string) string { return "" } })
	yes := true
	for _, tc := range []struct {
		conn Connection
		env  map[string]string
		want string // endpoint as "url user pass insecure dc", or the error
	}{
		{Connection{VCenterServer: "vc.example.com", Username: "u", Password: "p"}, nil, "https://vc.example.com/sdk u p false "},
		{Connection{VCenterServer: "vc.example.com:8443", Username: "u", Password: "p", InsecureConnection: &yes, Datacenter: "dc1"}, nil, "https://vc.example.com:8443/sdk u p true dc1"},
		{Connection{}, map[string]string{"GOVC_URL": "https://a:b@vc/sdk", "GOVC_INSECURE": "true", "GOVC_DATACENTER": "x"}, "https://vc/sdk a b true x"},
		{Connection{Username: "kw"}, map[string]string{"GOVC_URL": "vc", "GOVC_USERNAME": "env", "GOVC_PASSWORD": "pw"}, "https://vc/sdk kw pw false "},
		{Connection{}, nil, "no vCenter to build on: set vcenter_server, or GOVC_URL in the environment as for govc"},
		{Connection{VCenterServer: "vc"}, nil, "no user to log in to https://vc/sdk as: set username, or GOVC_USERNAME in the environment"},
		{Connection{VCenterServer: "vc", Username: "u"}, nil, "no password to log in to https://vc/sdk as u: set password (from a sensitive var), or GOVC_PASSWORD in the environment"},
		{Connection{VCenterServer: "vc", Username: "u", Password: "p"}, map[string]string{"GOVC_INSECURE": "maybe"}, `GOVC_INSECURE="maybe" is not a boolean (1, true, 0, false)`},
		{Connection{}, map[string]string{"GOVC_URL": "ftp://vc"}, `GOVC_URL "ftp://vc": the scheme must be https (or http)`},
	} {
		env = tc.env
		ep, err := resolveEndpoint(tc.conn)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = fmt.Sprintf("%s %s %s %v %s", ep.URL, ep.Username, ep.Password, ep.Insecure, ep.Datacenter)
		}
		if got != tc.want {
			t.Errorf("%+v with %v:\n got %s\nwant %s", tc.conn, tc.env, got, tc.want)
		}
	}
}
