-- The schema itself stays: it holds this set's bookkeeping table.
DROP FUNCTION memory_plugin.cosine_similarity(REAL[], REAL[]);
DROP TABLE memory_plugin.memories;
DROP TABLE memory_plugin.namespaces;
