"""The core every other part builds on: configuration, signing, the Redis buffer's protocol,
the database and its migrations, logging and metrics. It imports no service, command line or
developer tool (the import-linter contracts in pyproject.toml)."""
