"""The reference recipe that our model is measured against, run on the same split."""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline, make_union
from sklearn.svm import LinearSVC


def reference_predictions(
    train_texts: Sequence[str],
    train_labels: Sequence[str],
    test_texts: Sequence[str],
    *,
    jobs: int = 2,
) -> list[str]:
    """Fit TF-IDF word 1-2-grams and char_wb 3-5-grams with LinearSVC(C=1) and predict.

    The text is the ticket's title and description only. One-vs-rest runs in parallel,
    which yields the same weights as LinearSVC's own one-vs-rest loop.
    """
    features = make_union(
        TfidfVectorizer(
            analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=1
        ),
        TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2
        ),
    )
    classifier = OneVsRestClassifier(LinearSVC(C=1.0), n_jobs=jobs)
    pipeline = make_pipeline(features, classifier)
    pipeline.fit(list(train_texts), list(train_labels))
    return [str(label) for label in pipeline.predict(list(test_texts))]
