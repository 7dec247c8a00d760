ALTER INDEX memory_plugin.memories_tsv_idx RESET (gin_pending_list_limit);
