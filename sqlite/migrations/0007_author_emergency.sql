-- The author of the commit an artifact was built from (four eyes), and
-- emergency approvals (they let a change through a freeze).
ALTER TABLE artifacts ADD COLUMN author TEXT NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN emergency INTEGER NOT NULL DEFAULT 0;
