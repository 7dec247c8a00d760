-- Who caused each persisted event (the audit view filters by it): `admin`, `console:<who>`,
-- `workspace:<id>`, `loop:<name>`; NULL for events recorded before this column, or by the
-- platform's own detached work.
ALTER TABLE events ADD COLUMN actor TEXT;
CREATE INDEX events_actor_idx ON events (actor, id) WHERE actor IS NOT NULL;
