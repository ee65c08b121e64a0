-- Failed console logins per name, kept in the store so every replica throttles one count.
-- A name with no failures and no attempt in flight has no row.
CREATE TABLE login_counts (
    name            TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    in_flight       INTEGER NOT NULL,
    in_flight_until TEXT,
    last_at         TEXT,
    locked_until    TEXT
);
CREATE INDEX login_counts_last_at ON login_counts (last_at);

-- Screenings of identical bytes in flight, so replicas run them one after the other and the
-- later ones find the first one's verdict cached. A claim whose replica died ends at `until`.
CREATE TABLE in_flight (
    key    TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  TEXT NOT NULL
);
