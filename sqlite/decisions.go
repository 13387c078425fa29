package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/journal"
)

var _ drift.DecisionStore = (*DB)(nil)

// projectDecision indexes an admission entry for the decisions log and by
// its image digests.
func projectDecision(ctx context.Context, tx *sql.Tx, e journal.Entry) error {
	d, ok := drift.ParseDecision(e)
	if !ok {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO decisions (idx, time, environment, namespace, kind, name, username, uid, allowed, images, messages)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, int64(e.Index), micros(e.Time), d.Environment, d.Namespace, d.Kind, d.Name, d.User, d.UID,
		d.Allowed, drift.JoinLines(d.Images), drift.JoinLines(d.Messages)); err != nil {
		return err
	}
	for _, dg := range d.Digests {
		if _, err := tx.ExecContext(ctx, `INSERT INTO decision_digests (digest, idx) VALUES (?, ?)`, dg, int64(e.Index)); err != nil {
			return err
		}
	}
	return nil
}

const decisionColumns = `d.idx, d.time, d.environment, d.namespace, d.kind, d.name, d.username, d.uid, d.allowed, d.images, d.messages`

// Decisions implements drift.DecisionStore. A digest query is driven by
// the digest index; the others by the index of their most selective
// field. A text search examines at most q.Scan candidates, newest first.
func (d *DB) Decisions(ctx context.Context, q drift.DecisionQuery) (drift.DecisionPage, error) {
	from := `decisions d`
	var where []string
	var args []any
	if q.Digest != "" {
		from = `decision_digests g CROSS JOIN decisions d ON d.idx = g.idx`
		where, args = append(where, "g.digest = ?"), append(args, q.Digest)
	}
	add := func(cond string, v any) { where, args = append(where, cond), append(args, v) }
	if q.Environment != "" {
		add("d.environment = ?", q.Environment)
	}
	if q.Namespace != "" {
		add("d.namespace = ?", q.Namespace)
	}
	if q.Allowed != nil {
		add("d.allowed = ?", *q.Allowed)
	}
	if q.From > 0 {
		add("d.idx >= ?", int64(q.From))
	}
	if q.Before > 0 {
		add("d.idx < ?", int64(q.Before))
	}
	cond := "1 = 1"
	if len(where) > 0 {
		cond = strings.Join(where, " AND ")
	}
	limit := q.EffectiveLimit()
	query := `SELECT ` + decisionColumns + ` FROM ` + from + ` WHERE ` + cond + ` ORDER BY d.idx DESC LIMIT ?`
	qargs := append(append([]any{}, args...), limit+1) // one more: is there a next page?
	if q.Text != "" {
		query = `SELECT ` + decisionColumns + ` FROM (SELECT d.* FROM ` + from + ` WHERE ` + cond + ` ORDER BY d.idx DESC LIMIT ?) d
			WHERE (d.namespace || ' ' || d.kind || ' ' || d.name || ' ' || d.username || ' ' || d.uid || ' ' || d.images || ' ' || d.messages) LIKE ? ESCAPE '\'
			ORDER BY d.idx DESC LIMIT ?`
		qargs = append(append([]any{}, args...), q.EffectiveScan(), drift.LikePattern(q.Text), limit+1)
	}
	rows, err := d.db.QueryContext(ctx, query, qargs...)
	if err != nil {
		return drift.DecisionPage{}, fmt.Errorf("sqlite: decisions: %w", err)
	}
	var page drift.DecisionPage
	err = eachRow(rows, func() error {
		var dec drift.Decision
		var idx, at int64
		var images, messages string
		if err := rows.Scan(&idx, &at, &dec.Environment, &dec.Namespace, &dec.Kind, &dec.Name, &dec.User, &dec.UID, &dec.Allowed, &images, &messages); err != nil {
			return err
		}
		dec.Index, dec.Time, dec.Images, dec.Messages = uint64(idx), fromMicros(at), drift.SplitLines(images), drift.SplitLines(messages)
		page.Decisions = append(page.Decisions, dec)
		return nil
	})
	if err != nil {
		return drift.DecisionPage{}, fmt.Errorf("sqlite: decisions: %w", err)
	}
	if len(page.Decisions) > limit {
		page.Decisions = page.Decisions[:limit]
		page.Next = page.Decisions[limit-1].Index
		return page, nil
	}
	if q.Text != "" {
		// Was the scan window used up? Then the search goes on before its
		// oldest candidate.
		var last sql.NullInt64
		err := d.db.QueryRowContext(ctx, `SELECT d.idx FROM `+from+` WHERE `+cond+` ORDER BY d.idx DESC LIMIT 1 OFFSET ?`,
			append(args, q.EffectiveScan()-1)...).Scan(&last)
		if err != nil && err != sql.ErrNoRows {
			return drift.DecisionPage{}, fmt.Errorf("sqlite: decisions: %w", err)
		}
		if last.Valid && last.Int64 > 0 {
			page.Next, page.Exhausted = uint64(last.Int64), true
		}
	}
	return page, nil
}
