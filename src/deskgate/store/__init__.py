"""Storage: SQLAlchemy tables and the queries on them. Imports errors and ids, never web or services."""
