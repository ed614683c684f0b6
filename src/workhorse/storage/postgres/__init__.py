"""PostgreSQL adapter: psycopg 3 pool, SKIP LOCKED claims, LISTEN/NOTIFY."""
