package vsphere

import (
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/bootcmd"
	"github.com/imgbuild/imgbuild/drivers/vsphere/vcsimtest"
)

// The parser and its errors are tested in drivers/bootcmd; this tests the
// encoding into PutUsbScanCodes' events, read back with vcsimtest's decoder
// (written apart from the encoder).
func TestBootCommandIsEncodedAsUSBScanCodes(t *testing.T) {
	vals := map[string]string{"http_ip": "10.0.0.5", "http_port": "8080", "http_url": "http://10.0.0.5:8080", "name": "web", "vm_name": "web"}
	for _, tc := range []struct{ in, want string }{
		{"<esc><wait>install url={http_url}/ks.cfg hostname={name}<enter>", "<esc>[1s]install url=http://10.0.0.5:8080/ks.cfg hostname=web<enter>"},
		{"Hello, World! ~`_+{}|:\"<>?", "Hello, World! ~`_+{}|:\"<>?"},
		{"<leftCtrlOn>c<leftCtrlOff><leftAltOn><f2><leftAltOff>", "<ctrl+c><alt+f2>"},
		{"<leftCtrlOn><leftAltOn><del><leftAltOff><leftCtrlOff>", "<ctrl+alt+del>"},
		{"line1\nline2\tx", "line1<enter>line2<tab>x"},
		{"<up><down><left><right><home><end><pageUp><pageDown><insert><bs><tab><spacebar><return><menu><f12>", "<up><down><left><right><home><end><pageUp><pageDown><insert><bs><tab> <enter><menu><f12>"},
	} {
		cmd, err := bootcmd.Parse([]string{tc.in})
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		steps, err := cmd.Plan(vals)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		var b strings.Builder
		for _, s := range steps {
			if s.Wait > 0 {
				b.WriteString("[" + s.Wait.String() + "]")
				continue
			}
			for _, e := range usbEvents(s.Keys) {
				b.WriteString(vcsimtest.DecodeKey(e))
			}
		}
		if got := b.String(); got != tc.want {
			t.Errorf("%q types\n %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
