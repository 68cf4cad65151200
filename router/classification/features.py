"""Turn tickets into model features, using only the fields a new ticket carries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from router.classification.fast_tfidf import CompiledTfidf, build_rows
from router.datasets.catalog import Example
from router.schemas import Ticket

# The only Ticket fields the classifier reads. Ids, the account, the current group,
# labels, context and the raw record never reach it, because in the bundled data they
# reveal the label.
MODEL_INPUT_FIELDS = (
    "title",
    "description",
    "issue_type",
    "category",
    "subcategory",
    "priority",
)
# Batches up to this size are vectorized by the compiled lookups (see transform).
COMPILED_BATCH_LIMIT = 16
CATEGORICAL_FIELDS = ("issue_type", "category", "subcategory", "priority")


@dataclass(frozen=True, slots=True)
class ModelInput:
    """Fields of one ticket that the classifier reads."""

    title: str = ""
    description: str = ""
    issue_type: str | None = None
    category: str | None = None
    subcategory: str | None = None
    priority: int | None = None

    @property
    def text(self) -> str:
        """Return the title and description as one text."""
        if self.description:
            return f"{self.title} {self.description}"
        return self.title

    def field_tokens(self, fields: Sequence[str] = CATEGORICAL_FIELDS) -> list[str]:
        """Return one `field=value` token per categorical field that has a value."""
        tokens = []
        for name in fields:
            value = getattr(self, name)
            if value is not None and value != "":
                tokens.append(f"{name}={value}")
        return tokens

    def as_dict(self) -> dict[str, Any]:
        """Return the inputs as a plain dict, for the audit log."""
        return {name: getattr(self, name) for name in MODEL_INPUT_FIELDS}


def input_from_ticket(ticket: Ticket) -> ModelInput:
    """Take the model inputs of a canonical ticket."""
    return ModelInput(
        title=ticket.title,
        description=ticket.description,
        issue_type=ticket.issue_type,
        category=ticket.category,
        subcategory=ticket.subcategory,
        priority=ticket.priority,
    )


def input_from_example(example: Example) -> ModelInput:
    """Take the model inputs of a labelled dataset example."""
    return ModelInput(
        title=example.title,
        description=example.description,
        issue_type=example.issue_type,
        priority=example.priority,
    )


class FieldVectorizer:
    """One-hot encode `field=value` tokens, ignoring values unseen in training."""

    def __init__(self, fields: Sequence[str] = CATEGORICAL_FIELDS) -> None:
        self.fields = tuple(fields)
        self.vocabulary_: dict[str, int] = {}

    def fit(self, inputs: Sequence[ModelInput]) -> FieldVectorizer:
        tokens = sorted({t for item in inputs for t in item.field_tokens(self.fields)})
        self.vocabulary_ = {token: index for index, token in enumerate(tokens)}
        return self

    def transform(self, inputs: Sequence[ModelInput]) -> sp.csr_matrix:
        indptr = [0]
        indices: list[int] = []
        for item in inputs:
            for token in item.field_tokens(self.fields):
                index = self.vocabulary_.get(token)
                if index is not None:
                    indices.append(index)
            indptr.append(len(indices))
        data = np.ones(len(indices), dtype=np.float64)
        shape = (len(inputs), len(self.vocabulary_))
        return sp.csr_matrix((data, indices, indptr), shape=shape)

    def feature_names(self) -> list[str]:
        return sorted(self.vocabulary_, key=self.vocabulary_.__getitem__)


@dataclass(frozen=True)
class FeatureParams:
    """Feature settings; part of the model version."""

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 5)
    char_min_df: int = 2
    field_weight: float = 1.0


class FeatureBuilder:
    """Word and character n-gram TF-IDF of the text, plus one-hot categorical fields."""

    def __init__(self, params: FeatureParams | None = None) -> None:
        self.params = params or FeatureParams()
        self.word = TfidfVectorizer(
            analyzer="word",
            ngram_range=self.params.word_ngrams,
            sublinear_tf=True,
            dtype=np.float32,
        )
        self.char = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=self.params.char_ngrams,
            sublinear_tf=True,
            min_df=self.params.char_min_df,
            dtype=np.float32,
        )
        self.fields = FieldVectorizer()
        self.block_sizes: tuple[int, int, int] = (0, 0, 0)
        self._compiled: list[CompiledTfidf] | None = None

    def fit_transform(self, inputs: Sequence[ModelInput]) -> sp.csr_matrix:
        texts = [item.text for item in inputs]
        word = self.word.fit_transform(texts)
        char = _fit_char(self.char, texts)
        fields = self.fields.fit(inputs).transform(inputs) * self.params.field_weight
        self.block_sizes = (word.shape[1], char.shape[1], fields.shape[1])
        self._compiled = None
        return sp.hstack([word, char, fields], format="csr", dtype=np.float32)

    def transform(self, inputs: Sequence[ModelInput]) -> sp.csr_matrix:
        """Return the feature rows of the inputs.

        Small batches go through the compiled lookups, which skip scikit-learn's fixed
        cost of about a millisecond per call. Larger ones go through scikit-learn,
        which is about twice as fast per ticket once that cost is spread. Both give
        the same rows.
        """
        if len(inputs) > COMPILED_BATCH_LIMIT:
            return self.reference_transform(inputs)
        blocks = self._compiled_blocks()
        field_offset = self.block_sizes[0] + self.block_sizes[1]
        weight = self.params.field_weight
        vocabulary = self.fields.vocabulary_
        extra = []
        for item in inputs:
            columns = (vocabulary.get(t) for t in item.field_tokens(self.fields.fields))
            extra.append([(field_offset + c, weight) for c in columns if c is not None])
        return build_rows(
            [item.text for item in inputs], blocks, extra, width=sum(self.block_sizes)
        )

    def reference_transform(self, inputs: Sequence[ModelInput]) -> sp.csr_matrix:
        """Return the feature rows through scikit-learn's own transforms."""
        texts = [item.text for item in inputs]
        word = self.word.transform(texts)
        char = self.char.transform(texts) if self.block_sizes[1] else _empty(len(texts))
        fields = self.fields.transform(inputs) * self.params.field_weight
        return sp.hstack([word, char, fields], format="csr", dtype=np.float32)

    def _compiled_blocks(self) -> list[CompiledTfidf]:
        if self._compiled is None:
            blocks = [CompiledTfidf(self.word, offset=0)]
            if self.block_sizes[1]:
                blocks.append(CompiledTfidf(self.char, offset=self.block_sizes[0]))
            self._compiled = blocks
        return self._compiled

    def __getstate__(self) -> dict[str, object]:
        # The compiled lookups are rebuilt on first use, so artefacts stay smaller.
        state = self.__dict__.copy()
        state["_compiled"] = None
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        state.setdefault("_compiled", None)
        self.__dict__.update(state)

    def feature_names(self) -> np.ndarray:
        """Return every feature's name, in column order, prefixed by its block."""
        word = [f"word:{t}" for t in self.word.get_feature_names_out()]
        char = (
            [f"char:{t}" for t in self.char.get_feature_names_out()]
            if self.block_sizes[1]
            else []
        )
        fields = [f"field:{t}" for t in self.fields.feature_names()]
        return np.array(word + char + fields, dtype=object)


def _fit_char(vectorizer: TfidfVectorizer, texts: list[str]) -> sp.csr_matrix:
    # With very few texts, min_df can prune every n-gram; then the block is left empty.
    try:
        return vectorizer.fit_transform(texts)
    except ValueError:
        vectorizer.set_params(min_df=1)
        return vectorizer.fit_transform(texts)


def _empty(rows: int) -> sp.csr_matrix:
    return sp.csr_matrix((rows, 0), dtype=np.float32)
