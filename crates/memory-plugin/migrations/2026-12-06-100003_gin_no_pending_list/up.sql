-- New full-text entries go straight into the GIN index; no pending list at all. With even a
-- 256 kB list, the insert (or autovacuum) that merged it held the index's metapage while the
-- list grew behind it: under 16 writers on 2 cores single commits took 1.1 to 2.5 s (the
-- Postgres log's durations), and searches read whatever was pending. Without it the slowest
-- commits in the same runs were under 0.7 s, at the same commit rate (4.8-5.1k/s against
-- 4.5-4.8k/s). Postgres's documentation gives the trade: turn fastupdate off when steady
-- response time matters more than peak update speed.
ALTER INDEX memory_plugin.memories_tsv_idx SET (fastupdate = off);
-- What is pending now goes into the index at once rather than at the next vacuum.
SELECT gin_clean_pending_list('memory_plugin.memories_tsv_idx'::regclass);
