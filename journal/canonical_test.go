package journal

import (
	"strings"
	"testing"
)

func TestCanonicalizeJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		// RFC 8785 section 3.2.2.
		{name: "rfc8785 sample", in: `{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`, want: `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		// RFC 8785 section 3.2.3: sorting by UTF-16 code units.
		{name: "rfc8785 sorting", in: `{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
			want: "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
		// RFC 8785 appendix B number vectors (as decimal input).
		{name: "zero", in: `[0, -0, 0.0, -0.0e5]`, want: `[0,0,0,0]`},
		{name: "min subnormal", in: `5e-324`, want: `5e-324`},
		{name: "max double", in: `1.7976931348623157e308`, want: `1.7976931348623157e+308`},
		{name: "2^53", in: `9007199254740992`, want: `9007199254740992`},
		{name: "big integer", in: `295147905179352825856`, want: `295147905179352830000`},
		{name: "below 1e23", in: `9.999999999999997e22`, want: `9.999999999999997e+22`},
		{name: "1e23", in: `1e23`, want: `1e+23`},
		{name: "1e21 boundary", in: `[1e21, 999999999999999900000]`, want: `[1e+21,999999999999999900000]`},
		{name: "1e-6 boundary", in: `[0.000001, 9.999999999999997e-7]`, want: `[0.000001,9.999999999999997e-7]`},
		{name: "fraction", in: `333333333.33333336`, want: `333333333.3333334`},
		{name: "integers kept", in: `[-1, 123456789012345, 1.0, 10E2]`, want: `[-1,123456789012345,1,1000]`},
		{name: "nested and white space", in: " { \"b\" : [ 1 , { \"d\":1,\"c\":2 } ] ,\t\"a\":{}\n} ", want: `{"a":{},"b":[1,{"c":2,"d":1}]}`},
		{name: "control characters", in: `"\u0001\b\f\t\u001f\u007f"`, want: "\"\\u0001\\b\\f\\t\\u001f\u007f\""},
		{name: "html stays raw", in: `"<a href='x'>&</a>\u2028"`, want: "\"<a href='x'>&</a>\u2028\""},
		{name: "empty containers", in: `[[],{},""]`, want: `[[],{},""]`},
		{name: "duplicate key", in: `{"a":1,"a":2}`, wantErr: true},
		{name: "duplicate after unescape", in: `{"a":1,"\u0061":2}`, wantErr: true},
		{name: "trailing data", in: `{} {}`, wantErr: true},
		{name: "trailing comma", in: `[1,]`, wantErr: true},
		{name: "leading zero", in: `01`, wantErr: true},
		{name: "bare dot", in: `1.`, wantErr: true},
		{name: "out of range", in: `1e400`, wantErr: true},
		{name: "invalid utf-8", in: "\"\xff\"", wantErr: true},
		{name: "raw control character", in: "\"a\nb\"", wantErr: true},
		{name: "bad escape", in: `"\x"`, wantErr: true},
		{name: "unterminated", in: `{"a":"b`, wantErr: true},
		{name: "single quotes", in: `{'a':1}`, wantErr: true},
		{name: "empty", in: ``, wantErr: true},
		{name: "too deep", in: strings.Repeat("[", 600) + strings.Repeat("]", 600), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalizeJSON([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("CanonicalizeJSON(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && string(got) != tt.want {
				t.Errorf("CanonicalizeJSON(%q) = %s, want %s", tt.in, got, tt.want)
			}
			if tt.wantErr {
				return
			}
			again, err := CanonicalizeJSON(got)
			if err != nil || string(again) != string(got) {
				t.Errorf("canonical form is not a fixed point: %s -> %s (%v)", got, again, err)
			}
		})
	}
}

func FuzzCanonicalizeJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[true,null,"x\u0000"]}`, `1e21`, `"\ud83d\ude00"`, `[0.1,-5e-7]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := CanonicalizeJSON(in)
		if err != nil {
			return
		}
		again, err := CanonicalizeJSON(out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("not a fixed point: %q -> %q -> %q (%v)", in, out, again, err)
		}
	})
}

func BenchmarkCanonicalizeJSON(b *testing.B) {
	in := []byte(`{"uid":"0f3c","operation":"CREATE","api_version":"apps/v1","kind":"Deployment","namespace":"payments","name":"web","user":"system:serviceaccount:argocd:argocd-application-controller","environment":"prod","images":[{"container":"c0","container_type":"container","image":"registry.example.com/team/svc0@sha256:0000000000000000000000000000000000000000000000000000010000000000","digest":"sha256:0000000000000000000000000000000000000000000000000000010000000000"},{"container":"c1","container_type":"container","image":"registry.example.com/team/svc1@sha256:0000000000000000000000000000000000000000000000000000010000000001","digest":"sha256:0000000000000000000000000000000000000000000000000000010000000001"}],"allowed":true,"policy_version":"sha256:ea2281a6527cb7204f8710593fce5447a04f7d021c7eb3ea5efa5731ce4a7477","evidence":[1,2,3,4,5]}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := CanonicalizeJSON(in); err != nil {
			b.Fatal(err)
		}
	}
}
