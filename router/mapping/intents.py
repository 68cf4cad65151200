"""Recognise a ticket's intent from its title and description.

No bundled data set labels intents, so they come from the keywords and regular
expressions of `taxonomy.yaml`. Each distinct keyword found adds the intent's weight to
its score, and each pattern found adds twice the weight, because a pattern is more
specific than one word. The highest score wins; on a tie, the intent listed first wins.
A ticket that matches nothing gets the fallback intent.
"""

from __future__ import annotations

import re
from typing import Final

from router.mapping.schemas import Taxonomy
from router.schemas import Ticket

PATTERN_SCORE: Final = 2.0
_WORD = re.compile(r"\w+")
# Keywords are matched as words, so a keyword is split the same way as the text.
_PLURAL_SUFFIXES: Final = ("s", "es")


def keyword_words(keyword: str) -> tuple[str, ...]:
    """Split a keyword into the lower-case words that the matcher compares."""
    return tuple(_WORD.findall(keyword.lower()))


class IntentMatcher:
    """A taxonomy's intents compiled into word tables and regular expressions."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.fallback = taxonomy.fallback_intent
        self._ids = tuple(intent.id for intent in taxonomy.intents)
        self._weights = tuple(intent.weight for intent in taxonomy.intents)
        self._phrases: dict[str, str] = {}
        self._keyword_intents: dict[str, list[int]] = {}
        # First word of each multi-word keyword -> the most words such a keyword has.
        self._phrase_starts: dict[str, int] = {}

        for index, intent in enumerate(taxonomy.intents):
            for keyword in intent.keywords:
                self._add_keyword(keyword, index)
        self._patterns = tuple(
            tuple(
                (pattern, re.compile(pattern, re.IGNORECASE))
                for pattern in intent.patterns
            )
            for intent in taxonomy.intents
        )

    def _add_keyword(self, keyword: str, index: int) -> None:
        words = keyword_words(keyword)
        if not words:
            return
        intents = self._keyword_intents.setdefault(keyword, [])
        if index not in intents:
            intents.append(index)
        if len(words) > 1:
            longest = self._phrase_starts.get(words[0], 0)
            self._phrase_starts[words[0]] = max(longest, len(words))

        phrase = " ".join(words)
        # An exact keyword wins over another keyword's plural form ("test" + "s").
        for suffix in _PLURAL_SUFFIXES:
            self._phrases.setdefault(phrase + suffix, keyword)
        self._phrases[phrase] = keyword

    def match_text(self, text: str) -> tuple[str, list[str]]:
        """Return the best intent id for `text`, and the keywords and patterns found."""
        scores = [0.0] * len(self._ids)
        matches: list[list[str]] = [[] for _ in self._ids]

        for keyword in self._find_keywords(text):
            for index in self._keyword_intents[keyword]:
                scores[index] += self._weights[index]
                matches[index].append(keyword)
        for index, patterns in enumerate(self._patterns):
            for source, compiled in patterns:
                if compiled.search(text) is not None:
                    scores[index] += PATTERN_SCORE * self._weights[index]
                    matches[index].append(source)

        best = max(range(len(scores)), key=scores.__getitem__)
        if scores[best] <= 0.0:
            return self.fallback, []
        return self._ids[best], matches[best]

    def _find_keywords(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        found: list[str] = []
        phrases = self._phrases
        phrase_starts = self._phrase_starts
        for start, word in enumerate(words):
            keyword = phrases.get(word)
            if keyword is not None and keyword not in found:
                found.append(keyword)
            longest = phrase_starts.get(word)
            if longest is None:
                continue
            for end in range(start + 2, min(start + longest, len(words)) + 1):
                keyword = phrases.get(" ".join(words[start:end]))
                if keyword is not None and keyword not in found:
                    found.append(keyword)
        return found


def intent_matcher(taxonomy: Taxonomy) -> IntentMatcher:
    """Return the compiled matcher of `taxonomy`, compiling it on first use."""
    matcher = taxonomy._matcher
    if matcher is None:
        matcher = IntentMatcher(taxonomy)
        taxonomy._matcher = matcher
    return matcher  # type: ignore[no-any-return]


def match_intent(ticket: Ticket, taxonomy: Taxonomy) -> tuple[str, list[str]]:
    """Return the intent id of `ticket` and the keywords and patterns that matched.

    Only the title and description are read. A ticket that matches no intent gets
    the taxonomy's fallback intent (`general` by default) and an empty list.
    """
    text = ticket.title
    if ticket.description:
        text = f"{text}\n{ticket.description}"
    return intent_matcher(taxonomy).match_text(text)
