"""HTTP endpoints of the service: webhooks, health, readiness and metrics."""
