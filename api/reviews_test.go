package api_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/evidence/review"
	"github.com/vouch-dev/vouch/test/forgetest"
)

// TestReviewsReadByVouch: POST /reviews has Vouch ask the forge itself
// about the repository and commit the build was reported from; the review
// is verified (key_id forge:<name>), and what the caller cannot reach is
// refused with why.
func TestReviewsReadByVouch(t *testing.T) {
	const merged = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
	gh := forgetest.GitHub(t, "octo-org/payments-api")
	gh.Add(forgetest.Approved(merged, "h"))
	token := gh.TokenFile(t)
	forges, err := review.NewForges([]review.ForgeConfig{{Name: "github", Type: "github", APIURL: gh.URL, TokenFile: token}})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(_ *fixture, c *api.Config) { c.Forges = forges })
	digest := func(n int) string { return fmt.Sprintf("sha256:%064d", n) }
	report := func(n int, repo, commit string) {
		t.Helper()
		if code, out := f.postJSON("/api/v1/artifacts", "ci", fmt.Sprintf(`{"name":"ghcr.io/octo-org/payments-api","digest":%q,"repository":%q,"git_commit":%q}`, digest(n), repo, commit)); code != 201 {
			t.Fatal(code, out)
		}
	}
	report(1, "https://github.com/octo-org/payments-api", merged)
	code, out := f.postJSON("/api/v1/reviews", "ci", fmt.Sprintf(`{"digest":%q}`, digest(1)))
	if code != 201 || out["verified"] != true || out["key_id"] != "forge:github" || out["name"] != "code-review" || out["type"] != "pull-request" || out["passed"] != true {
		t.Errorf("review read by Vouch: %d %v", code, out)
	}

	report(2, "https://gitlab.com/bank/api", merged)
	report(3, "https://github.com/octo-org/payments-api", "") // no commit
	for _, tc := range []struct {
		body string
		want int
		says string
	}{
		{fmt.Sprintf(`{"digest":%q}`, digest(2)), 422, "no forge is configured for the repository: gitlab.com (forges)"},
		{fmt.Sprintf(`{"digest":%q}`, digest(3)), 422, "names its repository and commit"},
		{fmt.Sprintf(`{"digest":%q}`, digest(9)), 422, "names its repository and commit"},
		{`{"digest":"sha256:nope"}`, 422, `must be "sha256:"`},
	} {
		code, out := f.postJSON("/api/v1/reviews", "ci", tc.body)
		if code != tc.want || !strings.Contains(fmt.Sprint(out), tc.says) {
			t.Errorf("%s: %d %v, want %d saying %q", tc.body, code, out, tc.want, tc.says)
		}
	}
	// The forge refusing Vouch's token is a 502 that says so.
	os.WriteFile(token, []byte("wrong"), 0o600)
	bad, err := review.NewForges([]review.ForgeConfig{{Name: "github", Type: "github", APIURL: gh.URL, TokenFile: token}})
	if err != nil {
		t.Fatal(err)
	}
	g := newFixture(t, func(_ *fixture, c *api.Config) { c.Forges = bad })
	if code, out := g.postJSON("/api/v1/artifacts", "ci", fmt.Sprintf(`{"name":"a","digest":%q,"repository":"https://github.com/octo-org/payments-api","git_commit":%q}`, digest(1), merged)); code != 201 {
		t.Fatal(code, out)
	}
	if code, out := g.postJSON("/api/v1/reviews", "ci", fmt.Sprintf(`{"digest":%q}`, digest(1))); code != 502 || !strings.Contains(fmt.Sprint(out["detail"]), "asking the forge github about https://github.com/octo-org/payments-api at "+merged+": GET /repos/octo-org/payments-api/commits/"+merged+"/pulls: 401 Unauthorized") {
		t.Errorf("forge refusing Vouch's token: %d %v", code, out)
	}
}
