"""Escalation: policies, timers, SLA clocks and notifiers."""
