"""`opsroute mappings`: check the mapping files that configure the router."""

from __future__ import annotations

from pathlib import Path

import click

from router.mapping.errors import MappingError
from router.mapping.loader import load_mappings


@click.group("mappings")
def mappings() -> None:
    """Check the mapping files: field maps, taxonomy, thresholds, examples."""


@mappings.command("validate")
@click.argument(
    "directory",
    required=False,
    type=click.Path(file_okay=False, path_type=Path),
)
def validate(directory: Path | None) -> None:
    """Validate every mapping file in DIRECTORY and list each problem found.

    Without DIRECTORY, checks the configured folder: OPSROUTE_MAPPINGS_DIR when it
    is set, else the defaults shipped with opsroute. Exits with status 1 when there
    is any problem.
    """
    try:
        mapping_set = load_mappings(directory)
    except MappingError as exc:
        for problem in exc.problems:
            click.echo(str(problem))
        click.echo(f"{len(exc.problems)} problem(s) found.", err=True)
        raise SystemExit(1) from None

    click.echo(
        f"OK: {len(mapping_set.files)} files checked in {mapping_set.directory} "
        f"({len(mapping_set.systems)} systems, "
        f"{len(mapping_set.taxonomy.intents)} intents, "
        f"{len(mapping_set.taxonomy.resolver_groups)} resolver groups, "
        f"{len(mapping_set.examples)} examples)"
    )
