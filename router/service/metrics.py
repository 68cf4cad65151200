"""Prometheus metrics of one service instance, on a registry the instance owns."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Seconds from receipt of an event to its decision; the upper buckets catch a
# backlog after an outage.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ServiceMetrics:
    """The `opsroute_*` metrics; each app builds its own, so tests can build several."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events_received = Counter(
            "opsroute_events_received",
            "Webhook events received, by system and outcome (stored, duplicate or "
            "the rejection).",
            ["system", "outcome"],
            registry=self.registry,
        )
        self.webhook_requests = Counter(
            "opsroute_webhook_requests",
            "Webhook responses sent, by system and HTTP status.",
            ["system", "status"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "opsroute_decisions",
            "Routing decisions made, by action.",
            ["action"],
            registry=self.registry,
        )
        self.events_failed = Counter(
            "opsroute_events_failed",
            "Inbox events marked failed because their record could not be routed.",
            ["system"],
            registry=self.registry,
        )
        self.writeback_deliveries = Counter(
            "opsroute_writeback_deliveries",
            "Outbox actions delivered, by system and kind.",
            ["system", "kind"],
            registry=self.registry,
        )
        self.writeback_failures = Counter(
            "opsroute_writeback_failures",
            "Failed outbox deliveries, by system and outcome (retry or dead).",
            ["system", "outcome"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "opsroute_queue_depth",
            "Rows waiting in a queue: pending inbox events, pending or dead outbox "
            "actions.",
            ["queue"],
            registry=self.registry,
        )
        self.decision_latency = Histogram(
            "opsroute_decision_latency_seconds",
            "Seconds from receipt of an event to its decision.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.writer_batch_events = Histogram(
            "opsroute_writer_batch_events",
            "Inbox events stored per group commit.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=self.registry,
        )
        self.scheduler_runs = Counter(
            "opsroute_scheduler_job_runs",
            "Periodic job runs started by this replica, by job.",
            ["job"],
            registry=self.registry,
        )
        self.scheduler_leader = Gauge(
            "opsroute_scheduler_leader",
            "1 while this replica holds the scheduler lease, else 0.",
            registry=self.registry,
        )
        self.model_ready = Gauge(
            "opsroute_model_ready",
            "1 once a routing model is loaded, else 0.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        """Return every metric in the Prometheus text format."""
        return generate_latest(self.registry)
