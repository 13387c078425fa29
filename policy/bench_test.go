package policy_test

import (
	"context"
	"testing"
)

// BenchmarkDecide measures one decision for a 3-container workload in prod
// with complete evidence: input conversion and Rego evaluation.
func BenchmarkDecide(b *testing.B) {
	e, err := newEngineB()
	if err != nil {
		b.Fatal(err)
	}
	in := prodInput(nil)
	in.Artifacts = append(in.Artifacts, in.Artifacts[0], in.Artifacts[0])
	in.Artifacts[1].Container, in.Artifacts[2].Container = "b", "c"
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := e.Decide(ctx, in, now)
		if err != nil || !d.Allowed() {
			b.Fatalf("Decide = %v, %v", d, err)
		}
	}
}
