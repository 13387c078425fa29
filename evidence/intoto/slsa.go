package intoto

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/vouch-dev/vouch/evidence"
)

// ErrNotProvenance means a statement's predicate is not SLSA provenance.
var ErrNotProvenance = errors.New("not SLSA provenance")

// Provenance is what a SLSA provenance predicate says about the build, in
// the terms of evidence.ArtifactReport.
//
// From SLSA v1:
//   - Repository is the source repository named by externalParameters
//     (workflow.repository as GitHub Actions writes it,
//     buildConfigSource.repository as Cloud Build does, source, or
//     repository), else the URI of the first resolvedDependencies entry
//     with a git commit; "git+" and "@ref" are cut, and a trailing ".git".
//   - GitCommit is the digest of that repository's entry in
//     resolvedDependencies: gitCommit, else sha1, else a 40-hex value under
//     any name.
//   - BuildURL is runDetails.metadata.invocationId when it is an http(s)
//     URL.
//   - Pipeline is externalParameters.workflow.path, else
//     buildConfigSource.path, else entryPoint, else runDetails.builder.id.
//
// From SLSA v0.2 the same comes from invocation.configSource (uri, digest,
// entryPoint), else the first git entry of materials, and
// metadata.buildInvocationId; on GitHub Actions the run URL is made from
// invocation.environment.github_run_id and github_run_attempt.
//
// Fields that would not fit evidence.ArtifactReport (a repository over
// 1024 bytes, a pipeline over 256, a build URL over 2048 or not http(s))
// are left empty.
type Provenance struct {
	PredicateType string `json:"predicate_type"`
	BuildType     string `json:"build_type"`
	BuilderID     string `json:"builder_id"`
	InvocationID  string `json:"invocation_id,omitempty"`
	Repository    string `json:"repository,omitempty"`
	Ref           string `json:"ref,omitempty"`
	GitCommit     string `json:"git_commit,omitempty"`
	BuildURL      string `json:"build_url,omitempty"`
	Pipeline      string `json:"pipeline,omitempty"`
}

// resourceDescriptor is an in-toto ResourceDescriptor (SLSA v1) or
// material (v0.2).
type resourceDescriptor struct {
	URI    string            `json:"uri"`
	Digest map[string]string `json:"digest"`
}

type provenanceV1 struct {
	BuildDefinition *struct {
		BuildType            string               `json:"buildType"`
		ExternalParameters   json.RawMessage      `json:"externalParameters"`
		ResolvedDependencies []resourceDescriptor `json:"resolvedDependencies"`
	} `json:"buildDefinition"`
	RunDetails *struct {
		Builder struct {
			ID string `json:"id"`
		} `json:"builder"`
		Metadata struct {
			InvocationID string `json:"invocationId"`
		} `json:"metadata"`
	} `json:"runDetails"`
}

// externalParameters are the parameters of known build types that name the
// source and the pipeline.
type externalParameters struct {
	Workflow *struct {
		Ref        string `json:"ref"`
		Repository string `json:"repository"`
		Path       string `json:"path"`
	} `json:"workflow"`
	BuildConfigSource *struct {
		Ref        string `json:"ref"`
		Repository string `json:"repository"`
		Path       string `json:"path"`
	} `json:"buildConfigSource"`
	Source     any `json:"source"`
	Repository any `json:"repository"`
	EntryPoint any `json:"entryPoint"`
}

type provenanceV02 struct {
	Builder struct {
		ID string `json:"id"`
	} `json:"builder"`
	BuildType  string `json:"buildType"`
	Invocation struct {
		ConfigSource struct {
			URI        string            `json:"uri"`
			Digest     map[string]string `json:"digest"`
			EntryPoint string            `json:"entryPoint"`
		} `json:"configSource"`
		Environment map[string]any `json:"environment"`
	} `json:"invocation"`
	Metadata struct {
		BuildInvocationID string `json:"buildInvocationId"`
	} `json:"metadata"`
	Materials []resourceDescriptor `json:"materials"`
}

// Provenance reads the statement's SLSA provenance predicate, v1 or v0.2.
func (s Statement) Provenance() (Provenance, error) {
	var (
		p   Provenance
		err error
	)
	switch s.PredicateType {
	case SLSAProvenanceV1:
		p, err = readV1(s.Predicate)
	case SLSAProvenanceV02:
		p, err = readV02(s.Predicate)
	default:
		return Provenance{}, fmt.Errorf("intoto: %w: predicateType is %q, want %q or %q", ErrNotProvenance, s.PredicateType, SLSAProvenanceV1, SLSAProvenanceV02)
	}
	if err != nil {
		return Provenance{}, fmt.Errorf("intoto: %s: %w", s.PredicateType, err)
	}
	p.PredicateType = s.PredicateType
	if len(p.Repository) > 1024 {
		p.Repository = ""
	}
	if len(p.Pipeline) > 256 {
		p.Pipeline = ""
	}
	if !httpURL(p.BuildURL) {
		p.BuildURL = ""
	}
	return p, nil
}

func readV1(raw json.RawMessage) (Provenance, error) {
	var v provenanceV1
	if err := json.Unmarshal(raw, &v); err != nil {
		return Provenance{}, err
	}
	switch {
	case v.BuildDefinition == nil:
		return Provenance{}, errors.New("buildDefinition is required")
	case v.BuildDefinition.BuildType == "":
		return Provenance{}, errors.New("buildDefinition.buildType is required")
	case v.RunDetails == nil || v.RunDetails.Builder.ID == "":
		return Provenance{}, errors.New("runDetails.builder.id is required")
	}
	var ext externalParameters
	if len(v.BuildDefinition.ExternalParameters) > 0 {
		// Parameters of other build types may have other shapes.
		_ = json.Unmarshal(v.BuildDefinition.ExternalParameters, &ext)
	}
	p := Provenance{
		BuildType:    v.BuildDefinition.BuildType,
		BuilderID:    v.RunDetails.Builder.ID,
		InvocationID: v.RunDetails.Metadata.InvocationID,
		BuildURL:     v.RunDetails.Metadata.InvocationID,
	}
	var repo string
	switch {
	case ext.Workflow != nil && ext.Workflow.Repository != "":
		repo, p.Ref, p.Pipeline = ext.Workflow.Repository, ext.Workflow.Ref, ext.Workflow.Path
	case ext.BuildConfigSource != nil && ext.BuildConfigSource.Repository != "":
		repo, p.Ref, p.Pipeline = ext.BuildConfigSource.Repository, ext.BuildConfigSource.Ref, ext.BuildConfigSource.Path
	case str(ext.Source) != "":
		repo = str(ext.Source)
	case str(ext.Repository) != "":
		repo = str(ext.Repository)
	}
	if p.Pipeline == "" {
		p.Pipeline = str(ext.EntryPoint)
	}
	if p.Pipeline == "" {
		p.Pipeline = p.BuilderID
	}
	p.source(repo, v.BuildDefinition.ResolvedDependencies)
	return p, nil
}

func readV02(raw json.RawMessage) (Provenance, error) {
	var v provenanceV02
	if err := json.Unmarshal(raw, &v); err != nil {
		return Provenance{}, err
	}
	if v.Builder.ID == "" {
		return Provenance{}, errors.New("builder.id is required")
	}
	p := Provenance{
		BuildType:    v.BuildType,
		BuilderID:    v.Builder.ID,
		InvocationID: v.Metadata.BuildInvocationID,
		BuildURL:     v.Metadata.BuildInvocationID,
		Pipeline:     v.Invocation.ConfigSource.EntryPoint,
	}
	if p.Pipeline == "" {
		p.Pipeline = p.BuilderID
	}
	deps := v.Materials
	if cs := v.Invocation.ConfigSource; cs.URI != "" {
		deps = append([]resourceDescriptor{{URI: cs.URI, Digest: cs.Digest}}, deps...)
	}
	p.source("", deps)
	// slsa-github-generator: the run is in the environment.
	env := v.Invocation.Environment
	if runID := str(env["github_run_id"]); !httpURL(p.BuildURL) && runID != "" && strings.HasPrefix(p.Repository, "https://github.com/") {
		p.BuildURL = p.Repository + "/actions/runs/" + url.PathEscape(runID)
		if attempt := str(env["github_run_attempt"]); attempt != "" {
			p.BuildURL += "/attempts/" + url.PathEscape(attempt)
		}
	}
	return p, nil
}

// source sets the repository, ref and commit from repo, as the build's
// parameters name it, and the dependencies.
func (p *Provenance) source(repo string, deps []resourceDescriptor) {
	want := normalizeRepo(repo)
	for _, d := range deps {
		if want != "" && !strings.EqualFold(normalizeRepo(d.URI), want) {
			continue
		}
		commit := gitCommit(d, want != "")
		if commit == "" {
			continue
		}
		p.GitCommit = commit
		if want == "" {
			repo = d.URI
		}
		if p.Ref == "" {
			p.Ref = uriRef(d.URI)
		}
		break
	}
	p.Repository = normalizeRepo(repo)
}

var commitRE = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// gitCommit returns the commit a dependency names: its gitCommit digest,
// or its sha1 digest if it is a git+ URI. For the dependency that is the
// named source repository (named), a sha1 or another 40-hex value also
// counts (GitLab names the commit sha256). "" when it names none.
func gitCommit(d resourceDescriptor, named bool) string {
	if c := strings.ToLower(d.Digest["gitCommit"]); commitRE.MatchString(c) {
		return c
	}
	if c := strings.ToLower(d.Digest["sha1"]); len(c) == 40 && commitRE.MatchString(c) && (named || strings.HasPrefix(d.URI, "git+")) {
		return c
	}
	if named {
		for _, alg := range slices.Sorted(maps.Keys(d.Digest)) {
			if c := strings.ToLower(d.Digest[alg]); len(c) == 40 && commitRE.MatchString(c) {
				return c
			}
		}
	}
	return ""
}

// normalizeRepo turns a source URI into a repository URL: without "git+",
// a trailing "@ref", "/" or ".git".
func normalizeRepo(uri string) string {
	uri = strings.TrimPrefix(uri, "git+")
	if i := refAt(uri); i >= 0 {
		uri = uri[:i]
	}
	uri = strings.TrimSuffix(uri, "/")
	return strings.TrimSuffix(uri, ".git")
}

// uriRef returns the ref of "git+https://host/repo@refs/heads/main".
func uriRef(uri string) string {
	uri = strings.TrimPrefix(uri, "git+")
	if i := refAt(uri); i >= 0 {
		return uri[i+1:]
	}
	return ""
}

// refAt is the index of the '@' that starts a ref in uri, after its
// host, or -1.
func refAt(uri string) int {
	scheme := strings.Index(uri, "://")
	if scheme < 0 {
		return -1
	}
	path := strings.IndexByte(uri[scheme+3:], '/')
	if path < 0 {
		return -1
	}
	start := scheme + 3 + path
	if i := strings.IndexByte(uri[start:], '@'); i >= 0 {
		return start + i
	}
	return -1
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && len(s) <= 2048
}

// str returns v if it is a string, else "".
func str(v any) string {
	s, _ := v.(string)
	return s
}

// Artifacts returns the provenance of each subject of a SLSA provenance
// statement as Vouch records it.
func (s Statement) Artifacts() ([]evidence.ArtifactReport, error) {
	p, err := s.Provenance()
	if err != nil {
		return nil, err
	}
	out := make([]evidence.ArtifactReport, 0, len(s.Subject))
	for i, sub := range s.Subject {
		if sub.Name == "" {
			return nil, fmt.Errorf("intoto: subject %d has no name", i)
		}
		d, err := sub.SHA256()
		if err != nil {
			return nil, err
		}
		out = append(out, evidence.ArtifactReport{
			Name: sub.Name, Digest: d, GitCommit: p.GitCommit, Repository: p.Repository,
			BuildURL: p.BuildURL, Pipeline: p.Pipeline,
		})
	}
	return out, nil
}
