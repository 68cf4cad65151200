"""Shadow decisions and the new-queue guard, applied wherever decisions are stored.

A shadow model decides each ticket next to the active one; its decision is stored
in `shadow_decisions` and nothing acts on it. The guard forces review for tickets
that look like a group people chose but the deciding model was never trained on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session

from router.analytics.labels import (
    COMMON_TERM_SAMPLE,
    NewQueueGuard,
    collect_labels,
    label_rows,
)
from router.classification.registry import load_model
from router.mapping import MappingSet, load_mappings
from router.routing import TicketRouter
from router.schemas import Decision, Ticket
from router.settings import CoreSettings
from router.store.models import shadow_decisions
from router.store.registry import find_shadow_model, list_models

logger = logging.getLogger(__name__)

# How long the stored shadow model and labels are trusted before they are read again.
REFRESH_SECONDS = 300.0


def record_shadow_decisions(
    session: Session,
    *,
    router: TicketRouter,
    pairs: Sequence[tuple[Ticket, Decision]],
    decision_ids: Sequence[int],
) -> int:
    """Decide the tickets with the shadow router and store what it would have done.

    Args:
        router: a router built on the shadow model.
        pairs: the tickets with the live decisions that were stored for them.
        decision_ids: the ids of those live decisions, in the same order.

    Returns:
        The number of shadow decisions stored.
    """
    if not pairs:
        return 0
    decided_at = pairs[0][1].decided_at
    shadow = router.route([ticket for ticket, _ in pairs], now=decided_at)
    rows = [
        {
            "decision_id": decision_id,
            "ticket_key": decision.ticket_key,
            "model_version": decision.model_version,
            "resolver_group": decision.resolver_group,
            "confidence": decision.confidence,
            "action": decision.action.value,
            "decided_at": live.decided_at,
        }
        for decision, (_, live), decision_id in zip(
            shadow, pairs, decision_ids, strict=True
        )
    ]
    session.execute(insert(shadow_decisions), rows)
    return len(rows)


def build_guard(session: Session, *, model_version: str) -> NewQueueGuard:
    """Build the new-queue guard for the groups `model_version` was not trained on."""
    known: set[str] = set()
    for info in list_models(session):
        if info.version == model_version:
            known = set(info.label_set)
    if not known:
        return NewQueueGuard({})
    # NOTE: This reads every label event in the audit log, a cost that grows with the
    # store; the hooks repeat it at most every REFRESH_SECONDS.
    rows = label_rows(session)
    if all(group in known for group, _, _ in rows.values()):
        return NewQueueGuard({})
    # Every ticket of a new group, and a sample of the others for the common words.
    sample = set(
        sorted(key for key, (group, _, _) in rows.items() if group in known)[
            :COMMON_TERM_SAMPLE
        ]
    )
    labels = collect_labels(
        session, keep=lambda key, group: group not in known or key in sample
    )
    return NewQueueGuard.from_labels(labels, known=known)


class LearningHooks:
    """The shadow router and the guards of one process, refreshed from the store.

    The service calls `guard` before it stores decisions and `record_shadow` after.
    Both read the store at most every `REFRESH_SECONDS`, so a promotion or a new
    label reaches a running replica within that time.
    """

    def __init__(
        self,
        *,
        mappings: MappingSet | None = None,
        cache_dir: Path | None = None,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self._mappings = mappings
        self._cache_dir = cache_dir
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        # Keyed by database URL, so processes (and tests) that use several databases
        # never mix their models.
        self._shadows: dict[tuple[str, str], tuple[float, TicketRouter | None]] = {}
        self._guards: dict[tuple[str, str], tuple[float, NewQueueGuard]] = {}

    def guard(
        self, session: Session, pairs: Sequence[tuple[Ticket, Decision]]
    ) -> list[tuple[Ticket, Decision]]:
        """Return the pairs with new-queue tickets forced to review."""
        if not pairs:
            return []
        key = (_database(session), pairs[0][1].model_version)
        now = time.monotonic()
        with self._lock:
            cached = self._guards.get(key)
            if cached is None or now - cached[0] > self._refresh_seconds:
                cached = (now, build_guard(session, model_version=key[1]))
                self._guards[key] = cached
        return cached[1].apply(pairs)

    def record_shadow(
        self,
        session: Session,
        pairs: Sequence[tuple[Ticket, Decision]],
        decision_ids: Sequence[int],
    ) -> int:
        """Store the shadow model's decisions for the pairs, if one is stored.

        The shadow model must be of the same dataset as the model that decided.
        """
        if not pairs:
            return 0
        router = self._shadow_router(session, live_version=pairs[0][1].model_version)
        if router is None:
            return 0
        return record_shadow_decisions(
            session, router=router, pairs=pairs, decision_ids=decision_ids
        )

    def _shadow_router(
        self, session: Session, *, live_version: str
    ) -> TicketRouter | None:
        key = (_database(session), live_version)
        now = time.monotonic()
        with self._lock:
            checked, router = self._shadows.get(key, (float("-inf"), None))
            if now - checked < self._refresh_seconds:
                return router
            datasets = [
                info.dataset
                for info in list_models(session)
                if info.version == live_version
            ]
            info = find_shadow_model(session, dataset=datasets[0]) if datasets else None
            if info is None or info.version == live_version:
                router = None
            elif router is None or router.model.version != info.version:
                # NOTE: The first load of a shadow model reads its artefact inside the
                # caller's transaction, which on SQLite holds the write lock meanwhile.
                router = self._load(session, info.version)
            self._shadows[key] = (now, router)
            return router

    def _load(self, session: Session, version: str) -> TicketRouter:
        core = CoreSettings()
        mappings = self._mappings or load_mappings(core.mappings_dir)
        cache_dir = self._cache_dir or core.model_cache_dir
        model = load_model(session, cache_dir=cache_dir, version=version)
        logger.info("Shadow model %s decides next to the active model", version)
        return TicketRouter(model=model, mappings=mappings)


def _database(session: Session) -> str:
    return session.get_bind().engine.url.render_as_string(hide_password=True)


# The hooks of this process, used by the service's storing step.
service_hooks = LearningHooks()
