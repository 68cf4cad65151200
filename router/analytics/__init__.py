"""Routing analytics: metrics from the audit log, reports, drift review and labels."""
