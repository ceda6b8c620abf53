"""Use cases and business rules. Services take a database session and never commit:
the caller (one request, one CLI command) owns the transaction."""
