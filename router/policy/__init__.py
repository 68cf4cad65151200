"""Policy: turn a prediction into an action (auto-route, review, forced review)."""
