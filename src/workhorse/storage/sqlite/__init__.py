"""SQLite adapter: WAL, synchronous=FULL, one writer at a time."""
