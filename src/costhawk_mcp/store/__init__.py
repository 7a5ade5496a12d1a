"""The usage store: schema and all SQL. `Store` is the entry point; `Database` handles opening safely."""
