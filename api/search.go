package api

import (
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
)

func (s *Server) listApprovals(c *gin.Context) {
	limit, err := intParam(c, "limit", 100, 1, 1000)
	if err != nil {
		s.fail(c, err)
		return
	}
	f := evidence.ApprovalFilter{Limit: limit, Environment: c.Query("environment")}
	if v := c.Query("digest"); v != "" {
		var ok bool
		if f.Digest, ok = evidence.ParseDigest(v); !ok {
			s.fail(c, badParam("digest", `must be "sha256:" and 64 hex characters`, v))
			return
		}
	}
	if f.Environment != "" && !evidence.ValidName(f.Environment) {
		s.fail(c, badParam("environment", "must be an environment name", f.Environment))
		return
	}
	list, err := s.cfg.EvidenceStore.Approvals(c.Request.Context(), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	if list == nil {
		list = []evidence.Approval{}
	}
	c.JSON(http.StatusOK, gin.H{"approvals": list})
}

// SearchLimit is the most artifacts a search returns.
const SearchLimit = 50

// SearchResult is one artifact found by GET /search, with its evidence
// (attestations without payloads) and where it was admitted and ran.
type SearchResult struct {
	Artifact evidence.Artifact `json:"artifact"`
	// Matched says what the query matched: "digest" or "git_commit".
	Matched      string                 `json:"matched"`
	Attestations []evidence.Attestation `json:"attestations"`
	Approvals    []evidence.Approval    `json:"approvals"`
	Environments []drift.Sighting       `json:"environments"`
}

// SearchAnswer is the answer to GET /search.
type SearchAnswer struct {
	Query   string         `json:"query"`
	Results []SearchResult `json:"results"`
}

var hexPrefixRE = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// searchPrefixes reads a search query: a digest or its start
// ("sha256:2c26b46"), or at least 7 hex characters that may start a
// digest or a git commit.
func searchPrefixes(q string) (digest, commit string, err error) {
	q = strings.ToLower(strings.TrimSpace(q))
	if h, ok := strings.CutPrefix(q, "sha256:"); ok {
		if hexPrefixRE.MatchString(h) {
			return q, "", nil
		}
	} else if hexPrefixRE.MatchString(q) {
		return "sha256:" + q, q, nil
	}
	return "", "", badParam("q", `must be a digest ("sha256:…"), or at least 7 hex characters starting a digest or a git commit`, q)
}

// search finds artifacts by digest or commit prefix, newest first, and
// says for each what evidence it has and where it was admitted and ran.
func (s *Server) search(c *gin.Context) {
	digestPrefix, commitPrefix, err := searchPrefixes(c.Query("q"))
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	matched := map[uint64]string{}
	var found []evidence.Artifact
	for _, f := range []struct {
		what   string
		filter evidence.ArtifactFilter
	}{
		{"digest", evidence.ArtifactFilter{DigestPrefix: digestPrefix, Limit: SearchLimit}},
		{"git_commit", evidence.ArtifactFilter{CommitPrefix: commitPrefix, Limit: SearchLimit}},
	} {
		if f.filter.DigestPrefix == "" && f.filter.CommitPrefix == "" {
			continue
		}
		list, err := s.cfg.EvidenceStore.Artifacts(ctx, f.filter)
		if err != nil {
			s.fail(c, err)
			return
		}
		for _, a := range list {
			if _, dup := matched[a.ID]; !dup {
				matched[a.ID] = f.what
				found = append(found, a)
			}
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].ID > found[j].ID })
	if len(found) > SearchLimit {
		found = found[:SearchLimit]
	}
	digests := make([]string, len(found))
	for i, a := range found {
		digests[i] = a.Digest
	}
	ev, err := s.cfg.EvidenceStore.Lookup(ctx, digests)
	if err != nil {
		s.fail(c, err)
		return
	}
	sightings := map[string][]drift.Sighting{}
	if s.cfg.Drift != nil {
		if sightings, err = s.cfg.Drift.Sightings(ctx, digests); err != nil {
			s.fail(c, err)
			return
		}
	}
	out := SearchAnswer{Query: c.Query("q"), Results: make([]SearchResult, len(found))}
	for i, a := range found {
		r := SearchResult{Artifact: a, Matched: matched[a.ID], Attestations: ev[a.Digest].Attestations,
			Approvals: ev[a.Digest].Approvals, Environments: sightings[a.Digest]}
		if r.Attestations == nil {
			r.Attestations = []evidence.Attestation{}
		}
		if r.Approvals == nil {
			r.Approvals = []evidence.Approval{}
		}
		if r.Environments == nil {
			r.Environments = []drift.Sighting{}
		}
		out.Results[i] = r
	}
	c.JSON(http.StatusOK, out)
}
