package metricscert

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/testenv"
)

// TestWatcher: no directory, no watcher (a self-signed certificate);
// a directory for plain HTTP metrics, or one whose files cannot be read,
// refused with the reason; readable files, served. Metrics off, no
// watcher and no refusal, whatever the files: none is served.
func TestWatcher(t *testing.T) {
	dir := t.TempDir()
	want := testenv.NewCA(t, "metrics.example").WriteServing(t, dir, "m.crt", "m.key", 7)
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f := BindFlags(fs)
	if err := fs.Parse([]string{"--metrics-cert-path=" + dir, "--metrics-cert-name=m.crt", "--metrics-cert-key=m.key"}); err != nil {
		t.Fatal(err)
	}
	missing := Files{Dir: dir, CertName: "tls.crt", KeyName: "tls.key"}
	for _, c := range []struct {
		name    string
		files   Files
		addr    string
		secure  bool
		wantErr string
	}{
		{"self-signed", Files{CertName: "tls.crt", KeyName: "tls.key"}, ":8443", true, ""},
		{"plain HTTP", Files{CertName: "tls.crt", KeyName: "tls.key"}, ":8443", false, ""},
		{"plain HTTP with a certificate", *f, ":8443", false, errNotSecure.Error()},
		{"missing files", missing, ":8443", true, filepath.Join(dir, "tls.crt")},
		{"the flags' files", *f, ":8443", true, ""},
		{"off, missing files", missing, "0", true, ""},
		{"off (empty), missing files", missing, "", true, ""},
		{"off, plain HTTP with a certificate", *f, "0", false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			certs, err := c.files.Watcher(c.addr, c.secure)
			switch {
			case c.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || certs != nil {
					t.Errorf("got %v, %v; want an error naming %q", certs, err, c.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case c.files.Dir == "" || Off(c.addr):
				if certs != nil {
					t.Errorf("a watcher with no directory, or metrics off")
				}
			default:
				got, err := certs.GetCertificate(nil)
				if err != nil || got == nil || !got.Leaf.Equal(want) {
					t.Errorf("served %v %v, want the certificate of serial %s", got, err, want.SerialNumber)
				}
			}
		})
	}
}
