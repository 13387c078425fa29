package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/journal"
)

var _ drift.DecisionStore = (*DB)(nil)

// decisionRows collects a batch's admissions for the decisions log and its
// digest index: two statements per batch, the entries found by their keys
// as the other projections find theirs.
type decisionRows struct {
	keys, envs, namespaces, kinds, names, users, uids, images, messages []string
	times                                                               []time.Time
	allowed                                                             []bool
	digestKeys, digests                                                 []string
}

func (r *decisionRows) add(e journal.Entry) {
	d, ok := drift.ParseDecision(e)
	if !ok || e.Key == "" {
		return
	}
	r.keys, r.times, r.allowed = append(r.keys, e.Key), append(r.times, e.Time), append(r.allowed, d.Allowed)
	r.envs, r.namespaces = append(r.envs, text(d.Environment)), append(r.namespaces, text(d.Namespace))
	r.kinds, r.names = append(r.kinds, text(d.Kind)), append(r.names, text(d.Name))
	r.users, r.uids = append(r.users, text(d.User)), append(r.uids, text(d.UID))
	r.images, r.messages = append(r.images, text(drift.JoinLines(d.Images))), append(r.messages, text(drift.JoinLines(d.Messages)))
	for _, g := range d.Digests {
		r.digestKeys, r.digests = append(r.digestKeys, e.Key), append(r.digests, g)
	}
}

func (r *decisionRows) queue(b *pgx.Batch) {
	if len(r.keys) == 0 {
		return
	}
	b.Queue(`INSERT INTO decisions (idx, time, environment, namespace, kind, name, username, uid, allowed, images, messages)
		SELECT e.idx, x.time, x.env, x.ns, x.kind, x.name, x.username, x.uid, x.allowed, x.images, x.messages
		FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::boolean[], $10::text[], $11::text[])
			AS x(key, time, env, ns, kind, name, username, uid, allowed, images, messages)
		JOIN journal_entries e ON e.key = x.key
		ON CONFLICT (idx) DO NOTHING`,
		r.keys, r.times, r.envs, r.namespaces, r.kinds, r.names, r.users, r.uids, r.allowed, r.images, r.messages)
	if len(r.digests) > 0 {
		b.Queue(`INSERT INTO decision_digests (digest, idx)
			SELECT x.digest, e.idx FROM unnest($1::text[], $2::text[]) AS x(key, digest) JOIN journal_entries e ON e.key = x.key
			ON CONFLICT DO NOTHING`, r.digestKeys, r.digests)
	}
}

// text makes s storable in a text column, which cannot hold NUL: the index
// is a projection, the journal's leaf keeps the bytes as they were.
func text(s string) string { return strings.ReplaceAll(s, "\x00", "\uFFFD") }

const decisionColumns = `d.idx, d.time, d.environment, d.namespace, d.kind, d.name, d.username, d.uid, d.allowed, d.images, d.messages`

// Decisions implements drift.DecisionStore. A text search examines at
// most q.Scan candidates, newest first.
func (d *DB) Decisions(ctx context.Context, q drift.DecisionQuery) (drift.DecisionPage, error) {
	from := `decisions d`
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if q.Digest != "" {
		from = `decision_digests g JOIN decisions d ON d.idx = g.idx`
		add("g.digest = ?", q.Digest)
	}
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
	cond := "true"
	if len(where) > 0 {
		cond = strings.Join(where, " AND ")
	}
	n := len(args)
	param := func(i int) string { return "$" + strconv.Itoa(n+i) }
	limit := q.EffectiveLimit()
	query := `SELECT ` + decisionColumns + ` FROM ` + from + ` WHERE ` + cond + ` ORDER BY d.idx DESC LIMIT ` + param(1)
	qargs := append(append([]any{}, args...), limit+1) // one more: is there a next page?
	if q.Text != "" {
		query = `SELECT ` + decisionColumns + ` FROM (SELECT d.* FROM ` + from + ` WHERE ` + cond + ` ORDER BY d.idx DESC LIMIT ` + param(1) + `) d
			WHERE (d.namespace || ' ' || d.kind || ' ' || d.name || ' ' || d.username || ' ' || d.uid || ' ' || d.images || ' ' || d.messages) ILIKE ` + param(2) + ` ESCAPE '\'
			ORDER BY d.idx DESC LIMIT ` + param(3)
		qargs = append(append([]any{}, args...), q.EffectiveScan(), drift.LikePattern(q.Text), limit+1)
	}
	rows, err := d.pool.Query(ctx, query, qargs...)
	if err != nil {
		return drift.DecisionPage{}, fmt.Errorf("postgres: decisions: %w", err)
	}
	var page drift.DecisionPage
	var dec drift.Decision
	var idx int64
	var at time.Time
	var images, messages string
	_, err = pgx.ForEachRow(rows, []any{&idx, &at, &dec.Environment, &dec.Namespace, &dec.Kind, &dec.Name, &dec.User, &dec.UID, &dec.Allowed, &images, &messages}, func() error {
		dec.Index, dec.Time, dec.Images, dec.Messages = uint64(idx), at.UTC(), drift.SplitLines(images), drift.SplitLines(messages)
		page.Decisions = append(page.Decisions, dec)
		return nil
	})
	if err != nil {
		return drift.DecisionPage{}, fmt.Errorf("postgres: decisions: %w", err)
	}
	if len(page.Decisions) > limit {
		page.Decisions = page.Decisions[:limit]
		page.Next = page.Decisions[limit-1].Index
		return page, nil
	}
	if q.Text != "" {
		// Was the scan window used up? Then the search goes on before its
		// oldest candidate.
		var last int64
		err := d.pool.QueryRow(ctx, `SELECT d.idx FROM `+from+` WHERE `+cond+` ORDER BY d.idx DESC LIMIT 1 OFFSET `+param(1),
			append(args, q.EffectiveScan()-1)...).Scan(&last)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return drift.DecisionPage{}, fmt.Errorf("postgres: decisions: %w", err)
		case last > 0:
			page.Next, page.Exhausted = uint64(last), true
		}
	}
	return page, nil
}
