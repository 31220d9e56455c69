"""Importing alt-text records into a project: annotate's importer stores posts, images and
alt-texts; a record that carries a preference (chosen over rejected) becomes a pair here, in
the same chunk transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from annotate.importers.service import ImportReport, PairSink, records_import
from annotate.models import Project

from .models import CandidatePair, PairSource, Side


def _import_pairs_store(wanted: dict[tuple[int, int], int]) -> set[tuple[int, int]]:
    """Store a pair per (chosen, rejected) alt-text ids not paired yet; chosen is A, and the
    imported preference says A wins. Returns the keys it created."""
    existing = set(
        CandidatePair.objects.filter(alt_a_id__any_of={a for a, _ in wanted}).values_list(
            "alt_a_id", "alt_b_id"
        )
    )
    new = {key: post_id for key, post_id in wanted.items() if key not in existing}
    CandidatePair.objects.bulk_create(
        [
            CandidatePair(
                post_id=post_id,
                alt_a_id=a,
                alt_b_id=b,
                source=PairSource.IMPORT,
                known_preference=Side.A,
            )
            for (a, b), post_id in new.items()
        ],
        ignore_conflicts=True,
    )
    return set(new)


IMPORT_PAIRS = PairSink(store=_import_pairs_store, table=CandidatePair._meta.db_table)


def altdata_import(
    *,
    paths: Iterable[Path | str],
    project: Project,
    images_dir: Path | str | None = None,
    platform: str | None = None,
    split: str | None = None,
    strict: bool = False,
    batch_size: int | None = None,
    confine_images: bool = False,
    on_chunk: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Import alt-text records from files (annotate's `records_import`: its options and
    guarantees), making a pair of every record that carries a preference."""
    return records_import(
        paths=paths,
        project=project,
        pairs=IMPORT_PAIRS,
        images_dir=images_dir,
        platform=platform,
        split=split,
        strict=strict,
        batch_size=batch_size,
        confine_images=confine_images,
        on_chunk=on_chunk,
    )
