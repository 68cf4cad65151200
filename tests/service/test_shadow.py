"""The worker stores a shadow model's decisions next to the live ones."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from router.classification.model import RoutingModel
from router.store import registry
from router.store.models import decisions, outbox_actions, shadow_decisions

from .support import auto_route_mappings, incident
from .test_worker import make_worker, store_records


def _store_shadow(store: sessionmaker[Session], model: RoutingModel) -> None:
    with store.begin() as session:
        registry.save_model(
            session,
            version="shadow-1",
            kind="routing",
            dataset=model.card.dataset,
            label_set=model.card.label_set,
            metrics={},
            params={},
            data_hash="shadow-data",
            artefact=model.to_bytes(),
            activate=None,
        )


def test_worker_records_shadow_decision(
    store: sessionmaker[Session], small_model: RoutingModel
) -> None:
    _store_shadow(store, small_model)
    worker = make_worker(store, small_model, auto_route_mappings())
    store_records(store, incident(1), incident(2))

    outcome = worker.process_batch()
    with store() as session:
        live = session.execute(select(decisions).order_by(decisions.c.id)).all()
        shadow = session.execute(
            select(shadow_decisions).order_by(shadow_decisions.c.decision_id)
        ).all()
        actions = session.execute(select(outbox_actions)).all()

    assert outcome.decided == 2
    assert [row.decision_id for row in shadow] == [row.id for row in live]
    assert [row.resolver_group for row in shadow] == [
        row.resolver_group for row in live
    ]
    assert len(actions) == sum(row.action == "auto_route" for row in live)


def test_worker_without_shadow_records_none(
    store: sessionmaker[Session], small_model: RoutingModel
) -> None:
    worker = make_worker(store, small_model, auto_route_mappings())
    store_records(store, incident(1))

    worker.process_batch()
    with store() as session:
        shadow = session.execute(select(shadow_decisions)).all()

    assert shadow == []
