"""Find enricher kinds through entry points and build the configured pipeline."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Final

from sqlalchemy.orm import Session, sessionmaker

from router.enrichment.base import EnricherFactory
from router.enrichment.pipeline import ConfiguredEnricher, EnrichmentPipeline
from router.enrichment.schemas import EnrichmentFile

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP: Final = "opsroute.enrichers"


class UnknownEnricherError(LookupError):
    """`enrichment.yaml` names an enricher kind that no entry point provides."""


def enricher_factories() -> dict[str, EnricherFactory]:
    """Return the enricher factories of the `opsroute.enrichers` entry points."""
    return {
        entry_point.name: entry_point.load()
        for entry_point in entry_points(group=ENTRY_POINT_GROUP)
    }


def build_pipeline(
    config: EnrichmentFile | None,
    *,
    session_factory: sessionmaker[Session] | None = None,
) -> EnrichmentPipeline:
    """Build the pipeline of the enabled enrichers in `enrichment.yaml`.

    Each entry point names a factory called as `factory(spec,
    session_factory=...)`. An enricher whose factory raises ValueError (a missing
    setting, for example) is left out with a warning, so routing goes on without it.

    Raises:
        UnknownEnricherError: a configured kind has no entry point.
    """
    if config is None:
        return EnrichmentPipeline()
    factories = enricher_factories()
    configured: list[ConfiguredEnricher] = []
    for spec in config.enrichers:
        if not spec.enabled:
            continue
        factory = factories.get(spec.kind)
        if factory is None:
            known = ", ".join(sorted(factories)) or "none"
            raise UnknownEnricherError(
                f"enrichment.yaml: enricher {spec.name!r} has kind {spec.kind!r}, "
                f"which no installed package provides; expected one of: {known}"
            )
        try:
            enricher = factory(spec, session_factory=session_factory)
        except ValueError as error:
            logger.warning("Enricher %s is left out: %s", spec.name, error)
            continue
        configured.append(ConfiguredEnricher(enricher, spec))
    logger.info("Enrichers in use: %s", [item.name for item in configured])
    return EnrichmentPipeline(configured)
