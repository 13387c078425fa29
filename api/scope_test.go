package api_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/exempt"
)

// TestTokensLimitedToRepositories: a token created with repositories may
// report builds only of them, and attest and approve only those builds; it
// creates no exemptions. Refusals are 403 problems that say what to do, and
// nothing is recorded.
func TestTokensLimitedToRepositories(t *testing.T) {
	f := newFixture(t, func(f *fixture, cfg *api.Config) {
		cfg.Exemptions = exempt.New(f.journal, f.db, []string{"default", "prod"})
	})
	create := func(name, scopes string, repos ...string) {
		t.Helper()
		body := fmt.Sprintf(`{"name":%q,"scopes":[%s],"repositories":[%s]}`, name, scopes, quoteAll(repos))
		code, out := f.postJSON("/api/v1/tokens", "admin", body)
		if code != 201 {
			t.Fatalf("create token %s: %d %v", name, code, out)
		}
		f.tokens[name] = out["secret"].(string)
	}
	create("ci-payments", `"evidence:write"`, "https://GitHub.com/bank/payments-*", "github.com/bank/shared-lib")
	create("rm-payments", `"approvals:write"`, "github.com/bank/payments-*")
	if code, out := f.postJSON("/api/v1/tokens", "admin", `{"name":"x","scopes":["admin"],"repositories":["github.com/bank/*"]}`); code != 422 || !strings.Contains(fmt.Sprint(out), "an admin token cannot be limited") {
		t.Errorf("admin token limited to repositories: %d %v, want 422", code, out)
	}
	if code, out := f.postJSON("/api/v1/tokens", "admin", `{"name":"x","scopes":["evidence:write"],"repositories":["payments"]}`); code != 422 || !strings.Contains(fmt.Sprint(out), "github.com/org/repo") {
		t.Errorf("repository without a host: %d %v, want 422", code, out)
	}
	// Another team's build, reported with an unlimited token.
	if code, out := f.postJSON("/api/v1/artifacts", "ci", fmt.Sprintf(`{"name":"r/cards","digest":%q,"repository":"https://github.com/bank/cards"}`, digest(2))); code != 201 {
		t.Fatal(code, out)
	}

	for _, tc := range []struct {
		name, token, path, body string
		want                    int
		says                    string
	}{
		{"own build (git URL form)", "ci-payments", "/api/v1/artifacts", fmt.Sprintf(`{"name":"r/pay","digest":%q,"repository":"git@github.com:bank/payments-api.git","git_commit":"abababababababababababababababababababab"}`, digest(1)), 201, ""},
		{"another repository's build", "ci-payments", "/api/v1/artifacts", fmt.Sprintf(`{"name":"r/x","digest":%q,"repository":"https://github.com/bank/cards"}`, digest(3)), 403,
			`token \"ci-payments\" may write evidence only about builds of github.com/bank/payments-*, github.com/bank/shared-lib; the report of ` + digest(3) + ` names repository \"https://github.com/bank/cards\"`},
		{"a pattern does not cross a path segment", "ci-payments", "/api/v1/artifacts", fmt.Sprintf(`{"name":"r/x","digest":%q,"repository":"github.com/bank/payments-api/evil"}`, digest(3)), 403, "names repository"},
		{"a build without repository", "ci-payments", "/api/v1/artifacts", fmt.Sprintf(`{"name":"r/x","digest":%q}`, digest(3)), 403, "names no repository: report it with its repository"},
		{"attest own build", "ci-payments", "/api/v1/attestations", fmt.Sprintf(`{"digest":%q,"name":"unit-tests","type":"junit","passed":true}`, digest(1)), 201, ""},
		{"attest another team's build", "ci-payments", "/api/v1/attestations", fmt.Sprintf(`{"digest":%q,"name":"unit-tests","type":"junit","passed":true}`, digest(2)), 403, digest(2) + " was built from https://github.com/bank/cards"},
		{"attest a build nobody reported", "ci-payments", "/api/v1/attestations", fmt.Sprintf(`{"digest":%q,"name":"unit-tests","type":"junit","passed":true}`, digest(4)), 403, "no build of " + digest(4) + " was reported: report the build first"},
		{"attest an invalid digest", "ci-payments", "/api/v1/attestations", `{"digest":"sha256:nope","name":"unit-tests","type":"junit","passed":true}`, 422, "digest: must be"},
		{"approve own build", "rm-payments", "/api/v1/approvals", fmt.Sprintf(`{"digest":%q,"environment":"prod","decision":"approved","reason":"CAB-1"}`, digest(1)), 201, ""},
		{"approve another team's build", "rm-payments", "/api/v1/approvals", fmt.Sprintf(`{"digest":%q,"environment":"prod","decision":"approved","reason":"CAB-2"}`, digest(2)), 403, "was built from"},
		{"exempt", "rm-payments", "/api/v1/exemptions", fmt.Sprintf(`{"environment":"prod","digest":%q,"reason":"INC-1","expires_at":%q}`, digest(1), time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), 403, "is limited to repositories; exemptions admit images whatever their source, so to create one"},
		{"unlimited token attests anything", "ci", "/api/v1/attestations", fmt.Sprintf(`{"digest":%q,"name":"unit-tests","type":"junit","passed":true}`, digest(2)), 201, ""},
	} {
		code, out := f.postJSON(tc.path, tc.token, tc.body)
		if code != tc.want || !strings.Contains(fmt.Sprint(out["detail"]), strings.ReplaceAll(tc.says, `\"`, `"`)) {
			t.Errorf("%s: %d %v; want %d saying %q", tc.name, code, out["detail"], tc.want, tc.says)
		}
	}
	// The attack a review found: an envelope whose provenance claims the
	// token's own repository for a digest another team reported, to attest
	// it through the envelope's attestation. The stored build decides.
	statement, err := os.ReadFile("../evidence/intoto/testdata/github-attest-build-provenance.statement.json")
	if err != nil {
		t.Fatal(err)
	}
	const victim = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae" // its subject, built (it says) from github.com/octo-org/payments-api
	if code, out := f.postJSON("/api/v1/artifacts", "ci", fmt.Sprintf(`{"name":"r/cards","digest":%q,"repository":"https://github.com/bank/cards"}`, victim)); code != 201 {
		t.Fatal(code, out)
	}
	create("ci-octo", `"evidence:write"`, "github.com/octo-org/*")
	envelope := fmt.Sprintf(`{"payloadType":"application/vnd.in-toto+json","payload":%q,"signatures":[]}`, base64.StdEncoding.EncodeToString(statement))
	if code, out := f.postJSON("/api/v1/envelopes?name=unit-tests", "ci-octo", envelope); code != 403 || !strings.Contains(fmt.Sprint(out["detail"]), victim+" was built from https://github.com/bank/cards") {
		t.Errorf("envelope claiming another team's digest: %d %v; want 403", code, out["detail"])
	}
	if _, err := f.db.BlobInfo(context.Background(), evidence.BlobDigest([]byte(envelope))); !errors.Is(err, evidence.ErrNotFound) {
		t.Errorf("a refused envelope was stored as a blob: %v", err)
	}
	// A limited token neither creates nor revokes exemptions.
	code, ex := f.postJSON("/api/v1/exemptions", "rm", fmt.Sprintf(`{"environment":"prod","digest":%q,"reason":"INC-2","expires_at":%q}`, digest(2), time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
	if code != 201 {
		t.Fatal(code, ex)
	}
	if code, out, _ := f.do("DELETE", fmt.Sprintf("/api/v1/exemptions/%v", ex["id"]), "rm-payments", "", ""); code != 403 || !strings.Contains(fmt.Sprint(out["detail"]), "to revoke one takes a token that is not") {
		t.Errorf("a limited token revoking another team's exemption: %d %v; want 403", code, out["detail"])
	}
	if code, out := f.postJSON("/api/v1/tokens", "admin", `{"name":"x","scopes":["snapshots:write"],"repositories":["github.com/bank/*"]}`); code != 422 || !strings.Contains(fmt.Sprint(out), "snapshots:write") {
		t.Errorf("snapshots:write limited to repositories: %d %v, want 422", code, out)
	}

	// Nothing refused was recorded.
	code, ev, _ := f.do("GET", "/api/v1/artifacts/"+digest(2), "auditor", "", "")
	if code != 200 || len(ev["attestations"].([]any)) != 1 || len(ev["approvals"].([]any)) != 0 {
		t.Errorf("evidence of the other team's build = %v; want only the unlimited token's attestation", ev)
	}
	if code, _, _ := f.do("GET", "/api/v1/artifacts/"+digest(3), "auditor", "", ""); code != 404 {
		t.Errorf("a refused build report was recorded: GET = %d", code)
	}
	code, list, _ := f.do("GET", "/api/v1/tokens", "admin", "", "")
	if code != 200 || !strings.Contains(fmt.Sprint(list["tokens"]), "repositories:[github.com/bank/payments-* github.com/bank/shared-lib]") {
		t.Errorf("token list = %v; want the repositories as compared", list["tokens"])
	}
}

func quoteAll(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ",")
}
