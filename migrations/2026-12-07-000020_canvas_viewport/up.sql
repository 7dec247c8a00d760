-- The original canvas's saved viewport (B §5.1): one global row, shared by every operator, so
-- the original canvas can be pointed at this server. `zoom` must be positive (the original
-- stored 0 for a missing field, which its canvas cannot show).
CREATE TABLE canvas_viewport (
    id       UUID PRIMARY KEY DEFAULT '00000000-0000-0000-0000-000000000001'
             CHECK (id = '00000000-0000-0000-0000-000000000001'),
    x        DOUBLE PRECISION NOT NULL DEFAULT 0,
    y        DOUBLE PRECISION NOT NULL DEFAULT 0,
    zoom     DOUBLE PRECISION NOT NULL DEFAULT 1 CHECK (zoom > 0),
    saved_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
