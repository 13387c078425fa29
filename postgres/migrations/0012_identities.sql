-- Four eyes compares people, not token names: a token may name the person
-- it belongs to (identities: emails and logins, lower case), and an
-- approval keeps the identities of the token that gave it.
ALTER TABLE tokens ADD COLUMN identities text[] NOT NULL DEFAULT '{}';
ALTER TABLE approvals ADD COLUMN approver_identities text[] NOT NULL DEFAULT '{}';
