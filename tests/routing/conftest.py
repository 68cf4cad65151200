"""A small routing model and the shipped mappings, for the ticket router tests.

Four groups come from the shipped taxonomy. Facilities does not, so a ticket the
model sends there must go to forced review.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from router.classification.features import ModelInput
from router.classification.model import RoutingModel
from router.classification.training import TrainingParams, train_routing_model
from router.mapping import MappingSet, load_mappings
from router.routing import TicketRouter
from router.schemas import Ticket

GROUP_WORDS: dict[str, tuple[str, ...]] = {
    "Hardware": ("laptop", "monitor", "keyboard", "printer", "docking station"),
    "Access": ("password", "permission", "login", "account locked", "mfa token"),
    "Storage": ("mailbox quota", "shared drive", "disk space", "onedrive"),
    "Purchase": ("purchase order", "quote", "invoice", "supplier"),
    "Facilities": ("parking barrier", "office chair", "heating", "meeting room"),
}
PHRASES = (
    "{word} is broken",
    "need help with {word}",
    "{word} stopped working today",
    "problem with the {word}",
    "urgent {word} request",
)
VAGUE_TITLES = ("please help asap", "follow up on yesterday", "question for the team")


def routing_examples() -> tuple[list[ModelInput], list[str]]:
    """Return 20 distinctive and 3 vague tickets for each of the five groups."""
    inputs: list[ModelInput] = []
    labels: list[str] = []
    for group, words in GROUP_WORDS.items():
        for word, phrase in itertools.islice(itertools.product(words, PHRASES), 20):
            inputs.append(ModelInput(title=phrase.format(word=word)))
            labels.append(group)
        for title in VAGUE_TITLES:
            inputs.append(ModelInput(title=title))
            labels.append(group)
    return inputs, labels


def build_ticket(**overrides: Any) -> Ticket:
    """Return a ServiceNow ticket about a printer; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "source_system": "servicenow",
        "external_id": "INC0010001",
        "title": "printer on floor two is jammed",
        "description": "the printer shows a paper jam",
    }
    fields.update(overrides)
    return Ticket(**fields)


@pytest.fixture(scope="session")
def routing_model() -> RoutingModel:
    """Return a model trained on `routing_examples`, which tests must not change."""
    inputs, labels = routing_examples()
    return train_routing_model(
        inputs, labels, dataset="routing", params=TrainingParams(jobs=1)
    )


@pytest.fixture(scope="session")
def shipped_mappings() -> MappingSet:
    """Return the mappings shipped with opsroute."""
    return load_mappings()


@pytest.fixture
def ticket_router(
    routing_model: RoutingModel, shipped_mappings: MappingSet
) -> TicketRouter:
    """Return a router with the small model and the shipped mappings."""
    return TicketRouter(model=routing_model, mappings=shipped_mappings)


@pytest.fixture
def make_ticket() -> Callable[..., Ticket]:
    """Return the ticket builder."""
    return build_ticket
