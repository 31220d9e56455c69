"""Benchmark the importer: python manage.py bench_import --records 200000 [--json] [--keep]

Generates records with distinct small PNG images (not timed), then times three imports into a
fresh project: (1) everything new, (2) the same file again (every image and record stored),
(3) new posts whose images are all stored already. Prints records/s and the peak RSS of each.
Run it against PostgreSQL (DATABASE_URL) for the numbers that matter.
"""

import json
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection

from annotate.models import Image, Project
from preferences.imports import altdata_import
from preferences.projects import project_create

from .measure import measure, tiny_png


def _write_inputs(folder: Path, records: int, *, context_tag: str) -> Path:
    path = folder / f"records-{context_tag}.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for i in range(records):
            sub = folder / "img" / f"{i // 1000:04d}"
            name = f"img/{i // 1000:04d}/{i}.png"
            if context_tag == "a":
                if i % 1000 == 0:
                    sub.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(tiny_png(i))
            out.write(
                json.dumps(
                    {
                        "id": f"{context_tag}-{i}",
                        "image": name,
                        "platform": "twitter",
                        "context": f"Post {i} ({context_tag}): a short caption about a coloured tile.",
                        "chosen": f"A 4 by 4 tile in colour number {i}.",
                        "rejected": "A picture.",
                    }
                )
                + "\n"
            )
    return path


class Command(BaseCommand):
    help = "Benchmark import throughput and peak memory (see module docstring)."

    def add_arguments(self, parser):
        parser.add_argument("--records", type=int, default=200_000)
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--keep", action="store_true", help="keep the bench project and files")

    def handle(self, *args, **opts):
        n = opts["records"]
        workdir = Path(tempfile.mkdtemp(prefix="altpref-bench-import-"))
        settings.MEDIA_ROOT = str(workdir / "media")  # never write bench files into real media
        self.stderr.write(f"generating {n:,} records with distinct images in {workdir} ...")
        t0 = time.perf_counter()
        first = _write_inputs(workdir, n, context_tag="a")
        second = _write_inputs(workdir, n, context_tag="b")
        self.stderr.write(
            f"generated in {time.perf_counter() - t0:.1f}s; importing ({connection.vendor})"
        )
        project = project_create(name=f"bench-import-{int(time.time())}")
        results = {"database": connection.vendor, "records": n}
        phases = [
            ("new_images", first),
            ("reimport_same_file", first),
            ("new_posts_stored_images", second),
        ]
        try:
            for label, path in phases:
                with measure() as m:
                    report = altdata_import(paths=[path], project=project, images_dir=workdir)
                results[label] = {
                    "seconds": round(m.seconds, 2),
                    "records_per_s": round(n / m.seconds),
                    "peak_rss_mb": round(m.peak_rss_mb, 1),
                    "imported": report.imported,
                    "duplicates": report.duplicates,
                    "rejected": report.rejected,
                }
                self.stderr.write(f"  {label}: {results[label]}")
        finally:
            if not opts["keep"]:
                image_ids = list(
                    Image.objects.filter(posts__project=project)
                    .values_list("id", flat=True)
                    .distinct()
                )
                Project.objects.filter(pk=project.pk).delete()
                Image.objects.filter(pk__in=image_ids, posts__isnull=True).delete()
                import shutil

                shutil.rmtree(workdir, ignore_errors=True)
        if opts["json"]:
            self.stdout.write(json.dumps(results))
        else:
            self.stdout.write(f"bench_import on {results['database']}, {n:,} records")
            self.stdout.write(f"{'phase':<26}{'records/s':>12}{'seconds':>10}{'peak RSS MB':>13}")
            for label, _ in phases:
                r = results[label]
                self.stdout.write(
                    f"{label:<26}{r['records_per_s']:>12,}{r['seconds']:>10}{r['peak_rss_mb']:>13}"
                )
