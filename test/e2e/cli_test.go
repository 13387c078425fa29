package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/evidence/fingerprint"
)

// TestPipelineCLI is a CI pipeline and a release manager using only the
// vouch CLI: fingerprint, report, attest (JUnit, SARIF, SBOM, a generic
// document), approve, then search and inspect what was recorded.
func TestPipelineCLI(t *testing.T) {
	onEachStore(t, func(t *testing.T, backend, url string) {
		testPipelineCLI(t, start(t, url))
	})
}

func testPipelineCLI(t *testing.T, v *vouch) {
	ci := v.cli("token", "create", "--name", "ci-web", "--scopes", "evidence:write", "--repository", "github.com/shop/*")
	rm := v.cli("token", "create", "--name", "release-manager", "--scopes", "approvals:write")
	auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")

	// The build's outputs: a file and a directory.
	work := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bin := write("dist/web.tar.gz", "the web app, build 118")
	write("site/index.html", "<h1>shop</h1>")
	write("site/css/shop.css", "h1 { color: teal }")
	site := filepath.Join(work, "site")
	wantFile, _ := fingerprint.File(bin)
	wantDir, _ := fingerprint.Dir(site)
	if got := v.cli("fingerprint", bin); got != wantFile {
		t.Errorf("fingerprint of a file = %q, want %q", got, wantFile)
	}
	var fp struct{ Digest, Kind, Path string }
	if err := json.Unmarshal([]byte(v.cli("fingerprint", site, "-o", "json")), &fp); err != nil || fp.Digest != wantDir || fp.Kind != "dir" || fp.Path != site {
		t.Errorf("fingerprint of a directory = %+v (%v), want %s of kind dir", fp, err, wantDir)
	}

	// Reported from GitHub Actions: the provenance comes from its variables.
	const commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
	github := []string{"GITHUB_ACTIONS=true", "GITHUB_SHA=" + commit, "GITHUB_SERVER_URL=https://github.com",
		"GITHUB_REPOSITORY=shop/web", "GITHUB_RUN_ID=118", "GITHUB_WORKFLOW=release"}
	out, errOut, code := v.execEnv(github, "artifact", "report", "registry.example.com/shop/web", "--file", bin, "--token", ci)
	if code != 0 || !strings.Contains(out, "recorded: artifact registry.example.com/shop/web "+wantFile) || !strings.Contains(out, "GitHub Actions") {
		t.Fatalf("artifact report: exit %d\n%s%s", code, out, errOut)
	}
	code, ev := v.get(auditor, "/api/v1/artifacts/"+wantFile)
	art, _ := ev["artifact"].(map[string]any)
	if code != 200 || art["git_commit"] != commit || art["repository"] != "https://github.com/shop/web" ||
		art["build_url"] != "https://github.com/shop/web/actions/runs/118" || art["pipeline"] != "release" || art["reported_by"] != "ci-web" {
		t.Fatalf("stored artifact = %d %v, want the GitHub Actions provenance", code, ev)
	}
	v.cli("artifact", "report", "shop-site", "--dir", site, "--commit", strings.Repeat("9", 40), "--repository", "git@github.com:shop/site.git", "--token", ci)
	// The token is for the shop's repositories only.
	other := []string{"GITHUB_ACTIONS=true", "GITHUB_SHA=" + commit, "GITHUB_SERVER_URL=https://github.com", "GITHUB_REPOSITORY=cards/app", "GITHUB_RUN_ID=7"}
	if out, errOut, code := v.execEnv(other, "artifact", "report", "registry.example.com/cards/app", "--digest", "sha256:"+strings.Repeat("c4", 32), "--token", ci); code == 0 ||
		!strings.Contains(out+errOut, `token "ci-web" may write evidence only about builds of github.com/shop/*; the report of sha256:c4c4`) {
		t.Errorf("a build of another repository with the shop's token: exit %d\n%s%s", code, out, errOut)
	}

	// Evidence: a failing test run, then the rerun that passed.
	junitDir := "../../evidence/junit/testdata/"
	gradle, surefire := junitDir+"gradle-TEST-com.example.ledger.LedgerTest.xml", junitDir+"surefire-TEST-com.example.billing.InvoiceServiceTest.xml"
	out, errOut, code = v.execEnv(github, "attest", "junit", "--file", bin, "--name", "unit-tests", gradle, surefire, "--token", ci)
	if code != 0 || !strings.HasPrefix(out, "recorded: FAILED unit-tests (junit) for "+wantFile+": 9 tests, 1 failures, 1 errors, 1 skipped in 2 files") {
		t.Fatalf("attest junit (failing): exit %d\n%s%s", code, out, errOut)
	}
	var att struct {
		ID      uint64
		Passed  bool
		URL     string
		Blob    string
		Payload struct {
			Tests int
			Files []struct{ Name, Blob string }
		}
		Created bool
	}
	passing := []string{"attest", "junit", "--digest", wantFile, "--name", "unit-tests", gradle, "-o", "json", "--token", ci}
	if err := json.Unmarshal([]byte(v.cli(passing...)), &att); err != nil {
		t.Fatal(err)
	}
	if !att.Passed || att.Payload.Tests != 3 || att.Blob == "" || len(att.Payload.Files) != 0 || !att.Created {
		t.Errorf("attest junit (passing) = %+v, want passed, 3 tests, a blob, created", att)
	}
	// The same step again (a retried job): the attestation already kept, not created.
	passingID := att.ID
	if err := json.Unmarshal([]byte(v.cli(passing...)), &att); err != nil {
		t.Fatal(err)
	}
	if att.ID != passingID || att.Created {
		t.Errorf("attest junit (passing) again = %+v, want attestation %d, not created", att, passingID)
	}
	if got := v.download(auditor, att.Blob); got != readFile(t, gradle) {
		t.Errorf("blob %s is not the uploaded report", att.Blob)
	}
	code, ev = v.get(auditor, "/api/v1/artifacts/"+wantFile)
	first := ev["attestations"].([]any)[0].(map[string]any)
	files := first["payload"].(map[string]any)["files"].([]any)
	if code != 200 || len(files) != 2 || first["blob"] != files[0].(map[string]any)["blob"] || first["url"] != "https://github.com/shop/web/actions/runs/118" {
		t.Errorf("the merged junit attestation = %v, want two files, the first as blob, the build URL", first)
	}
	if got := v.download(auditor, files[1].(map[string]any)["blob"].(string)); got != readFile(t, surefire) {
		t.Error("the second junit file's blob is not the file")
	}

	sarifFile := "../../evidence/sarif/testdata/trivy-image.sarif"
	out, _, code = v.exec("attest", "sarif", "--digest", wantFile, "--name", "security-scan", "--fail-on", "error", sarifFile, "--exit-code", "--token", ci)
	if code != 1 || !strings.Contains(out, "recorded: FAILED security-scan (sarif)") || !strings.Contains(out, "findings: 1 error, 2 warning, 1 note, 0 none") {
		t.Errorf("attest sarif with an error finding and --exit-code: exit %d\n%s", code, out)
	}
	if out := v.cli("attest", "sarif", "--digest", wantFile, "--name", "security-scan", "--fail-on", "none", sarifFile, "--token", ci); !strings.HasPrefix(out, "recorded: PASSED security-scan") {
		t.Errorf("attest sarif --fail-on none: %s", out)
	}
	sbomFile := "../../evidence/sbom/testdata/cyclonedx-1.5-syft-image.json"
	if out := v.cli("attest", "sbom", "--digest", wantFile, "--name", "sbom", sbomFile, "--token", ci); !strings.Contains(out, "recorded: PASSED sbom (sbom)") || !strings.Contains(out, "cyclonedx 1.5") {
		t.Errorf("attest sbom: %s", out)
	}
	report := write("pentest-2026-q4.pdf", "%PDF-1.7 the pen-test report")
	if err := json.Unmarshal([]byte(v.cli("attest", "generic", "--subject-file", bin, "--name", "pen-test", "--type", "pentest", "--passed=true", "--file", report, "-o", "json", "--token", ci)), &att); err != nil {
		t.Fatal(err)
	}
	resp := v.blob(auditor, att.Blob)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != readFile(t, report) || resp.Header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("pen-test report blob: %q %v, want the PDF as an attachment", body, resp.Header)
	}

	// The release manager approves; CI cannot.
	if _, code := v.run("approve", wantFile, "--environment", "prod", "--reason", "CAB-1234", "--token", ci); code != 1 {
		t.Errorf("CI token approving: exit %d, want 1 (403)", code)
	}
	if out := v.cli("approve", "registry.example.com/shop/web@"+wantFile, "--environment", "prod", "--reason", "CAB-1234", "--expires", "72h", "--token", rm); !strings.HasPrefix(out, "approved: "+wantFile+" for prod by release-manager (CAB-1234), expires ") {
		t.Errorf("approve: %s", out)
	}
	var approvals []struct{ Digest, Environment, Decision, Approver, Reason string }
	if err := json.Unmarshal([]byte(v.cli("approvals", "list", "--environment", "prod", "-o", "json", "--token", auditor)), &approvals); err != nil ||
		len(approvals) != 1 || approvals[0].Digest != wantFile || approvals[0].Approver != "release-manager" || approvals[0].Reason != "CAB-1234" {
		t.Errorf("approvals list = %+v (%v)", approvals, err)
	}

	// Deployed to prod: admitted on this evidence.
	if resp := v.admit("uid-cli", "prod", "registry.example.com/shop/web@"+wantFile); !resp.Allowed {
		t.Fatalf("prod admission denied: %s", resp.Result.Message)
	}

	// Where did commit 4b825dc go? And what is sha256:…?
	var results []struct {
		Artifact     struct{ Name, Digest string }
		Matched      string
		Attestations []struct{ Name string }
		Approvals    []struct{ Decision string }
		Environments []struct {
			Environment   string
			FirstAdmitted *struct{ JournalIndex uint64 } `json:"first_admitted"`
		}
	}
	if err := json.Unmarshal([]byte(v.cli("search", commit[:7], "-o", "json", "--token", auditor)), &results); err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Artifact.Digest != wantFile || results[0].Matched != "git_commit" || len(results[0].Attestations) != 6 ||
		len(results[0].Approvals) != 1 || len(results[0].Environments) != 1 || results[0].Environments[0].Environment != "prod" || results[0].Environments[0].FirstAdmitted == nil {
		t.Errorf("search by commit prefix = %+v", results)
	}
	out = v.cli("search", wantDir[:15], "--token", auditor)
	if !strings.Contains(out, "shop-site") || !strings.Contains(out, wantDir) || strings.Contains(out, "registry.example.com/shop/web") {
		t.Errorf("search by digest prefix %s:\n%s", wantDir[:15], out)
	}
	if out, code := v.run("search", "0000000", "--token", auditor); code != 1 || !strings.Contains(out, `no artifact matches "0000000"`) {
		t.Errorf("search without a match: exit %d %s", code, out)
	}

	out = v.cli("artifact", "get", wantFile, "--token", auditor)
	for _, want := range []string{"artifact registry.example.com/shop/web " + wantFile, "commit      " + commit, "attestations (6):", "pen-test",
		"security-scan", "sbom", "approvals (1):", "CAB-1234"} {
		if !strings.Contains(out, want) {
			t.Errorf("artifact get lacks %q:\n%s", want, out)
		}
	}

	// Exit codes: usage 2, refused 1, unreachable 3.
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"attest", "junit", "--digest", wantFile, gradle, "--token", ci}, 2},
		{[]string{"artifact", "report", "x", "--token", ci}, 2},
		{[]string{"artifact", "get", "sha256:" + strings.Repeat("0", 64), "--token", auditor}, 1},
		{[]string{"artifact", "report", "registry.example.com/shop/web", "--file", bin, "--commit", strings.Repeat("1", 40), "--token", ci}, 1}, // 409
		{[]string{"attest", "sbom", "--digest", wantFile, "--name", "sbom", sarifFile, "--token", ci}, 1},
		{[]string{"search", commit[:7], "--token", ci}, 1}, // 403
		{[]string{"search", commit[:7], "--token", auditor, "--server", "http://" + freeAddr(t)}, 3},
	} {
		if out, code := v.run(c.args...); code != c.want {
			t.Errorf("vouch %v: exit %d, want %d\n%s", c.args, code, c.want, out)
		}
	}
}

// blob GETs a blob.
func (v *vouch) blob(token, digest string) *http.Response {
	v.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+v.api+"/api/v1/blobs/"+digest, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		v.t.Fatalf("GET /api/v1/blobs/%s: %s", digest, resp.Status)
	}
	return resp
}

// download returns a blob's content.
func (v *vouch) download(token, digest string) string {
	v.t.Helper()
	resp := v.blob(token, digest)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	return string(b)
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
