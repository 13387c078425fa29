package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
)

var _ evidence.Store = (*DB)(nil)

// project writes the evidence record an entry carries, if any, in the
// entry's transaction.
func project(ctx context.Context, tx *sql.Tx, e journal.Entry) error {
	var err error
	switch e.Kind {
	case evidence.KindArtifact:
		var a evidence.Artifact
		if err = evidence.DecodeEntry(e, &a); err == nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO artifacts (id, digest, name, git_commit, repository, build_url, pipeline, reported_by, reported_at, author)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				int64(a.ID), a.Digest, a.Name, a.GitCommit, a.Repository, a.BuildURL, a.Pipeline, a.ReportedBy, micros(a.ReportedAt), a.Author)
		}
	case evidence.KindAttestation:
		var a evidence.Attestation
		if err = evidence.DecodeEntry(e, &a); err == nil {
			var payload []byte
			if len(a.Payload) > 0 {
				payload = a.Payload
			}
			var signed any
			if a.SignedAt != nil {
				signed = micros(*a.SignedAt)
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO attestations (id, digest, name, type, passed, url, payload, reported_by, reported_at, blob, verified, key_id, signed_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				int64(a.ID), a.Digest, a.Name, a.Type, a.Passed, a.URL, payload, a.ReportedBy, micros(a.ReportedAt), a.Blob, a.Verified, a.KeyID, signed)
		}
	case evidence.KindApproval:
		var a evidence.Approval
		if err = evidence.DecodeEntry(e, &a); err == nil {
			var exp any
			if a.ExpiresAt != nil {
				exp = micros(*a.ExpiresAt)
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO approvals (id, digest, environment, decision, reason, expires_at, approver, approved_at, emergency, approver_identities)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				int64(a.ID), a.Digest, a.Environment, a.Decision, a.Reason, exp, a.Approver, micros(a.ApprovedAt), a.Emergency, strings.Join(a.ApproverIdentities, ","))
		}
	case drift.KindSnapshot:
		var r drift.Record
		if r, err = drift.DecodeRecord(e); err == nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO snapshots (id, environment, time, hash, kind, full_id, body)
				VALUES (?, ?, ?, ?, ?, CASE WHEN ? = 'full' THEN ? ELSE COALESCE((SELECT full_id FROM snapshots WHERE environment = ? AND kind <> 'heartbeat' AND id < ? ORDER BY id DESC LIMIT 1), 0) END, ?)`,
				int64(e.Index), r.Environment, micros(e.Time), r.Hash, r.Kind, r.Kind, int64(e.Index), r.Environment, int64(e.Index), []byte(e.Body))
			for _, dg := range drift.RanDigests(r) {
				if err != nil {
					break
				}
				_, err = tx.ExecContext(ctx, `INSERT INTO ran (digest, environment, first_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
					dg, r.Environment, int64(e.Index))
			}
			for _, dg := range drift.NamedDigests(r) {
				if err != nil {
					break
				}
				_, err = tx.ExecContext(ctx, `INSERT INTO snapshot_digests (environment, digest, id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
					r.Environment, dg, int64(e.Index))
			}
		}
	case journal.KindAdmission:
		if err = projectDecision(ctx, tx, e); err != nil {
			break
		}
		if env, digests, ok := drift.AdmittedDigests(e); ok {
			for _, d := range digests {
				if _, err = tx.ExecContext(ctx, `INSERT INTO admitted (environment, digest, first_id, last_id) VALUES (?, ?, ?, ?)
					ON CONFLICT (environment, digest) DO UPDATE SET last_id = excluded.last_id`, env, d, int64(e.Index), int64(e.Index)); err != nil {
					break
				}
			}
		}
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite: store %s %d: %w", e.Kind, e.Index, err)
	}
	return nil
}

// Lookup implements evidence.Store.
func (d *DB) Lookup(ctx context.Context, digests []string) (map[string]evidence.Evidence, error) {
	return d.lookup(ctx, digests, false)
}

// Evidence implements evidence.Store.
func (d *DB) Evidence(ctx context.Context, digest string) (evidence.Evidence, error) {
	found, err := d.lookup(ctx, []string{digest}, true)
	if err != nil {
		return evidence.Evidence{}, err
	}
	return evidence.One(found, digest)
}

func (d *DB) lookup(ctx context.Context, digests []string, payloads bool) (map[string]evidence.Evidence, error) {
	if len(digests) == 0 {
		return map[string]evidence.Evidence{}, nil
	}
	in := placeholders(len(digests))
	args := anySlice(digests)

	rows, err := d.db.QueryContext(ctx, `SELECT `+artifactColumns+` FROM artifacts WHERE digest IN (`+in+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: look up artifacts: %w", err)
	}
	arts, err := scanArtifacts(rows)
	if err != nil {
		return nil, err
	}

	// Decisions read no payloads but evidence.DecisionPayloads: the
	// others can be large.
	payload := "CASE WHEN type IN ('" + strings.Join(evidence.DecisionPayloads, "', '") + "') THEN payload END"
	if payloads {
		payload = "payload"
	}
	rows, err = d.db.QueryContext(ctx, `SELECT id, digest, name, type, passed, url, `+payload+`, reported_by, reported_at, blob, verified, key_id, signed_at
		FROM attestations WHERE digest IN (`+in+`) ORDER BY digest, id`, args...) // in the order of the (digest, id) index: no scan of the table
	if err != nil {
		return nil, fmt.Errorf("sqlite: look up attestations: %w", err)
	}
	var atts []evidence.Attestation
	err = eachRow(rows, func() error {
		var a evidence.Attestation
		var id, at int64
		var p []byte
		var signed sql.NullInt64
		if err := rows.Scan(&id, &a.Digest, &a.Name, &a.Type, &a.Passed, &a.URL, &p, &a.ReportedBy, &at, &a.Blob, &a.Verified, &a.KeyID, &signed); err != nil {
			return err
		}
		a.ID, a.ReportedAt, a.SignedAt = uint64(id), fromMicros(at), optTime(signed)
		if len(p) > 0 {
			a.Payload = p
		}
		atts = append(atts, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: look up attestations: %w", err)
	}

	rows, err = d.db.QueryContext(ctx, `SELECT `+approvalColumns+` FROM approvals WHERE digest IN (`+in+`) ORDER BY digest, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: look up approvals: %w", err)
	}
	apps, err := scanApprovals(rows)
	if err != nil {
		return nil, err
	}
	return evidence.Collect(arts, atts, apps), nil
}

const approvalColumns = `id, digest, environment, decision, reason, expires_at, approver, approved_at, emergency, approver_identities`

// Approvals implements evidence.Store.
func (d *DB) Approvals(ctx context.Context, f evidence.ApprovalFilter) ([]evidence.Approval, error) {
	var where []string
	var args []any
	if f.Digest != "" {
		where, args = append(where, "digest = ?"), append(args, f.Digest)
	}
	if f.Environment != "" {
		where, args = append(where, "environment = ?"), append(args, f.Environment)
	}
	q := `SELECT ` + approvalColumns + ` FROM approvals`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, limit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: approvals: %w", err)
	}
	return scanApprovals(rows)
}

func scanApprovals(rows *sql.Rows) ([]evidence.Approval, error) {
	var out []evidence.Approval
	err := eachRow(rows, func() error {
		var a evidence.Approval
		var id, at int64
		var exp sql.NullInt64
		var identities string
		if err := rows.Scan(&id, &a.Digest, &a.Environment, &a.Decision, &a.Reason, &exp, &a.Approver, &at, &a.Emergency, &identities); err != nil {
			return err
		}
		a.ApproverIdentities = splitList(identities)
		a.ID, a.ApprovedAt, a.ExpiresAt = uint64(id), fromMicros(at), optTime(exp)
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: approvals: %w", err)
	}
	return out, nil
}

// limit is a list's row limit: n within 1-1000, 100 otherwise.
func limit(n int) int {
	if n <= 0 || n > 1000 {
		return 100
	}
	return n
}

const artifactColumns = `id, digest, name, git_commit, repository, build_url, pipeline, reported_by, reported_at, author`

// Artifacts implements evidence.Store.
func (d *DB) Artifacts(ctx context.Context, f evidence.ArtifactFilter) ([]evidence.Artifact, error) {
	var where []string
	var args []any
	if f.Name != "" {
		where, args = append(where, "name = ?"), append(args, f.Name)
	}
	if f.GitCommit != "" {
		where, args = append(where, "git_commit = ?"), append(args, f.GitCommit)
	}
	if f.DigestPrefix != "" {
		where, args = append(where, "digest >= ? AND digest < ?"), append(args, f.DigestPrefix, evidence.PrefixEnd(f.DigestPrefix))
	}
	if f.CommitPrefix != "" {
		where, args = append(where, "git_commit >= ? AND git_commit < ?"), append(args, f.CommitPrefix, evidence.PrefixEnd(f.CommitPrefix))
	}
	q := `SELECT ` + artifactColumns + ` FROM artifacts`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, limit(f.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: artifacts: %w", err)
	}
	return scanArtifacts(rows)
}

func scanArtifacts(rows *sql.Rows) ([]evidence.Artifact, error) {
	var out []evidence.Artifact
	err := eachRow(rows, func() error {
		var a evidence.Artifact
		var id, at int64
		if err := rows.Scan(&id, &a.Digest, &a.Name, &a.GitCommit, &a.Repository, &a.BuildURL, &a.Pipeline, &a.ReportedBy, &at, &a.Author); err != nil {
			return err
		}
		a.ID, a.ReportedAt = uint64(id), fromMicros(at)
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: artifacts: %w", err)
	}
	return out, nil
}

// eachRow calls fn for each row and closes rows.
func eachRow(rows *sql.Rows, fn func() error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EvidenceRefs lists the evidence records from id from, for evidence.Audit.
func (d *DB) EvidenceRefs(ctx context.Context, from uint64, limit int) ([]evidence.Ref, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, kind, digest FROM (
		SELECT * FROM (SELECT id, 'artifact' AS kind, digest FROM artifacts WHERE id >= ?1 ORDER BY id LIMIT ?2)
		UNION ALL SELECT * FROM (SELECT id, 'attestation', digest FROM attestations WHERE id >= ?1 ORDER BY id LIMIT ?2)
		UNION ALL SELECT * FROM (SELECT id, 'approval', digest FROM approvals WHERE id >= ?1 ORDER BY id LIMIT ?2))
		ORDER BY id LIMIT ?2`, int64(from), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: evidence refs: %w", err)
	}
	var out []evidence.Ref
	err = eachRow(rows, func() error {
		var r evidence.Ref
		var id int64
		if err := rows.Scan(&id, &r.Kind, &r.Digest); err != nil {
			return err
		}
		r.ID = uint64(id)
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: evidence refs: %w", err)
	}
	return out, nil
}
