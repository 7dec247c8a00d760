-- A fire's send is marked on its row before the prompt leaves (`firing_sent_at`), so a replica
-- that takes over a dead replica's lease can tell a slot that never left (fired again, same
-- messageId) from one the agent already has (recorded as such and not sent again: the agent
-- never gets a scheduled prompt twice). The lease itself is now renewed while the fire runs
-- (SCHEDULER_FIRE_LEASE_SECONDS), so it can be short without a slow agent losing its hold.
ALTER TABLE workspace_schedules ADD COLUMN firing_sent_at TIMESTAMPTZ;
