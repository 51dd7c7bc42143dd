package qemu

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/imgbuild/imgbuild/engine/panics"
)

// noCloud serves a cloud-init NoCloud seed (meta-data, user-data) over
// HTTP on 127.0.0.1, which the guest reaches as 10.0.2.2 through QEMU's
// user network. The guest learns the address from the SMBIOS system serial
// number "ds=nocloud;s=http://10.0.2.2:<port>/".
type noCloud struct {
	srv  *http.Server
	port int
}

// userData is the seed's user-data: the build's key for root, root login
// allowed (cloud-init forbids it by default).
func userData(authorizedKey string) string {
	return "#cloud-config\n" +
		"# Written by imgbuild for one build: its SSH key.\n" +
		"disable_root: false\n" +
		"ssh_pwauth: false\n" +
		"ssh_authorized_keys:\n" +
		"  - " + authorizedKey + "\n"
}

func startNoCloud(ctx context.Context, instanceID, hostname, authorizedKey string) (*noCloud, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("serving the cloud-init seed: %w", err)
	}
	n := &noCloud{port: l.Addr().(*net.TCPAddr).Port}
	files := map[string]string{
		"/meta-data":   "instance-id: " + instanceID + "\nlocal-hostname: " + hostname + "\n",
		"/user-data":   userData(authorizedKey),
		"/vendor-data": "",
	}
	n.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, body)
	})}
	panics.Go(ctx, func() { n.srv.Serve(l) })
	return n, nil
}

// Serial is the SMBIOS serial number that points cloud-init at the seed.
func (n *noCloud) Serial() string {
	return fmt.Sprintf("ds=nocloud;s=http://10.0.2.2:%d/", n.port)
}

func (n *noCloud) Close() error { return n.srv.Close() }
