package policy

import (
	"context"
	"testing"
	"testing/fstest"
	"encoding/json"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"time"
)

func BenchmarkValueOnly(b *testing.B) {
	in := benchInput()
	for i := 0; i < b.N; i++ {
		_ = in.value(newTermCache())
	}
}

func BenchmarkEmptyPolicy(b *testing.B) {
	e, err := New(context.Background(), Config{Builtin: fstest.MapFS{"x.rego": {Data: []byte("package vouch.admission\ndeny contains 1 if false\n")}}})
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput()
	for i := 0; i < b.N; i++ {
		if _, err := e.Decide(context.Background(), in, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

func benchInput() *Input {
	now := time.Now()
	a := ArtifactInput{Container: "c", ContainerType: "container", Image: "x@sha256:00", Name: "x", Digest: "sha256:00",
		Provenance:   &Provenance{ID: 1, ReportedAt: now},
		Attestations: []AttestationInput{{ID: 2, Name: "unit-tests", Passed: true, ReportedAt: now}, {ID: 3, Name: "security-scan", Passed: true, ReportedAt: now}},
		Approvals:    []ApprovalInput{{ID: 4, Environment: "prod", Decision: "approved", ApprovedAt: now}}}
	return &Input{Request: Request{User: User{Groups: []string{}}}, Environment: InputEnvironment{Name: "prod", Require: Requirements{Digest: true, Provenance: true, Attestations: []string{"unit-tests", "security-scan"}, Approval: true}},
		Workload: Workload{Labels: map[string]string{}, Annotations: map[string]string{}}, Artifacts: []ArtifactInput{a, a, a}}
}


func benchPolicy(b *testing.B, src string) {
	e, err := New(context.Background(), Config{Builtin: fstest.MapFS{"x.rego": {Data: []byte(src)}}})
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := e.Decide(context.Background(), in, time.Now())
		if err != nil || len(d.Deny) > 0 {
			b.Fatal(err, d.Deny)
		}
	}
}

func BenchmarkPolicyOneRule(b *testing.B) {
	benchPolicy(b, `package vouch.admission
deny contains msg if {
	input.environment.require.digest
	some a in input.artifacts
	not a.allowed
	a.digest == ""
	msg := "x"
}`)
}

func BenchmarkPolicyThreeRules(b *testing.B) {
	benchPolicy(b, `package vouch.admission
deny contains msg if {
	input.environment.require.digest
	some a in input.artifacts
	not a.allowed
	a.digest == ""
	msg := "x"
}
deny contains msg if {
	input.environment.require.provenance
	some a in input.artifacts
	not a.allowed
	a.provenance == null
	msg := "x"
}
deny contains msg if {
	some name in input.environment.require.attestations
	some a in input.artifacts
	not a.allowed
	not passed(a, name)
	msg := "x"
}
passed(a, name) if {
	some att in a.attestations
	att.name == name
	att.passed
}
`)
}

func BenchmarkEmptyPolicyLazy(b *testing.B) {
	e, err := New(context.Background(), Config{Builtin: fstest.MapFS{"x.rego": {Data: []byte("package vouch.admission\ndeny contains 1 if false\n")}}})
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput()
	doc := map[string]any{}
	raw, _ := json.Marshal(in)
	json.Unmarshal(raw, &doc)
	pq := e.current.Load().query
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := pq.Eval(context.Background(), rego.EvalParsedInput(ast.LazyObject(doc)), rego.EvalTime(time.Now())); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEmptyPolicyNoInput(b *testing.B) {
	e, err := New(context.Background(), Config{Builtin: fstest.MapFS{"x.rego": {Data: []byte("package vouch.admission\ndeny contains 1 if false\n")}}})
	if err != nil {
		b.Fatal(err)
	}
	pq := e.current.Load().query
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := pq.Eval(context.Background(), rego.EvalTime(time.Now())); err != nil {
			b.Fatal(err)
		}
	}
}
