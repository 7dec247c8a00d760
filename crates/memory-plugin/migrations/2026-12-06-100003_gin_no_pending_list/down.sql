ALTER INDEX memory_plugin.memories_tsv_idx RESET (fastupdate);
