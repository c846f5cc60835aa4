"""The catalog: `Video` and `Scene` rows, their one schema and its migrations."""
