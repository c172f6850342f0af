"""The event-sourced core: events, materializers, the SQLite store and read queries. No Ray, no HTTP."""
