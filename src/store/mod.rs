//! SQLite state on its own thread (the only place with SQL).
