SELECT m.id, m.namespace, m.content, m.kind, m.source, m.expires_at, m.propagation, m.pin,
       m.created_at, ts_rank(m.content_tsv, plainto_tsquery('english', $4))::float8 AS score
  FROM memory_plugin.memories m
  JOIN memory_plugin.namespaces n ON n.name = m.namespace
 WHERE m.namespace = ANY($1)
   AND (m.expires_at IS NULL OR m.expires_at > now())
   AND (n.expires_at IS NULL OR n.expires_at > now())
   AND ($2::text[] IS NULL OR m.kind = ANY($2))
   AND m.content_tsv @@ plainto_tsquery('english', $4)
 ORDER BY m.pin DESC, score DESC, m.created_at DESC, m.id
 LIMIT $3
