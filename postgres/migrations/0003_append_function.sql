-- vouch_journal_append sequences one batch inside the database: it locks
-- the tree-state row, skips entries whose key is already stored, assigns
-- the next indices, extends the RFC 6962 compact range (SHA-256 of
-- 0x01 || left || right for interior nodes), inserts the entries and the
-- completed tree nodes, and updates the tree head. Doing it server-side
-- means the row lock is never held across a client round trip, so batches
-- from many replicas follow each other closely. journal.PlanBatch is the
-- same algorithm in Go (used for SQLite); the store conformance suite holds
-- both to the RFC 6962 reference.
--
-- Keys must be distinct within a batch (the client folds repeats). One row
-- is returned per input position: its index, and for an entry already
-- stored under its key, the stored leaf.
CREATE FUNCTION vouch_journal_append(
    p_kind text[], p_time timestamptz[], p_env text[], p_key text[], p_leaf bytea[], p_hash bytea[])
RETURNS TABLE (pos integer, entry_idx bigint, existing boolean, existing_leaf bytea)
LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(array_length(p_kind, 1), 0);
    v_size bigint;
    v_range bytea;
    v_root bytea;
    hs bytea[] := '{}';
    ex_key text[];
    ex_idx bigint[];
    ex_leaf bytea[];
    new_pos integer[] := '{}';
    new_idx bigint[] := '{}';
    node_level smallint[] := '{}';
    node_idx bigint[] := '{}';
    node_hash bytea[] := '{}';
    packed bytea := '';
    i integer;
    j integer;
    k integer;
    h bytea;
    m bigint;
    lvl smallint;
BEGIN
    SELECT t.size, t.range_hashes INTO v_size, v_range FROM journal_tree t WHERE t.id = 1 FOR UPDATE;
    FOR j IN 0 .. length(v_range) / 32 - 1 LOOP
        hs := hs || substring(v_range FROM j * 32 + 1 FOR 32);
    END LOOP;
    SELECT array_agg(e.key), array_agg(e.idx), array_agg(e.leaf) INTO ex_key, ex_idx, ex_leaf
        FROM journal_entries e WHERE e.key = ANY (p_key);

    FOR i IN 1 .. n LOOP
        k := NULL;
        IF p_key[i] IS NOT NULL AND ex_key IS NOT NULL THEN
            k := array_position(ex_key, p_key[i]);
        END IF;
        IF k IS NOT NULL THEN
            pos := i; entry_idx := ex_idx[k]; existing := true; existing_leaf := ex_leaf[k];
            RETURN NEXT;
            CONTINUE;
        END IF;
        new_pos := new_pos || i;
        new_idx := new_idx || v_size;
        h := p_hash[i];
        m := v_size;
        lvl := 0;
        WHILE m & 1 = 1 LOOP
            h := sha256('\x01'::bytea || hs[array_length(hs, 1)] || h);
            hs := hs[1 : array_length(hs, 1) - 1];
            lvl := lvl + 1;
            m := m >> 1;
            node_level := node_level || lvl;
            node_idx := node_idx || m;
            node_hash := node_hash || h;
        END LOOP;
        hs := hs || h;
        pos := i; entry_idx := v_size; existing := false; existing_leaf := NULL;
        RETURN NEXT;
        v_size := v_size + 1;
    END LOOP;

    IF coalesce(array_length(new_pos, 1), 0) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO journal_entries (idx, kind, time, environment, key, leaf, leaf_hash)
        SELECT x.idx, p_kind[x.p], p_time[x.p], p_env[x.p], p_key[x.p], p_leaf[x.p], p_hash[x.p]
        FROM unnest(new_pos, new_idx) AS x(p, idx);
    IF coalesce(array_length(node_level, 1), 0) > 0 THEN
        INSERT INTO journal_nodes (level, idx, hash) SELECT * FROM unnest(node_level, node_idx, node_hash);
    END IF;
    v_root := hs[array_length(hs, 1)];
    FOR j IN REVERSE array_length(hs, 1) - 1 .. 1 LOOP
        v_root := sha256('\x01'::bytea || hs[j] || v_root);
    END LOOP;
    FOR j IN 1 .. array_length(hs, 1) LOOP
        packed := packed || hs[j];
    END LOOP;
    UPDATE journal_tree SET size = v_size, root = v_root, range_hashes = packed WHERE id = 1;
END $$;
