"""Turn what people and systems decided about tickets into labelled examples.

Each stored ticket gets at most one label. The group of its last `ticket_resolved`
event wins, because the group that resolved a ticket owns it. Without one, the
latest human choice counts: a reviewer's group, an override, or a transfer made by
a person. Transfers made by opsroute itself are no evidence and are skipped.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sqlalchemy import select
from sqlalchemy.orm import Session

from router.datasets.catalog import Example
from router.schemas import Decision, DecisionAction, Ticket
from router.store.models import audit_log, tickets

# Label sources, strongest first.
RESOLVED = "ticket_resolved"
HUMAN_SOURCES = ("review_resolved", "override", "transfer")
_GROUP_FIELD = {
    "ticket_resolved": "group",
    "review_resolved": "resolved_group",
    "override": "group",
    "transfer": "to_group",
}
_WORD = re.compile(r"[a-z][a-z0-9_]{2,}")
# A queue term must appear in at least this share of the queue's tickets.
QUEUE_TERM_SHARE = 0.5
# A ticket needs this many of a new queue's terms to be held for review.
QUEUE_TERM_MATCHES = 2
# Words in more than this share of the known groups' tickets are no queue terms.
COMMON_TERM_SHARE = 0.1
# Known groups' tickets read to find those common words; a sample is enough.
COMMON_TERM_SAMPLE = 2000


@dataclass(frozen=True, slots=True)
class StoredLabel:
    """The label of one stored ticket, with the audit event it came from."""

    ticket_key: str
    label: str
    source: str
    at: datetime
    example: Example


def collect_labels(
    session: Session, *, keep: Callable[[str, str], bool] | None = None
) -> list[StoredLabel]:
    """Return one label per stored ticket that has any, ordered by ticket key.

    Args:
        keep: a filter called with each ticket key and label. Labels it rejects
            are dropped before the tickets' text is read.
    """
    chosen = label_rows(session)
    if keep is not None:
        chosen = {k: v for k, v in chosen.items() if keep(k, v[0])}
    if not chosen:
        return []
    payloads = _ticket_payloads(session, keys=chosen)
    labels = []
    for key in sorted(chosen):
        if key not in payloads:
            continue
        group, source, at = chosen[key]
        labels.append(
            StoredLabel(
                ticket_key=key,
                label=group,
                source=source,
                at=at,
                example=_example(payloads[key], label=group),
            )
        )
    return labels


def label_rows(session: Session) -> dict[str, tuple[str, str, datetime]]:
    """Return each labelled ticket's key with its label, source event and time."""
    query = (
        select(
            audit_log.c.ticket_key,
            audit_log.c.event,
            audit_log.c.at,
            audit_log.c.details,
        )
        .where(
            audit_log.c.event.in_(list(_GROUP_FIELD)),
            audit_log.c.ticket_key.is_not(None),
        )
        .order_by(audit_log.c.at, audit_log.c.id)
    )
    resolved: dict[str, tuple[str, datetime]] = {}
    human: dict[str, tuple[str, str, datetime]] = {}
    for row in session.execute(query):
        details = row.details or {}
        group = details.get(_GROUP_FIELD[row.event])
        if not group:
            continue
        if row.event == RESOLVED:
            resolved[row.ticket_key] = (str(group), row.at)
        elif row.event != "transfer" or details.get("by") == "person":
            human[row.ticket_key] = (str(group), row.event, row.at)

    chosen: dict[str, tuple[str, str, datetime]] = dict(human)
    for key, (group, at) in resolved.items():
        chosen[key] = (group, RESOLVED, at)
    return chosen


def _ticket_payloads(session: Session, *, keys: Collection[str]) -> dict[str, Ticket]:
    found: dict[str, Ticket] = {}
    requested = list(keys)
    # Chunks keep the IN list below SQLite's limit of bound parameters.
    for start in range(0, len(requested), 500):
        chunk = requested[start : start + 500]
        for row in session.execute(
            select(tickets.c.key, tickets.c.payload).where(tickets.c.key.in_(chunk))
        ):
            found[row.key] = Ticket.model_validate(row.payload)
    return found


def _example(ticket: Ticket, *, label: str) -> Example:
    return Example(
        external_id=ticket.key,
        title=ticket.title,
        label=label,
        description=ticket.description,
        issue_type=ticket.issue_type,
        priority=ticket.priority,
        created_at=ticket.created_at,
    )


def count_sources(labels: Iterable[StoredLabel]) -> dict[str, int]:
    """Count labels per source event."""
    return dict(sorted(Counter(label.source for label in labels).items()))


def unknown_labels(
    labels: Iterable[StoredLabel], *, known: Collection[str]
) -> dict[str, int]:
    """Count the tickets of each label that is not in `known`, such as a new queue."""
    counts = Counter(label.label for label in labels if label.label not in known)
    return dict(sorted(counts.items()))


class NewQueueGuard:
    """Send tickets that look like a queue the model has never seen to review.

    A queue's terms are the words found in at least `QUEUE_TERM_SHARE` of its
    labelled tickets, leaving out English stop words and words found in more than
    `COMMON_TERM_SHARE` of the known groups' labelled tickets. A ticket that
    contains `QUEUE_TERM_MATCHES` of them is forced to review, whatever the model's
    confidence, because the model cannot predict a group it was not trained on.
    """

    def __init__(self, terms_by_queue: dict[str, frozenset[str]]) -> None:
        self.terms_by_queue = {
            queue: terms
            for queue, terms in terms_by_queue.items()
            if len(terms) >= QUEUE_TERM_MATCHES
        }

    @classmethod
    def from_labels(
        cls, labels: Iterable[StoredLabel], *, known: Collection[str]
    ) -> NewQueueGuard:
        """Build the guard from the labelled tickets of groups not in `known`."""
        words_by_queue: dict[str, list[set[str]]] = defaultdict(list)
        known_frequency: Counter[str] = Counter()
        known_tickets = 0
        for label in labels:
            words = _words(f"{label.example.title} {label.example.description}")
            if label.label in known:
                known_frequency.update(words)
                known_tickets += 1
            else:
                words_by_queue[label.label].append(words)
        common = {
            word
            for word, count in known_frequency.items()
            if count > COMMON_TERM_SHARE * known_tickets
        }
        terms: dict[str, frozenset[str]] = {}
        for queue, documents in words_by_queue.items():
            frequency = Counter(word for words in documents for word in words)
            # A term must repeat across a queue's tickets once it has two or more.
            needed = max(min(2, len(documents)), QUEUE_TERM_SHARE * len(documents))
            terms[queue] = frozenset(
                word
                for word, count in frequency.items()
                if count >= needed and word not in common
            )
        return cls(terms)

    def match(self, ticket: Ticket) -> str | None:
        """Return the new queue the ticket resembles most, or None."""
        words = _words(f"{ticket.title} {ticket.description}")
        best: tuple[int, str] | None = None
        for queue, terms in sorted(self.terms_by_queue.items()):
            hits = len(words & terms)
            if hits >= QUEUE_TERM_MATCHES and (best is None or hits > best[0]):
                best = (hits, queue)
        return None if best is None else best[1]

    def apply(
        self, pairs: Sequence[tuple[Ticket, Decision]]
    ) -> list[tuple[Ticket, Decision]]:
        """Return the pairs with decisions for new-queue tickets forced to review."""
        if not self.terms_by_queue:
            return list(pairs)
        guarded = []
        for ticket, decision in pairs:
            queue = self.match(ticket)
            if queue is not None and decision.action is DecisionAction.AUTO_ROUTE:
                note = (
                    f"looks like queue {queue!r}, which model {decision.model_version} "
                    "was not trained on, so a person must choose the group"
                )
                explanation = decision.explanation.model_copy(
                    update={"notes": [*decision.explanation.notes, note]}
                )
                decision = decision.model_copy(
                    update={
                        "action": DecisionAction.FORCED_REVIEW,
                        "explanation": explanation,
                    }
                )
            guarded.append((ticket, decision))
        return guarded


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower())) - ENGLISH_STOP_WORDS
