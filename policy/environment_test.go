package policy_test

import (
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/policy"
)

// code_review defaults to the attestation "code-review" and one approval;
// anything else that is not a name and a positive minimum is refused.
func TestCodeReviewRequirement(t *testing.T) {
	envs, err := policy.NewEnvironments("default", []policy.Environment{{Name: "prod", Namespaces: []string{"prod"}, Require: policy.Requirements{CodeReview: &policy.CodeReview{}}}})
	if err != nil {
		t.Fatal(err)
	}
	prod, _ := envs.Named("prod")
	if cr := prod.Require.CodeReview; cr.Attestation != "code-review" || cr.MinApprovals != 1 {
		t.Errorf("defaults: %+v", cr)
	}
	for _, cr := range []policy.CodeReview{{MinApprovals: -1}, {Attestation: "no spaces allowed", MinApprovals: 2}, {Branches: []string{""}}} {
		_, err := policy.NewEnvironments("default", []policy.Environment{{Name: "prod", Namespaces: []string{"prod"}, Require: policy.Requirements{CodeReview: &cr}}})
		if err == nil || !strings.Contains(err.Error(), "environments[0].require.code_review: want {attestation: <name>, min_approvals: <at least 1>, branches: [<branch>…]}") {
			t.Errorf("%+v: %v", cr, err)
		}
	}
}
