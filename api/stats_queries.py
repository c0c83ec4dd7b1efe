"""The statistics queries (api/sql/stats.sql), read once."""

from schemas.named_queries import load_queries

QUERIES = load_queries("api", "sql/stats.sql")
