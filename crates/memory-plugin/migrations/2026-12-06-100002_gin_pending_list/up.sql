-- New full-text entries wait in the GIN index's pending list, and the insert that finds the
-- list full merges all of it into the index before it returns. With the default 4 MB that
-- one insert took 0.7 to 0.9 s (pgbench, 16 writers on 100k memories; a commit through the
-- plugin then passed 1 s under load), with 256 kB at most 0.13 s, for about a tenth of the
-- insert rate. Searches also read the whole pending list, so a short one helps them too.
ALTER INDEX memory_plugin.memories_tsv_idx SET (gin_pending_list_limit = 256);
