"""Benchmark snapshot exports at paper scale: python manage.py bench_export [--json] [--rebuild]

Builds (once; reused on later runs) a project "bench-export" with 202,000 train posts, each with
a distinct tiny PNG and a user-written alt-text (the TAlt records), and 18,000 model-vs-imported
pairs carrying human and LLM judgements (the PAlt records). Building uses bulk inserts and is not
timed. Then it exports TAlt and PAlt in mcmdpo and in parquet and prints, per export, seconds and
the process's peak RSS. Run it against PostgreSQL (DATABASE_URL) for the numbers that matter.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from annotate.models import AltText, Image, Post, Project
from preferences.consensus.services import consensus_recompute
from preferences.models import CandidatePair, Judgement, LLMLabeler
from preferences.projects import project_create
from snapshots.services import snapshot_export, snapshot_filters_build

from .measure import measure, tiny_png

NAME = "bench-export"
BATCH = 5000


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Command(BaseCommand):
    help = "Benchmark TAlt/PAlt exports at paper scale (see module docstring)."

    def add_arguments(self, parser):
        parser.add_argument("--posts", type=int, default=202_000)
        parser.add_argument("--pairs", type=int, default=18_000)
        parser.add_argument("--rebuild", action="store_true", help="drop and rebuild the data")
        parser.add_argument("--json", action="store_true")

    # -- building the data (not timed) ---------------------------------------------------
    def _build_posts(self, posts: int) -> Project:
        project = project_create(name=NAME)
        media = Path(settings.MEDIA_ROOT)
        for start in range(0, posts, BATCH):
            ids = range(start, min(posts, start + BATCH))
            images = []
            for i in ids:
                data = tiny_png(i)
                sha = hashlib.sha256(data).hexdigest()
                name = f"bench/{sha[:2]}/{sha}.png"
                path = media / name
                if not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                images.append(
                    Image(
                        sha256=sha,
                        file=name,
                        mime="image/png",
                        width=4,
                        height=4,
                        size_bytes=len(data),
                    )
                )
            with transaction.atomic():
                Image.objects.bulk_create(images, ignore_conflicts=True)
                image_ids = dict(
                    Image.objects.filter(sha256__in=[im.sha256 for im in images]).values_list(
                        "sha256", "id"
                    )
                )
                rows = [
                    Post(
                        project=project,
                        platform="twitter" if i % 3 else "pinterest",
                        external_id=str(i),
                        content_key=_sha(f"bench {i}"),
                        context=f"Post {i}: a short caption about a coloured tile, with a few more words.",
                        split="train",
                        image_id=image_ids[im.sha256],
                    )
                    for i, im in zip(ids, images, strict=True)
                ]
                created = Post.objects.bulk_create(rows, batch_size=BATCH)
                if not created or created[0].pk is None:  # SQLite before RETURNING: look them up
                    created = list(
                        Post.objects.filter(
                            project=project, external_id__in=[str(i) for i in ids]
                        ).order_by("id")
                    )
                alts = [
                    AltText(
                        post_id=p.pk,
                        text=f"A 4 by 4 tile in colour number {p.external_id}.",
                        text_sha256=_sha(p.external_id),
                        origin="user-written",
                    )
                    for p in created
                ]
                AltText.objects.bulk_create(alts, batch_size=BATCH)
            self.stderr.write(f"  built {min(posts, start + BATCH):,} posts")

        return project

    def _build_pairs(self, project: Project, pairs: int) -> None:
        """A model alt-text against the user-written one: `pairs` pairs with a clear consensus
        plus one in ten more that a snapshot must leave out (ties, both-bad)."""
        from django.contrib.auth import get_user_model

        facets = {f.key: f for f in project.facets.all()}
        User = get_user_model()
        raters = [User.objects.get_or_create(username=f"bench-rater-{i}")[0] for i in range(3)]
        llm, _ = LLMLabeler.objects.get_or_create(model_id="bench-llm", prompt_version="v1")
        extra = pairs // 9
        post_ids = list(
            Post.objects.filter(project=project)
            .order_by("id")
            .values_list("id", flat=True)[: pairs + extra]
        )
        for start in range(0, len(post_ids), BATCH):
            chunk = post_ids[start : start + BATCH]
            with transaction.atomic():
                model_alts = AltText.objects.bulk_create(
                    [
                        AltText(
                            post_id=pid,
                            text=f"Model output for post {pid}: a small square of colour.",
                            text_sha256=_sha(f"m{pid}"),
                            origin="model",
                        )
                        for pid in chunk
                    ],
                    batch_size=BATCH,
                )
                if model_alts[0].pk is None:
                    model_alts = list(
                        AltText.objects.filter(post_id__in=chunk, origin="model").order_by(
                            "post_id"
                        )
                    )
                written = dict(
                    AltText.objects.filter(post_id__in=chunk, origin="user-written").values_list(
                        "post_id", "id"
                    )
                )
                new_pairs = CandidatePair.objects.bulk_create(
                    [
                        CandidatePair(
                            post_id=a.post_id,
                            alt_a_id=a.pk,
                            alt_b_id=written[a.post_id],
                            source="model",
                        )
                        for a in model_alts
                    ],
                    batch_size=BATCH,
                )
                if new_pairs[0].pk is None:
                    new_pairs = list(
                        CandidatePair.objects.filter(post_id__in=chunk, source="model").order_by(
                            "id"
                        )
                    )
                judgements = []
                for n, pair in enumerate(new_pairs):
                    # Mostly A, with some split, tie and both-bad pairs so every rule is exercised.
                    if start + n < pairs:
                        votes = [["A", "A", "B"], ["A", "A", "A"], ["B", "A", "B"]][n % 3]
                    else:
                        votes = [["tie", "tie", "A"], ["both-bad", "A", "both-bad"]][n % 2]
                    for rater, choice in zip(raters, votes, strict=True):
                        judgements.append(
                            Judgement(
                                pair=pair,
                                facet=facets["overall"],
                                kind="human",
                                rater_user=rater,
                                choice=choice,
                            )
                        )
                    judgements.append(
                        Judgement(
                            pair=pair,
                            facet=facets["faithful"],
                            kind="human",
                            rater_user=raters[0],
                            choice=votes[0],
                        )
                    )
                    judgements.append(
                        Judgement(
                            pair=pair,
                            facet=facets["overall"],
                            kind="llm",
                            rater_llm=llm,
                            choice="A",
                        )
                    )
                Judgement.objects.bulk_create(judgements, batch_size=BATCH)

    def _project(self, posts: int, pairs: int, rebuild: bool) -> Project:
        project = Project.objects.filter(name=NAME).first()
        if project is not None and (rebuild or project.posts.count() != posts):
            self.stderr.write(f"dropping the old {NAME} project")
            self._drop_pairs(project)
            AltText.objects.filter(post__project=project).delete()
            project.delete()
            project = None
        if project is None:
            self.stderr.write(f"building {NAME}: {posts:,} posts")
            with measure() as built:
                project = self._build_posts(posts)
            self.stderr.write(f"built posts in {built.seconds:.1f} s")
        marker = f"bench-export pairs v2: {pairs}"  # the pair layout this command builds
        have = CandidatePair.objects.filter(post__project=project).count()
        if project.guidelines != marker or have != pairs + pairs // 9:
            self._drop_pairs(project)
            self.stderr.write(f"building {pairs:,} judged pairs (+{pairs // 9:,} ties/both-bad)")
            with measure() as built:
                self._build_pairs(project, pairs)
            Project.objects.filter(pk=project.pk).update(guidelines=marker)
            self.stderr.write(f"built pairs in {built.seconds:.1f} s")
        else:
            self.stderr.write(f"reusing {NAME}: {posts:,} posts, {have:,} pairs")
        # Steady state: in use, the refresh after each write keeps consensus current; bulk-built
        # judgements get theirs here, outside the timed export.
        with measure() as built:
            refreshed = consensus_recompute(project=project)
        if refreshed:
            self.stderr.write(f"built {refreshed:,} consensus rows in {built.seconds:.1f} s")
        return project

    def _drop_pairs(self, project: Project) -> None:
        # Raw deletes: the ORM's collector fetches every row first, which takes minutes here.
        # Only bench data is touched, and the database's foreign keys still guard the rest.
        for qs in (
            Judgement.objects.filter(pair__post__project=project),
            CandidatePair.objects.filter(post__project=project),
            AltText.objects.filter(post__project=project, origin="model"),
        ):
            qs._raw_delete(qs.db)

    # -- the timed exports ---------------------------------------------------------------
    def handle(self, *args, **opts):
        project = self._project(opts["posts"], opts["pairs"], opts["rebuild"])
        out_root = Path(tempfile.mkdtemp(prefix="bench-export-"))
        results = {
            "database": connection.vendor,
            "posts": opts["posts"],
            "pairs": opts["pairs"],
            "exports": [],
        }
        try:
            for fmt in ("mcmdpo", "parquet"):
                total_s = 0.0
                for kind in ("talt", "palt"):
                    filters = snapshot_filters_build(kind=kind, project=project)
                    with measure() as m:
                        manifest = snapshot_export(
                            kind=kind,
                            filters=filters,
                            formats=[fmt],
                            out_dir=out_root / f"{kind}-{fmt}",
                        )
                    total_s += m.seconds
                    size = sum(e.get("bytes") or 0 for e in manifest["files"].values())
                    row = {
                        "kind": kind,
                        "format": fmt,
                        "records": manifest["counts"]["records"],
                        "seconds": round(m.seconds, 2),
                        "peak_rss_mb": round(m.peak_rss_mb, 1),
                        "mbytes_written": round(size / 2**20, 1),
                    }
                    results["exports"].append(row)
                    if not opts["json"]:
                        self.stdout.write(
                            f"{kind:5s} {fmt:8s} {row['records']:>8,} records  {row['seconds']:6.2f} s  "
                            f"peak RSS {row['peak_rss_mb']:6.1f} MiB  {row['mbytes_written']} MiB written"
                        )
                results[f"both_kinds_{fmt}_seconds"] = round(total_s, 2)
                if not opts["json"]:
                    self.stdout.write(f"both kinds in {fmt}: {total_s:.2f} s")
        finally:
            shutil.rmtree(out_root, ignore_errors=True)
        results["peak_rss_mb"] = max(r["peak_rss_mb"] for r in results["exports"])
        if opts["json"]:
            self.stdout.write(json.dumps(results, indent=2))
        else:
            self.stdout.write(
                f"peak RSS over all exports: {results['peak_rss_mb']} MiB (pid {os.getpid()})"
            )
