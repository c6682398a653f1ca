"""The usage ledger: SQLModel tables, Alembic migrations and the queries built on them."""
