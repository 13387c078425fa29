-- Four eyes compares people, not token names: a token may name the person
-- it belongs to (identities: emails and logins, comma-separated, lower
-- case), and an approval keeps the identities of the token that gave it.
ALTER TABLE tokens ADD COLUMN identities TEXT NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN approver_identities TEXT NOT NULL DEFAULT '';
