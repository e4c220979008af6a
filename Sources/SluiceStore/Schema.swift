import GRDB

/// The SQLite schema, as numbered migrations. Never edit a migration that has shipped: add the next one.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: flows, messages, errors, alerts") { db in
            try db.execute(
                sql: """
                    CREATE TABLE flows (
                        id INTEGER PRIMARY KEY,
                        kind TEXT NOT NULL,
                        listener TEXT NOT NULL,
                        client TEXT NOT NULL,
                        server TEXT NOT NULL,
                        started_at REAL NOT NULL,          -- Unix seconds, UTC
                        ended_at REAL,
                        bytes_up INTEGER NOT NULL DEFAULT 0,
                        bytes_down INTEGER NOT NULL DEFAULT 0,
                        state TEXT NOT NULL,               -- open, closed, error, interrupted
                        error TEXT,
                        payload_truncated INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE TABLE messages (
                        id INTEGER PRIMARY KEY,
                        flow_id INTEGER NOT NULL REFERENCES flows(id),
                        seq INTEGER NOT NULL,
                        direction TEXT NOT NULL,           -- up (client to server), down
                        at REAL NOT NULL,
                        size INTEGER NOT NULL,             -- bytes that travelled
                        payload BLOB NOT NULL,             -- bytes kept; shorter than size when truncated
                        edited_from_seq INTEGER,           -- an operator's edit: seq of the original in this flow
                        disposition TEXT,                  -- held messages: forwarded, edited, dropped, killed
                        UNIQUE (flow_id, seq)
                    );
                    CREATE TABLE errors (
                        id INTEGER PRIMARY KEY,
                        flow_id INTEGER REFERENCES flows(id),
                        at REAL NOT NULL,
                        phase TEXT NOT NULL,
                        message TEXT NOT NULL
                    );
                    CREATE INDEX errors_by_flow ON errors(flow_id);
                    CREATE TABLE alerts (
                        id INTEGER PRIMARY KEY,
                        flow_id INTEGER REFERENCES flows(id),
                        at REAL NOT NULL,
                        level TEXT NOT NULL,
                        rule TEXT NOT NULL,
                        message TEXT NOT NULL
                    );
                    CREATE INDEX alerts_by_flow ON alerts(flow_id);
                    """
            )
        }
        migrator.registerMigration("v2: http exchanges, message kinds") { db in
            try db.execute(
                sql: """
                    ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'chunk'; -- chunk, body, text, binary, ping, pong, close
                    CREATE TABLE http (
                        flow_id INTEGER PRIMARY KEY REFERENCES flows(id),
                        requested_at REAL NOT NULL,
                        method TEXT NOT NULL,
                        url TEXT NOT NULL,                 -- absolute, as the request reached the server
                        version TEXT NOT NULL,
                        request_headers TEXT NOT NULL,     -- JSON [[name, value], ...] in wire order
                        replay_of INTEGER,                 -- the flow this one replayed
                        responded_at REAL,
                        status INTEGER,
                        reason TEXT,
                        response_version TEXT,
                        response_headers TEXT,
                        synthetic INTEGER NOT NULL DEFAULT 0, -- 1 when Sluice answered itself (502, 407, canned)
                        connect_ms REAL,
                        tls_ms REAL,
                        first_byte_ms REAL
                    );
                    """
            )
        }
        migrator.registerMigration("v3: bodies stored once by content") { db in
            try db.execute(
                sql: """
                    CREATE TABLE bodies (
                        id INTEGER PRIMARY KEY,
                        sha256 BLOB NOT NULL UNIQUE,       -- of data
                        data BLOB NOT NULL
                    );
                    -- Set on a body message whose bytes are in bodies (its payload is then empty).
                    ALTER TABLE messages ADD COLUMN body_id INTEGER REFERENCES bodies(id);
                    """
            )
        }
        migrator.registerMigration("v4: HTTP head bytes in the flow totals") { db in
            try db.execute(
                sql: """
                    -- Of bytes_up / bytes_down, the HTTP heads' bytes: the totals count what travelled, and a body's size
                    -- is the total less these.
                    ALTER TABLE flows ADD COLUMN head_bytes_up INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE flows ADD COLUMN head_bytes_down INTEGER NOT NULL DEFAULT 0;
                    """
            )
        }
        migrator.registerMigration("v5: marks kept with the flows") { db in
            try db.execute(
                sql: """
                    ALTER TABLE flows ADD COLUMN marked INTEGER NOT NULL DEFAULT 0; -- 1: the operator marked it (m in the TUI)
                    """
            )
        }
        migrator.registerMigration("v6: commands, alerts linked to them") { db in
            try db.execute(
                sql: """
                    CREATE TABLE commands (
                        id INTEGER PRIMARY KEY,
                        flow_id INTEGER NOT NULL REFERENCES flows(id),
                        idx INTEGER NOT NULL,                -- position among the flow's commands, from 0
                        at REAL NOT NULL,
                        kind TEXT NOT NULL,                  -- shell, exec, sql
                        text TEXT NOT NULL,
                        user TEXT NOT NULL,
                        target TEXT NOT NULL,
                        risk TEXT NOT NULL,                  -- low, medium, high, critical
                        action TEXT NOT NULL,                -- what the policy asked: allow, alert, hold, block
                        rule TEXT,
                        decision TEXT NOT NULL,              -- pending, allowed, blocked
                        decided_by TEXT,                     -- operator, policy, timeout, closed
                        decided_at REAL,
                        exit_status INTEGER,
                        exit_signal TEXT,
                        result TEXT,
                        error TEXT,
                        finished_at REAL,
                        UNIQUE (flow_id, idx)
                    );
                    CREATE INDEX commands_by_time ON commands(at);
                    ALTER TABLE alerts ADD COLUMN command_idx INTEGER;
                    """
            )
        }
        migrator.registerMigration("v7: a command's database and bind parameters") { db in
            try db.execute(
                sql: """
                    ALTER TABLE commands ADD COLUMN database TEXT;
                    ALTER TABLE commands ADD COLUMN parameters TEXT;   -- {"p": ["value", ...]}
                    """
            )
        }
        migrator.registerMigration("v8: the flow a replayed connection repeats") { db in
            // Not `replay_of`: flows are read joined with `http`, whose `replay_of` would be shadowed.
            try db.execute(sql: "ALTER TABLE flows ADD COLUMN replay_of_flow INTEGER")
        }
        migrator.registerMigration("v9: sessions, and the flows their proxies carried") { db in
            try db.execute(
                sql: """
                    CREATE TABLE sessions (
                        id INTEGER PRIMARY KEY,
                        user TEXT NOT NULL,                 -- who, as the bastion's front end named them
                        resource TEXT NOT NULL,             -- what they reach
                        started_at REAL NOT NULL,
                        ended_at REAL,
                        state TEXT NOT NULL                 -- open, ended, interrupted (its recorder stopped first)
                    );
                    ALTER TABLE flows ADD COLUMN session_id INTEGER REFERENCES sessions(id);
                    CREATE INDEX flows_by_session ON flows(session_id) WHERE session_id IS NOT NULL;
                    """
            )
        }
        migrator.registerMigration("v10: alerts acknowledged") { db in
            try db.execute(
                sql: """
                    ALTER TABLE alerts ADD COLUMN acknowledged_at REAL;
                    ALTER TABLE alerts ADD COLUMN acknowledged_by TEXT;
                    """
            )
        }
        migrator.registerMigration("v11: no index of commands by time") { db in
            // Every read of commands goes by id (recorded order) or by flow; keeping `at` indexed cost each recorded
            // statement a third B-tree insert and was never read.
            try db.execute(sql: "DROP INDEX IF EXISTS commands_by_time")
        }
        return migrator
    }
}
