"""Policy: turn a model prediction into an action (auto-route, review, forced review)."""
