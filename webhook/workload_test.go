package webhook

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExtractWorkload(t *testing.T) {
	spec := `{"initContainers":[{"name":"init","image":"i:1"}],"containers":[{"name":"app","image":"a:1"},{"name":"side","image":"s:1"}],"ephemeralContainers":[{"name":"dbg","image":"d:1"}]}`
	all := []Container{
		{Name: "init", Image: "i:1", Type: "init"},
		{Name: "app", Image: "a:1", Type: "container"},
		{Name: "side", Image: "s:1", Type: "container"},
		{Name: "dbg", Image: "d:1", Type: "ephemeral"},
	}
	meta := `"metadata":{"name":"w","namespace":"ns","labels":{"app":"w"},"annotations":{"a":"b"}}`
	template := `{` + meta + `,"spec":{"template":{"metadata":{"labels":{"app":"w"}},"spec":` + spec + `}}}`
	tests := []struct {
		kind    string
		raw     string
		want    []Container
		wantErr bool
	}{
		{kind: "Pod", raw: `{` + meta + `,"spec":` + spec + `}`, want: all},
		{kind: "Deployment", raw: template, want: all},
		{kind: "ReplicaSet", raw: template, want: all},
		{kind: "StatefulSet", raw: template, want: all},
		{kind: "DaemonSet", raw: template, want: all},
		{kind: "Job", raw: template, want: all},
		{kind: "CronJob", raw: `{` + meta + `,"spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":{"spec":` + spec + `}}}}}`, want: all},
		{kind: "Deployment", raw: `{` + meta + `,"spec":{}}`, wantErr: true},
		{kind: "CronJob", raw: `{` + meta + `,"spec":{}}`, wantErr: true},
		{kind: "Pod", raw: `{"spec":{"containers":"nope"}}`, wantErr: true},
		{kind: "Pod", raw: `not json`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			w, err := ExtractWorkload(tt.kind, []byte(tt.raw))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ExtractWorkload(%s) error = %v, wantErr %v", tt.kind, err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if diff := cmp.Diff(tt.want, w.Containers); diff != "" {
				t.Errorf("ExtractWorkload(%s) containers (-want +got):\n%s", tt.kind, diff)
			}
			if w.Name != "w" || w.Namespace != "ns" || w.Labels["app"] != "w" || w.Annotations["a"] != "b" {
				t.Errorf("ExtractWorkload(%s) metadata = %+v", tt.kind, w)
			}
		})
	}
}

func TestGenerateNameAndAddedEphemeral(t *testing.T) {
	old, err := ExtractWorkload("Pod", []byte(`{"metadata":{"generateName":"web-"},"spec":{"containers":[{"name":"app","image":"a"}],"ephemeralContainers":[{"name":"dbg1","image":"d1"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if old.Name != "web-*" {
		t.Errorf("name from generateName = %q, want web-*", old.Name)
	}
	cur, _ := ExtractWorkload("Pod", []byte(`{"spec":{"containers":[{"name":"app","image":"a"}],"ephemeralContainers":[{"name":"dbg1","image":"d1"},{"name":"dbg2","image":"d2"}]}}`))
	want := []Container{{Name: "dbg2", Image: "d2", Type: "ephemeral"}}
	if diff := cmp.Diff(want, addedEphemeral(cur, old)); diff != "" {
		t.Errorf("addedEphemeral (-want +got):\n%s", diff)
	}
}

// TestAnnotationsOnObjectOrTemplate: break-glass and the configuration
// item are read from the object, else from its pod template (charts that
// set only pod annotations).
func TestAnnotationsOnObjectOrTemplate(t *testing.T) {
	for _, tc := range []struct{ object, template, wantCI, wantBreakGlass string }{
		{`{"vouch.dev/configuration-item":" Payments API ","vouch.dev/break-glass":"INC-1"}`, `{}`, "Payments API", "INC-1"},
		{`{}`, `{"vouch.dev/configuration-item":"payments-db","vouch.dev/break-glass":"INC-2"}`, "payments-db", "INC-2"},
		{`{"vouch.dev/configuration-item":"Payments API"}`, `{"vouch.dev/configuration-item":"payments-db"}`, "Payments API", ""},
		{`{}`, `{}`, "", ""},
	} {
		raw := `{"metadata":{"name":"w","annotations":` + tc.object + `},"spec":{"template":{"metadata":{"annotations":` + tc.template + `},"spec":{"containers":[{"name":"a","image":"a"}]}}}}`
		w, err := ExtractWorkload("Deployment", []byte(raw))
		if err != nil || w.ConfigurationItem != tc.wantCI || w.BreakGlass != tc.wantBreakGlass {
			t.Errorf("object %s, template %s: configuration item %q, break-glass %q, %v; want %q, %q", tc.object, tc.template, w.ConfigurationItem, w.BreakGlass, err, tc.wantCI, tc.wantBreakGlass)
		}
	}
}
