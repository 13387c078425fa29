package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
)

var _ evidence.Store = (*DB)(nil)

// project queues the insert of the evidence record an entry carries, if
// any, into the entry's transaction. The record's id is the entry's index,
// which the sequencer assigns in the same round trip, so it is read back by
// the entry's key; a record whose entry existed already is not inserted
// again.
func project(b *pgx.Batch, e journal.Entry) error {
	var err error
	switch e.Kind {
	case evidence.KindArtifact:
		var a evidence.Artifact
		if err = evidence.DecodeEntry(e, &a); err == nil {
			b.Queue(`INSERT INTO artifacts (id, digest, name, git_commit, repository, build_url, pipeline, reported_by, reported_at, author)
				SELECT idx, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM journal_entries WHERE key = $1 ON CONFLICT (id) DO NOTHING`,
				e.Key, a.Digest, a.Name, a.GitCommit, a.Repository, a.BuildURL, a.Pipeline, a.ReportedBy, a.ReportedAt, a.Author)
		}
	case evidence.KindAttestation:
		var a evidence.Attestation
		if err = evidence.DecodeEntry(e, &a); err == nil {
			var payload []byte
			if len(a.Payload) > 0 {
				payload = a.Payload
			}
			b.Queue(`INSERT INTO attestations (id, digest, name, type, passed, url, payload, reported_by, reported_at, blob, verified, key_id, signed_at)
				SELECT idx, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM journal_entries WHERE key = $1 ON CONFLICT (id) DO NOTHING`,
				e.Key, a.Digest, a.Name, a.Type, a.Passed, a.URL, payload, a.ReportedBy, a.ReportedAt, a.Blob, a.Verified, a.KeyID, a.SignedAt)
		}
	case evidence.KindApproval:
		var a evidence.Approval
		if err = evidence.DecodeEntry(e, &a); err == nil {
			b.Queue(`INSERT INTO approvals (id, digest, environment, decision, reason, expires_at, approver, approved_at, emergency, approver_identities)
				SELECT idx, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM journal_entries WHERE key = $1 ON CONFLICT (id) DO NOTHING`,
				e.Key, a.Digest, a.Environment, a.Decision, a.Reason, a.ExpiresAt, a.Approver, a.ApprovedAt, a.Emergency, nonNil(a.ApproverIdentities))
		}
	case drift.KindSnapshot:
		var r drift.Record
		if r, err = drift.DecodeRecord(e); err == nil {
			b.Queue(`INSERT INTO snapshots (id, environment, time, hash, kind, full_id, body)
				SELECT e.idx, $2, $3, $4, $5,
					CASE WHEN $5 = 'full' THEN e.idx ELSE COALESCE((SELECT s.full_id FROM snapshots s WHERE s.environment = $2 AND s.kind <> 'heartbeat' AND s.id < e.idx ORDER BY s.id DESC LIMIT 1), 0) END,
					$6
				FROM journal_entries e WHERE e.key = $1 ON CONFLICT (id) DO NOTHING`,
				e.Key, r.Environment, e.Time, r.Hash, r.Kind, []byte(e.Body))
			if ran := drift.RanDigests(r); len(ran) > 0 {
				b.Queue(`INSERT INTO ran (digest, environment, first_id)
					SELECT d, $2, e.idx FROM journal_entries e, unnest($3::text[]) AS d WHERE e.key = $1
					ON CONFLICT (digest, environment) DO NOTHING`,
					e.Key, r.Environment, ran)
			}
			if named := drift.NamedDigests(r); len(named) > 0 {
				b.Queue(`INSERT INTO snapshot_digests (environment, digest, id)
					SELECT $2, d, e.idx FROM journal_entries e, unnest($3::text[]) AS d WHERE e.key = $1
					ON CONFLICT DO NOTHING`,
					e.Key, r.Environment, named)
			}
		}
	default: // admissions: Append projects them per batch (admittedRows, decisionRows)
		return nil
	}
	if err == nil && e.Key == "" {
		err = fmt.Errorf("evidence entries need a key")
	}
	if err != nil {
		return fmt.Errorf("store %s: %w", e.Kind, err)
	}
	return nil
}

// admittedRows collects the digests that a batch's allowed admissions
// admitted, to update the admitted projection with one statement per batch
// instead of one per admission: each (environment, digest) row is written
// once, with the first and last index of the batch's admissions of it.
type admittedRows struct{ keys, envs, digests []string }

func (r *admittedRows) add(e journal.Entry) {
	if env, digests, ok := drift.AdmittedDigests(e); ok {
		for _, d := range digests {
			r.keys, r.envs, r.digests = append(r.keys, e.Key), append(r.envs, env), append(r.digests, d)
		}
	}
}

func (r *admittedRows) queue(b *pgx.Batch) {
	if len(r.keys) == 0 {
		return
	}
	b.Queue(`INSERT INTO admitted (environment, digest, first_id, last_id)
		SELECT x.env, x.digest, min(e.idx), max(e.idx)
		FROM unnest($1::text[], $2::text[], $3::text[]) AS x(key, env, digest) JOIN journal_entries e ON e.key = x.key
		GROUP BY x.env, x.digest
		ON CONFLICT (environment, digest) DO UPDATE SET last_id = GREATEST(admitted.last_id, EXCLUDED.last_id)`,
		r.keys, r.envs, r.digests)
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

const artifactColumns = `id, digest, name, git_commit, repository, build_url, pipeline, reported_by, reported_at, author`

// lookup reads artifacts, attestations and approvals of digests in one
// round trip.
func (d *DB) lookup(ctx context.Context, digests []string, payloads bool) (map[string]evidence.Evidence, error) {
	if len(digests) == 0 {
		return map[string]evidence.Evidence{}, nil
	}
	// Decisions read no payloads but evidence.DecisionPayloads: the
	// others can be large.
	payload := "CASE WHEN type IN ('" + strings.Join(evidence.DecisionPayloads, "', '") + "') THEN payload END"
	if payloads {
		payload = "payload"
	}
	var b pgx.Batch
	b.Queue(`SELECT `+artifactColumns+` FROM artifacts WHERE digest = ANY($1)`, digests)
	b.Queue(`SELECT id, digest, name, type, passed, url, `+payload+`, reported_by, reported_at, blob, verified, key_id, signed_at
		FROM attestations WHERE digest = ANY($1) ORDER BY id`, digests)
	b.Queue(`SELECT `+approvalColumns+` FROM approvals WHERE digest = ANY($1) ORDER BY id`, digests)
	br := d.pool.SendBatch(ctx, &b)
	defer br.Close()

	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("postgres: look up artifacts: %w", err)
	}
	arts, err := scanArtifacts(rows)
	if err != nil {
		return nil, err
	}

	rows, err = br.Query()
	if err != nil {
		return nil, fmt.Errorf("postgres: look up attestations: %w", err)
	}
	var atts []evidence.Attestation
	var a evidence.Attestation
	var id int64
	var p []byte
	var signed *time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &a.Digest, &a.Name, &a.Type, &a.Passed, &a.URL, &p, &a.ReportedBy, &a.ReportedAt, &a.Blob, &a.Verified, &a.KeyID, &signed}, func() error {
		x := a
		x.ID, x.ReportedAt, x.SignedAt = uint64(id), a.ReportedAt.UTC(), utc(signed)
		if len(p) > 0 {
			x.Payload = append([]byte(nil), p...)
		}
		atts = append(atts, x)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: look up attestations: %w", err)
	}

	rows, err = br.Query()
	if err != nil {
		return nil, fmt.Errorf("postgres: look up approvals: %w", err)
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
	var w where
	if f.Digest != "" {
		w.add("digest = $%d", f.Digest)
	}
	if f.Environment != "" {
		w.add("environment = $%d", f.Environment)
	}
	rows, err := d.pool.Query(ctx, `SELECT `+approvalColumns+` FROM approvals`+w.sql()+` ORDER BY id DESC LIMIT `+w.next(limit(f.Limit)), w.args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: approvals: %w", err)
	}
	return scanApprovals(rows)
}

func scanApprovals(rows pgx.Rows) ([]evidence.Approval, error) {
	var out []evidence.Approval
	var a evidence.Approval
	var id int64
	var exp *time.Time
	var identities []string
	_, err := pgx.ForEachRow(rows, []any{&id, &a.Digest, &a.Environment, &a.Decision, &a.Reason, &exp, &a.Approver, &a.ApprovedAt, &a.Emergency, &identities}, func() error {
		x := a
		x.ApproverIdentities = nilIfEmpty(identities)
		x.ID, x.ApprovedAt, x.ExpiresAt = uint64(id), a.ApprovedAt.UTC(), utc(exp)
		out = append(out, x)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: approvals: %w", err)
	}
	return out, nil
}

// where builds a WHERE clause with numbered parameters.
type where struct {
	conds []string
	args  []any
}

// add adds a condition; each %d in cond is the number of one of args.
func (w *where) add(cond string, args ...any) {
	nums := make([]any, len(args))
	for i, a := range args {
		w.args = append(w.args, a)
		nums[i] = len(w.args)
	}
	w.conds = append(w.conds, fmt.Sprintf(cond, nums...))
}

// next adds an argument and returns its parameter, as for LIMIT.
func (w *where) next(arg any) string {
	w.args = append(w.args, arg)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// limit is a list's row limit: n within 1-1000, 100 otherwise.
func limit(n int) int {
	if n <= 0 || n > 1000 {
		return 100
	}
	return n
}

// Artifacts implements evidence.Store.
func (d *DB) Artifacts(ctx context.Context, f evidence.ArtifactFilter) ([]evidence.Artifact, error) {
	var w where
	if f.Name != "" {
		w.add("name = $%d", f.Name)
	}
	if f.GitCommit != "" {
		w.add("git_commit = $%d", f.GitCommit)
	}
	// Byte-wise ranges on the C-collated indexes of migration 0006.
	if f.DigestPrefix != "" {
		w.add(`digest COLLATE "C" >= $%d AND digest COLLATE "C" < $%d`, f.DigestPrefix, evidence.PrefixEnd(f.DigestPrefix))
	}
	if f.CommitPrefix != "" {
		w.add(`git_commit COLLATE "C" >= $%d AND git_commit COLLATE "C" < $%d`, f.CommitPrefix, evidence.PrefixEnd(f.CommitPrefix))
	}
	rows, err := d.pool.Query(ctx, `SELECT `+artifactColumns+` FROM artifacts`+w.sql()+` ORDER BY id DESC LIMIT `+w.next(limit(f.Limit)), w.args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: artifacts: %w", err)
	}
	return scanArtifacts(rows)
}

func scanArtifacts(rows pgx.Rows) ([]evidence.Artifact, error) {
	var out []evidence.Artifact
	var a evidence.Artifact
	var id int64
	_, err := pgx.ForEachRow(rows, []any{&id, &a.Digest, &a.Name, &a.GitCommit, &a.Repository, &a.BuildURL, &a.Pipeline, &a.ReportedBy, &a.ReportedAt, &a.Author}, func() error {
		x := a
		x.ID, x.ReportedAt = uint64(id), a.ReportedAt.UTC()
		out = append(out, x)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: artifacts: %w", err)
	}
	return out, nil
}

// EvidenceRefs lists the evidence records from id from, for evidence.Audit.
func (d *DB) EvidenceRefs(ctx context.Context, from uint64, limit int) ([]evidence.Ref, error) {
	rows, err := d.pool.Query(ctx, `(SELECT id, 'artifact' AS kind, digest FROM artifacts WHERE id >= $1 ORDER BY id LIMIT $2)
		UNION ALL (SELECT id, 'attestation', digest FROM attestations WHERE id >= $1 ORDER BY id LIMIT $2)
		UNION ALL (SELECT id, 'approval', digest FROM approvals WHERE id >= $1 ORDER BY id LIMIT $2)
		ORDER BY id LIMIT $2`, int64(from), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: evidence refs: %w", err)
	}
	var out []evidence.Ref
	var r evidence.Ref
	var id int64
	_, err = pgx.ForEachRow(rows, []any{&id, &r.Kind, &r.Digest}, func() error {
		r.ID = uint64(id)
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: evidence refs: %w", err)
	}
	return out, nil
}
