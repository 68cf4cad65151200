"""Small hand-written training sets for the classification tests.

Each group has its own words (printers for Hardware, passwords for Access, ...), so a
correct model must route new text by those words. The vague titles are shared by
every group, so cross-validation gets some of them wrong and the calibrator is fitted
on a real mix of correct and incorrect predictions.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from router.classification.features import ModelInput
from router.classification.model import RoutingModel
from router.classification.training import TrainingParams, train_routing_model

# Group names from the shipped taxonomy, so the same data can be routed.
GROUP_WORDS: dict[str, tuple[str, ...]] = {
    "Hardware": (
        "laptop",
        "monitor",
        "keyboard",
        "printer",
        "docking station",
        "charger",
    ),
    "Access": (
        "password",
        "permission",
        "login",
        "account locked",
        "role",
        "mfa token",
    ),
    "Storage": ("mailbox quota", "shared drive", "disk space", "onedrive", "archive"),
    "Purchase": ("purchase order", "quote", "invoice", "licence renewal", "supplier"),
}
GROUP_ISSUE_TYPES = {
    "Hardware": "Incident",
    "Access": "Incident",
    "Storage": "Request",
    "Purchase": "Request",
}
PHRASES = (
    "{word} is broken",
    "need help with {word}",
    "{word} stopped working today",
    "problem with my {word}",
    "urgent {word} request",
)
VAGUE_TITLES = (
    "please help asap",
    "request from finance team",
    "follow up on yesterday",
    "new starter next week",
)
# Single-threaded training: a process pool costs seconds on data this small.
FAST_PARAMS = TrainingParams(jobs=1)


@dataclass(frozen=True)
class TinySet:
    """Model inputs and their group labels, in the same order."""

    inputs: list[ModelInput]
    labels: list[str]


def build_tiny_set(*, per_group: int = 24, vague: bool = True) -> TinySet:
    """Return `per_group` distinctive tickets per group, and the vague ones if asked."""
    inputs: list[ModelInput] = []
    labels: list[str] = []
    for group, words in GROUP_WORDS.items():
        pairs = itertools.islice(itertools.product(words, PHRASES), per_group)
        for word, phrase in pairs:
            inputs.append(
                ModelInput(
                    title=phrase.format(word=word),
                    description=f"ticket about the {word}",
                    issue_type=GROUP_ISSUE_TYPES[group],
                )
            )
            labels.append(group)
        if vague:
            for title in VAGUE_TITLES:
                inputs.append(ModelInput(title=title))
                labels.append(group)
    return TinySet(inputs=inputs, labels=labels)


def train_tiny_model(tiny: TinySet, *, dataset: str = "tiny") -> RoutingModel:
    """Train a routing model on the set with single-threaded parameters."""
    return train_routing_model(
        tiny.inputs, tiny.labels, dataset=dataset, params=FAST_PARAMS
    )
