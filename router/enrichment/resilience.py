"""A time-to-live cache and a circuit breaker for enricher calls."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

# Entries a cache keeps before it drops the oldest.
MAX_CACHE_ENTRIES = 10_000


class TTLCache:
    """Values kept for `ttl_seconds`, safe to use from several threads."""

    def __init__(
        self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        """Return the value stored under `key`, or None when absent or expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires <= self._clock():
                del self._entries[key]
                return None
            return value

    def put(self, key: str, value: Any) -> None:
        """Store a value; with a time to live of 0 nothing is kept."""
        if self._ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= MAX_CACHE_ENTRIES:
                # Dicts keep insertion order, so the first key is the oldest.
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (self._clock() + self._ttl, value)


class CircuitBreaker:
    """Stop calling a failing source for a while, then let one trial call through.

    The breaker opens after `failures` consecutive failures. After
    `reset_seconds` it lets one call through (half open): a success closes it,
    a failure opens it again for another `reset_seconds`.
    """

    def __init__(
        self,
        *,
        failures: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failures
        self._reset = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        """Return whether calls are being refused right now."""
        with self._lock:
            return self._opened_at is not None

    def allow(self) -> bool:
        """Return whether a call may go ahead now."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._trial_running:
                return False
            if self._clock() - self._opened_at >= self._reset:
                self._trial_running = True
                return True
            return False

    def record_success(self) -> None:
        """Close the breaker and reset the count of failures."""
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self) -> None:
        """Count a failure, opening the breaker at the threshold."""
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._opened_at is not None or self._failures >= self._threshold:
                self._opened_at = self._clock()
