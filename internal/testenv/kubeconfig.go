package testenv

import (
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeconfigFor writes a copy of e's kubeconfig into a directory of t's
// and returns its path: its server replaced by server ("https://host:port":
// a forwarder, an address nothing answers on) and its credentials by a
// bearer token, where they are given ("": kept).
func (e *Env) KubeconfigFor(t testing.TB, server, token string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(e.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		if server != "" {
			c.Server = server
		}
	}
	for _, a := range cfg.AuthInfos {
		if token != "" {
			*a = clientcmdapi.AuthInfo{Token: token}
		}
	}
	out := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, out); err != nil {
		t.Fatal(err)
	}
	return out
}
