// Package sbom recognises software bills of materials and summarises them
// as attestations.
//
// It reads the JSON forms of:
//
//   - CycloneDX 1.x (https://cyclonedx.org/docs/1.6/json/): bomFormat
//     "CycloneDX" and specVersion "1.N". The summary names
//     metadata.component, counts components (nested ones too) and lists
//     metadata.tools, in both the 1.4 array form and the 1.5 object form.
//   - SPDX 2.x (https://spdx.github.io/spdx-spec/v2.3/): spdxVersion
//     "SPDX-2.N". The summary names the document, counts packages, takes the
//     version of the one package the document describes (documentDescribes
//     or a DESCRIBES relationship of SPDXRef-DOCUMENT), and lists the
//     "Tool:" creators.
//
// Anything else — other JSON, CycloneDX XML, SPDX tag-value, RDF or SPDX 3
// JSON-LD, an in-toto statement wrapping an SBOM — is rejected with
// ErrNotSBOM and a message saying what it looks like.
package sbom

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/vouch-dev/vouch/evidence"
)

// AttestationType is the attestation type of SBOMs.
const AttestationType = "sbom"

// Formats.
const (
	CycloneDX = "cyclonedx"
	SPDX      = "spdx"
)

// DefaultMaxBytes is the largest document Parse reads.
const DefaultMaxBytes = 256 << 20

const (
	maxTools = 10
	maxText  = 256 // bytes kept of names, versions and ids
)

// ErrNotSBOM means the input is not a CycloneDX or SPDX 2 JSON document.
var ErrNotSBOM = errors.New("not a CycloneDX or SPDX 2 JSON document")

// Summary is what an SBOM says about itself.
type Summary struct {
	Format      string `json:"format"`       // CycloneDX or SPDX
	SpecVersion string `json:"spec_version"` // "1.6", "SPDX-2.3"
	// ID is the CycloneDX serialNumber or the SPDX documentNamespace.
	ID string `json:"id,omitempty"`
	// Name and Version are of CycloneDX's metadata.component, or the SPDX
	// document's name and the version of the package it describes.
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	// Components counts CycloneDX components, nested ones too, or SPDX
	// packages.
	Components int      `json:"components"`
	Tools      []string `json:"tools,omitempty"` // name and version of the tools that made it
}

// Attestation returns the attestation of artifact digest named name that
// this SBOM makes: type "sbom", passed (an SBOM records, it does not
// judge), and the summary as payload.
func (s Summary) Attestation(digest, name string) evidence.AttestationReport {
	passed := true
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic("sbom: encode payload: " + err.Error()) // only strings and integers: cannot fail
	}
	return evidence.AttestationReport{
		Digest: digest, Name: name, Type: AttestationType, Passed: &passed,
		Payload: bytes.TrimSuffix(buf.Bytes(), []byte("\n")),
	}
}

type (
	document struct {
		// CycloneDX
		BOMFormat    *string `json:"bomFormat"`
		SpecVersion  any     `json:"specVersion"`
		SerialNumber string  `json:"serialNumber"`
		Metadata     *struct {
			Component *struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			} `json:"component"`
			Tools json.RawMessage `json:"tools"`
		} `json:"metadata"`
		Components []component `json:"components"`

		// SPDX 2
		SPDXVersion       any    `json:"spdxVersion"`
		Name              string `json:"name"`
		DocumentNamespace string `json:"documentNamespace"`
		CreationInfo      *struct {
			Creators []string `json:"creators"`
		} `json:"creationInfo"`
		Packages []struct {
			SPDXID      string `json:"SPDXID"`
			VersionInfo string `json:"versionInfo"`
		} `json:"packages"`
		DocumentDescribes []string `json:"documentDescribes"`
		Relationships     []struct {
			Element string `json:"spdxElementId"`
			Type    string `json:"relationshipType"`
			Related string `json:"relatedSpdxElement"`
		} `json:"relationships"`

		// What else it may be.
		Context       any    `json:"@context"`
		Type          string `json:"_type"`
		PredicateType string `json:"predicateType"`
	}
	component struct {
		Components []component `json:"components"`
	}
	tool struct {
		Vendor  string `json:"vendor"`
		Name    string `json:"name"`
		Version string `json:"version"`
	}
)

var (
	cycloneDXVersionRE = regexp.MustCompile(`^1\.[0-9]+$`)
	spdxVersionRE      = regexp.MustCompile(`^SPDX-2\.[0-9]+$`)
)

// Parse reads an SBOM of at most DefaultMaxBytes.
func Parse(r io.Reader) (Summary, error) {
	data, err := io.ReadAll(io.LimitReader(r, DefaultMaxBytes+1))
	if err != nil {
		return Summary{}, fmt.Errorf("sbom: read: %w", err)
	}
	if len(data) > DefaultMaxBytes {
		return Summary{}, fmt.Errorf("sbom: larger than %d bytes", DefaultMaxBytes)
	}
	return ParseBytes(data)
}

// ParseBytes reads an SBOM.
func ParseBytes(data []byte) (Summary, error) {
	text := bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\ufeff")))
	switch {
	case len(text) == 0:
		return Summary{}, fmt.Errorf("sbom: %w: empty input", ErrNotSBOM)
	case text[0] == '<':
		return Summary{}, fmt.Errorf("sbom: %w: this is XML (CycloneDX XML or SPDX RDF?); give the JSON form", ErrNotSBOM)
	case bytes.HasPrefix(text, []byte("SPDXVersion:")) || bytes.Contains(text, []byte("\nSPDXVersion:")):
		return Summary{}, fmt.Errorf("sbom: %w: this is SPDX tag-value; give the JSON form", ErrNotSBOM)
	case text[0] != '{':
		return Summary{}, fmt.Errorf("sbom: %w: not a JSON object", ErrNotSBOM)
	}
	var d document
	if err := json.Unmarshal(text, &d); err != nil {
		return Summary{}, fmt.Errorf("sbom: %w: %w", ErrNotSBOM, err)
	}
	switch {
	case d.BOMFormat != nil:
		return d.cycloneDX()
	case d.SPDXVersion != nil:
		return d.spdx()
	case strings.Contains(fmt.Sprint(d.Context), "spdx.org/rdf/3"):
		return Summary{}, fmt.Errorf("sbom: %w: this is SPDX 3 JSON-LD, which is not supported", ErrNotSBOM)
	case strings.HasPrefix(d.Type, "https://in-toto.io/Statement/"):
		return Summary{}, fmt.Errorf("sbom: %w: this is an in-toto statement (predicateType %q); verify it and give its predicate", ErrNotSBOM, d.PredicateType)
	}
	return Summary{}, fmt.Errorf("sbom: %w: no bomFormat or spdxVersion", ErrNotSBOM)
}

func (d *document) cycloneDX() (Summary, error) {
	if *d.BOMFormat != "CycloneDX" {
		return Summary{}, fmt.Errorf("sbom: %w: bomFormat is %q, want \"CycloneDX\"", ErrNotSBOM, *d.BOMFormat)
	}
	v, _ := d.SpecVersion.(string)
	if !cycloneDXVersionRE.MatchString(v) {
		return Summary{}, fmt.Errorf("sbom: %w: CycloneDX specVersion is %v, want \"1.N\"", ErrNotSBOM, jsonText(d.SpecVersion))
	}
	s := Summary{Format: CycloneDX, SpecVersion: v, ID: clip(d.SerialNumber), Components: count(d.Components)}
	if m := d.Metadata; m != nil {
		if c := m.Component; c != nil {
			s.Name, s.Version = clip(c.Name), clip(c.Version)
		}
		s.Tools = cycloneDXTools(m.Tools)
	}
	return s, nil
}

// count counts components and the components nested in them.
func count(cs []component) int {
	n := len(cs)
	for _, c := range cs {
		n += count(c.Components)
	}
	return n
}

// cycloneDXTools reads metadata.tools: an array of tools (1.4 and before)
// or an object of components and services (1.5 and after).
func cycloneDXTools(raw json.RawMessage) []string {
	var tools []tool
	if json.Unmarshal(raw, &tools) != nil {
		var o struct {
			Components []tool `json:"components"`
			Services   []tool `json:"services"`
		}
		if json.Unmarshal(raw, &o) != nil {
			return nil
		}
		tools = append(o.Components, o.Services...)
	}
	var out []string
	for _, t := range tools {
		if t.Name == "" || len(out) == maxTools {
			continue
		}
		s := t.Name
		if t.Version != "" {
			s += " " + t.Version
		}
		out = append(out, clip(s))
	}
	return out
}

func (d *document) spdx() (Summary, error) {
	v, _ := d.SPDXVersion.(string)
	if strings.HasPrefix(v, "SPDX-3") {
		return Summary{}, fmt.Errorf("sbom: %w: spdxVersion %q: SPDX 3 is not supported", ErrNotSBOM, v)
	}
	if !spdxVersionRE.MatchString(v) {
		return Summary{}, fmt.Errorf("sbom: %w: spdxVersion is %v, want \"SPDX-2.N\"", ErrNotSBOM, jsonText(d.SPDXVersion))
	}
	s := Summary{Format: SPDX, SpecVersion: v, ID: clip(d.DocumentNamespace), Name: clip(d.Name), Components: len(d.Packages)}
	described := map[string]bool{}
	for _, id := range d.DocumentDescribes {
		described[id] = true
	}
	for _, r := range d.Relationships {
		if r.Element == "SPDXRef-DOCUMENT" && r.Type == "DESCRIBES" {
			described[r.Related] = true
		}
	}
	if len(described) == 1 {
		for _, p := range d.Packages {
			if described[p.SPDXID] {
				s.Version = clip(p.VersionInfo)
			}
		}
	}
	if c := d.CreationInfo; c != nil {
		for _, cr := range c.Creators {
			if t, ok := strings.CutPrefix(cr, "Tool:"); ok && len(s.Tools) < maxTools {
				s.Tools = append(s.Tools, clip(strings.TrimSpace(t)))
			}
		}
	}
	return s, nil
}

// jsonText shows a decoded JSON value in an error.
func jsonText(v any) string {
	if v == nil {
		return "absent"
	}
	b, _ := json.Marshal(v)
	return clip(string(b))
}

// clip shortens s to at most maxText bytes on a rune boundary, marking the
// cut.
func clip(s string) string {
	if len(s) <= maxText {
		return s
	}
	const mark = "…"
	i := maxText - len(mark)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + mark
}
