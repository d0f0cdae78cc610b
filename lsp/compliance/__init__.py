"""Compliance: KYC states and tier limits, transaction monitoring, the audit trail, reports (issue 9)."""
