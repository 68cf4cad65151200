"""TF-IDF rows of fitted vectorizers, built without scikit-learn's per-call overhead.

`TfidfVectorizer.transform` validates its input and runs several sparse matrix steps
on every call, which costs about a millisecond for a single ticket. The fitted
vectorizer needs only its analyzer, vocabulary and idf weights to produce the same
rows, so those are kept here and the row is built in one pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer


class CompiledTfidf:
    """One fitted vectorizer with sublinear tf and L2 norm, reduced to plain lookups."""

    def __init__(self, vectorizer: TfidfVectorizer, *, offset: int) -> None:
        if (
            not vectorizer.sublinear_tf
            or vectorizer.norm != "l2"
            or not vectorizer.use_idf
        ):
            raise ValueError(
                "CompiledTfidf needs sublinear_tf=True, norm='l2' and use_idf=True; "
                "use the vectorizer's own transform for other settings."
            )
        self.analyze: Callable[[str], list[str]] = vectorizer.build_analyzer()
        self.vocabulary: dict[str, int] = vectorizer.vocabulary_
        self.idf: list[float] = vectorizer.idf_.astype(np.float64).tolist()
        self.offset = offset

    def add_row(self, text: str, indices: list[int], data: list[float]) -> None:
        """Append the row of `text` to CSR index and data lists."""
        counts: dict[int, int] = {}
        vocabulary = self.vocabulary
        for term in self.analyze(text):
            column = vocabulary.get(term)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        if not counts:
            return
        idf = self.idf
        values = [
            (1.0 + math.log(count)) * idf[column] for column, count in counts.items()
        ]
        norm = math.sqrt(sum(value * value for value in values))
        offset = self.offset
        for column, value in zip(counts, values, strict=True):
            indices.append(column + offset)
            data.append(value / norm)


def build_rows(
    texts: Sequence[str],
    blocks: Sequence[CompiledTfidf],
    extra: Sequence[Sequence[tuple[int, float]]],
    *,
    width: int,
) -> sp.csr_matrix:
    """Return one CSR row per text: each block's TF-IDF, then its extra entries."""
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for text, extras in zip(texts, extra, strict=True):
        for block in blocks:
            block.add_row(text, indices, data)
        for column, value in extras:
            indices.append(column)
            data.append(value)
        indptr.append(len(indices))
    return sp.csr_matrix(
        (
            np.asarray(data, dtype=np.float32),
            np.asarray(indices, dtype=np.int32),
            np.asarray(indptr, dtype=np.int32),
        ),
        shape=(len(texts), width),
    )
