"""Run the configured enrichers for a batch of tickets, within their time limits.

All calls of a batch start at once on each enricher's thread pool, and the
pipeline waits for each enricher at most its `timeout_seconds`. A call that fails,
times out or meets an open circuit breaker leaves its fields unknown, so a slow or
dead source delays a batch by at most the largest timeout and never drops a ticket.
"""
# NOTE: A pipeline's thread pools live as long as the process. The service builds
# one pipeline per loaded model, so each model change leaves idle threads behind.

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from router.enrichment.base import Enricher, EnrichmentError, merge_context
from router.enrichment.resilience import CircuitBreaker, TTLCache
from router.enrichment.schemas import EnricherSpec
from router.policy.facts import UNKNOWN_KEY
from router.schemas import EnrichmentCall, Ticket

logger = logging.getLogger(__name__)

# Threads per enricher, so that one slow source cannot take every thread.
DEFAULT_CONCURRENCY = 4
MAX_ERROR_CHARS = 300


@dataclass
class _Lookup:
    """The outcome of one cache key's call."""

    outcome: str
    context: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0
    error: str | None = None


class ConfiguredEnricher:
    """An enricher with its limits: timeout, retries, cache and circuit breaker."""

    def __init__(
        self,
        enricher: Enricher,
        spec: EnricherSpec,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.enricher = enricher
        self.spec = spec
        self.cache = TTLCache(spec.cache_ttl_seconds, clock=clock)
        self.breaker = CircuitBreaker(
            failures=spec.breaker.failures,
            reset_seconds=spec.breaker.reset_seconds,
            clock=clock,
        )
        self._clock = clock
        self._sleep = sleep
        concurrency = int(spec.options.get("concurrency", DEFAULT_CONCURRENCY))
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, concurrency), thread_name_prefix=f"enrich-{spec.name}"
        )

    @property
    def name(self) -> str:
        """Return the configured name of the enricher."""
        return self.spec.name

    def submit(self, ticket: Ticket, deadline: float) -> Future[_Lookup]:
        """Start one call on the enricher's pool."""
        return self._pool.submit(self._call, ticket, deadline)

    def shutdown(self) -> None:
        """Stop the pool without waiting for calls that hang."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _call(self, ticket: Ticket, deadline: float) -> _Lookup:
        started = self._clock()
        attempt = 0
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return _Lookup("timeout", duration_ms=_ms(started, self._clock()))
            try:
                context = self.enricher.fetch(ticket, timeout=remaining)
            except EnrichmentError as error:
                wait = self.spec.backoff_seconds * 2**attempt
                retry = error.retryable and attempt < self.spec.retries
                if not retry or self._clock() + wait >= deadline:
                    outcome = "timeout" if "timed out" in str(error) else "failed"
                    return _Lookup(
                        outcome,
                        duration_ms=_ms(started, self._clock()),
                        error=str(error)[:MAX_ERROR_CHARS],
                    )
                logger.warning(
                    "Enricher %s failed for %s, retrying in %.2f s: %s",
                    self.name,
                    ticket.key,
                    wait,
                    error,
                )
                attempt += 1
                self._sleep(wait)
                continue
            return _Lookup("ok", context, duration_ms=_ms(started, self._clock()))


class EnrichmentPipeline:
    """The enrichers the router calls before it classifies a ticket."""

    def __init__(
        self,
        enrichers: Sequence[ConfiguredEnricher] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enrichers = list(enrichers)
        self._clock = clock

    def __bool__(self) -> bool:
        return bool(self.enrichers)

    def enrich(
        self, tickets: Sequence[Ticket]
    ) -> list[tuple[Ticket, list[EnrichmentCall]]]:
        """Return each ticket with its enriched context, and the calls made for it.

        A ticket whose context already has every field of an enricher (such as a
        replayed or example ticket) is not looked up by that enricher.
        """
        calls: list[list[EnrichmentCall]] = [[] for _ in tickets]
        contexts = [dict(ticket.context) for ticket in tickets]
        started = self._clock()
        pending = [
            (configured, self._start(configured, tickets, started))
            for configured in self.enrichers
        ]
        for configured, (keys, futures) in pending:
            deadline = started + configured.spec.timeout_seconds
            lookups = self._collect(configured, futures, deadline)
            for index, key in enumerate(keys):
                if key is None:
                    continue
                lookup = lookups[key]
                contexts[index] = _merged(contexts[index], configured, lookup)
                calls[index].append(_record(configured, lookup))
        enriched = [
            ticket.model_copy(update={"context": context})
            for ticket, context in zip(tickets, contexts, strict=True)
        ]
        return list(zip(enriched, calls, strict=True))

    def shutdown(self) -> None:
        """Stop every enricher's pool."""
        for configured in self.enrichers:
            configured.shutdown()

    def _start(
        self, configured: ConfiguredEnricher, tickets: Sequence[Ticket], started: float
    ) -> tuple[list[str | None], dict[str, Future[_Lookup] | _Lookup]]:
        keys: list[str | None] = []
        futures: dict[str, Future[_Lookup] | _Lookup] = {}
        deadline = started + configured.spec.timeout_seconds
        for ticket in tickets:
            key = _key(configured, ticket)
            keys.append(key)
            if key is None or key in futures:
                continue
            cached = configured.cache.get(key)
            if cached is not None:
                futures[key] = _Lookup("cached", cached)
            elif not configured.breaker.allow():
                futures[key] = _Lookup("circuit_open")
            else:
                futures[key] = configured.submit(ticket, deadline)
        return keys, futures

    def _collect(
        self,
        configured: ConfiguredEnricher,
        futures: dict[str, Future[_Lookup] | _Lookup],
        deadline: float,
    ) -> dict[str, _Lookup]:
        lookups: dict[str, _Lookup] = {}
        for key, future in futures.items():
            if isinstance(future, _Lookup):
                lookups[key] = future
                continue
            try:
                lookup = future.result(timeout=max(0.0, deadline - self._clock()))
            except FutureTimeout:
                future.cancel()
                spent = configured.spec.timeout_seconds * 1000
                lookup = _Lookup("timeout", duration_ms=spent)
            except Exception as error:
                logger.exception("Enricher %s raised for key %s", configured.name, key)
                lookup = _Lookup("failed", error=f"{type(error).__name__}: {error}")
            self._account(configured, key, lookup)
            lookups[key] = lookup
        return lookups

    def _account(
        self, configured: ConfiguredEnricher, key: str, lookup: _Lookup
    ) -> None:
        if lookup.outcome == "ok":
            configured.breaker.record_success()
            configured.cache.put(key, lookup.context)
            return
        configured.breaker.record_failure()
        logger.warning(
            "Enricher %s: %s (%s); its fields are unknown",
            configured.name,
            lookup.outcome,
            lookup.error or "no response in time",
        )


def _key(configured: ConfiguredEnricher, ticket: Ticket) -> str | None:
    if all(_has_path(ticket.context, path) for path in configured.enricher.fields):
        return None
    return configured.enricher.cache_key(ticket)


def _has_path(context: dict[str, Any], path: str) -> bool:
    value: Any = context
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


def _merged(
    context: dict[str, Any], configured: ConfiguredEnricher, lookup: _Lookup
) -> dict[str, Any]:
    # A field another source filled stays known when this source fails, and a
    # field this source fills is no longer unknown after another one failed.
    unknown = list(context.get(UNKNOWN_KEY) or [])
    if lookup.outcome in ("ok", "cached"):
        merged = merge_context(context, lookup.context)
        unknown = [path for path in unknown if not _has_path(merged, path)]
    else:
        merged = dict(context)
        unknown += [
            path
            for path in configured.enricher.fields
            if path not in unknown and not _has_path(context, path)
        ]
    if unknown:
        merged[UNKNOWN_KEY] = unknown
    else:
        merged.pop(UNKNOWN_KEY, None)
    return merged


def _record(configured: ConfiguredEnricher, lookup: _Lookup) -> EnrichmentCall:
    fields = (
        list(configured.enricher.fields) if lookup.outcome in ("ok", "cached") else []
    )
    return EnrichmentCall(
        enricher=configured.name,
        duration_ms=round(lookup.duration_ms, 1),
        outcome=lookup.outcome,
        fields=fields,
        error=lookup.error,
    )


def _ms(started: float, ended: float) -> float:
    return (ended - started) * 1000
