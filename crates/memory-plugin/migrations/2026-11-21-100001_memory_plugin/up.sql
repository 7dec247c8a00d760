-- The memory plugin's own tables, in schema memory_plugin (created by the migration runner,
-- which also keeps this set's bookkeeping there). Every name is qualified, so the plugin works
-- whatever search_path its database URL carries.
-- The CHECK lists are the vocabularies of molecule-domain (NamespaceKind, MemoryKind,
-- MemorySource); a test compares them.

CREATE TABLE memory_plugin.namespaces (
    name        TEXT PRIMARY KEY
                CHECK (char_length(name) <= 256 AND name ~ '^[a-z]+:[A-Za-z0-9_:.\-]+$'),
    kind        TEXT NOT NULL CHECK (kind IN ('workspace','team','org','custom')),
    expires_at  TIMESTAMPTZ,
    metadata    JSONB CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX namespaces_expires_idx ON memory_plugin.namespaces (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE memory_plugin.memories (
    id           UUID PRIMARY KEY,
    namespace    TEXT NOT NULL REFERENCES memory_plugin.namespaces (name) ON DELETE CASCADE,
    content      TEXT NOT NULL CHECK (btrim(content, E' \t\r\n') <> ''),
    kind         TEXT NOT NULL CHECK (kind IN ('fact','summary','checkpoint')),
    source       TEXT NOT NULL CHECK (source IN ('agent','runtime','user')),
    expires_at   TIMESTAMPTZ,
    propagation  JSONB CHECK (propagation IS NULL OR jsonb_typeof(propagation) = 'object'),
    pin          BOOLEAN NOT NULL DEFAULT false,
    -- No pgvector on Debian 12: plain arrays, ranked by exact cosine inside the
    -- namespace-filtered set (see cosine_similarity below and the README's limits).
    embedding    REAL[] CHECK (embedding IS NULL OR (array_ndims(embedding) = 1 AND cardinality(embedding) BETWEEN 1 AND 4096)),
    content_tsv  TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Listings and every search start from the namespace; pinned first, newest first.
CREATE INDEX memories_recent_idx ON memory_plugin.memories (namespace, pin DESC, created_at DESC);
CREATE INDEX memories_tsv_idx ON memory_plugin.memories USING GIN (content_tsv);
CREATE INDEX memories_expires_idx ON memory_plugin.memories (expires_at) WHERE expires_at IS NOT NULL;

-- Cosine similarity of two equally long vectors; NULL when lengths differ or a norm is 0.
CREATE FUNCTION memory_plugin.cosine_similarity(a REAL[], b REAL[]) RETURNS DOUBLE PRECISION
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN cardinality(a) <> cardinality(b) THEN NULL ELSE (
        SELECT sum(x::float8 * y) / NULLIF(sqrt(sum(x::float8 * x)) * sqrt(sum(y::float8 * y)), 0)
          FROM unnest(a, b) AS t(x, y)
    ) END
$$;
