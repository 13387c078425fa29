package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestHealth checks a running vouch serve with `vouch health`, as the
// chart's helm test does: no token, the webhook's TLS verified.
func TestHealth(t *testing.T) {
	v := start(t, "")
	ca := filepath.Join(v.dataDir, "ca.crt")
	env := []string{"VOUCH_TOKEN="}
	out, errOut, code := v.execEnv(env, "health", "--webhook", "https://"+v.webhook, "--ca", ca)
	if code != 0 || !strings.Contains(out, "API http://"+v.api+": ready") || !strings.Contains(out, "webhook https://"+v.webhook+": serving (TLS verified)") {
		t.Errorf("vouch health: exit %d\n%s%s", code, out, errOut)
	}
	// The webhook's certificate is not trusted without its CA.
	if out, errOut, code := v.execEnv(env, "health", "--webhook", "https://"+v.webhook); code != 1 || !strings.Contains(errOut, "certificate") {
		t.Errorf("vouch health without the CA: exit %d\n%s%s", code, out, errOut)
	}
	v.stop()
	if out, errOut, code := v.execEnv(env, "health"); code != 1 || !strings.Contains(errOut, "connection refused") {
		t.Errorf("vouch health of a stopped server: exit %d\n%s%s", code, out, errOut)
	}
}
