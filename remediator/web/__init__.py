"""The dashboard: server-rendered pages over the same database and domain code as the API."""
