DROP TABLE memory_backfill_progress;
