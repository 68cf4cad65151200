"""Intent matching from keywords and patterns."""

from __future__ import annotations

import time

import pytest

from router.mapping import MappingSet, Taxonomy, match_intent
from router.schemas import Ticket


def _ticket(title: str, description: str = "") -> Ticket:
    return Ticket(
        source_system="jira", external_id="X-1", title=title, description=description
    )


def _taxonomy() -> Taxonomy:
    return Taxonomy.model_validate(
        {
            "intents": [
                {"id": "first", "description": "First.", "keywords": ["disk"]},
                {
                    "id": "second",
                    "description": "Second.",
                    "keywords": ["disk", "full"],
                },
                {
                    "id": "third",
                    "description": "Third.",
                    "keywords": ["shared drive"],
                    "patterns": [r"\bquota\s+exceeded\b"],
                },
                {"id": "general", "description": "Anything else."},
            ],
            "resolver_groups": [{"name": "Storage", "description": "Disks."}],
        }
    )


@pytest.mark.parametrize(
    ("title", "intent"),
    [
        ("Please reset my password, I am locked out", "password_reset"),
        ("NullPointerException in RegionServer when closing a region", "bug_report"),
        ("Need access to the Finance shared drive", "access_request"),
        ("Laptop screen is cracked and the charger broke", "hardware_fault"),
        ("Upgrade Jackson to 2.10.1", "upgrade"),
        ("TestRMRestart is flaky on trunk", "build_test_failure"),
        ("Fix CVE-2021-44228 in the log4j dependency", "security"),
        ("Mailbox is full, cannot receive mail", "storage_quota"),
        ("Fix typos in the configuration guide", "documentation"),
    ],
)
def test_shipped_taxonomy_recognises_intent(
    mapping_set: MappingSet, title: str, intent: str
) -> None:
    found, _ = mapping_set.match_intent(_ticket(title))
    assert found == intent


def test_unmatched_ticket_gets_fallback(mapping_set: MappingSet) -> None:
    assert mapping_set.match_intent(_ticket("zzz qqq")) == ("general", [])


def test_matches_list_keywords_and_patterns() -> None:
    ticket = _ticket("Shared drive: quota exceeded")
    assert match_intent(ticket, _taxonomy()) == (
        "third",
        ["shared drive", r"\bquota\s+exceeded\b"],
    )


def test_more_keywords_win() -> None:
    assert match_intent(_ticket("Disk full"), _taxonomy())[0] == "second"


def test_tie_goes_to_first_intent() -> None:
    assert match_intent(_ticket("Disk replaced"), _taxonomy())[0] == "first"


def test_keyword_matches_plural() -> None:
    assert match_intent(_ticket("Two disks failed"), _taxonomy())[0] == "first"


def test_keyword_ignores_case() -> None:
    assert match_intent(_ticket("DISK"), _taxonomy())[0] == "first"


def test_keyword_needs_whole_word() -> None:
    assert match_intent(_ticket("diskette"), _taxonomy())[0] == "general"


def test_phrase_spans_punctuation() -> None:
    assert match_intent(_ticket("shared-drive access"), _taxonomy())[0] == "third"


def test_description_is_read() -> None:
    ticket = _ticket("Help", description="the disk is full")
    assert match_intent(ticket, _taxonomy())[0] == "second"


def test_case_sensitive_pattern_stays_sensitive(mapping_set: MappingSet) -> None:
    found, matches = mapping_set.match_intent(_ticket("testing the new laptop"))
    assert "(?-i:\\bTest[A-Z]\\w+)" not in matches
    assert found == "hardware_fault"


def test_match_intent_is_fast(mapping_set: MappingSet) -> None:
    # A generous bound that still catches per-ticket compilation.
    ticket = _ticket("HDFS balancer is slow when many DataNodes are decommissioned")
    started = time.perf_counter()
    for _ in range(2000):
        mapping_set.match_intent(ticket)
    assert time.perf_counter() - started < 1.0
