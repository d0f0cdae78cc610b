"""The operator dashboard: server-rendered pages behind an admin login (see docs/COMPLIANCE.md)."""
