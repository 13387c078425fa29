-- A pipeline token may be limited to the builds of some source
-- repositories (patterns such as github.com/org/*, in the form
-- auth.RepositoryKey gives): it may write evidence only about them.
ALTER TABLE tokens ADD COLUMN repositories text[] NOT NULL DEFAULT '{}';
