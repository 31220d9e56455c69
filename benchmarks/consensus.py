"""Benchmark blending: incremental update per judgement vs full recompute, Dawid–Skene refit
and the agreement figures, on a synthetic project that is rolled back afterwards.

    python manage.py bench_consensus --pairs 2000 --raters 5
"""

import random
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from annotate.models import AltText, Image, Post
from preferences.consensus.selectors import agreement_by_facet
from preferences.consensus.services import (
    consensus_recompute,
    consensus_update_for,
    reliability_fit,
)
from preferences.models import CandidatePair, Judgement, LLMLabeler
from preferences.projects import project_create

LABELS = ["A", "B", "tie", "both-bad"]


class _Rollback(Exception):
    pass


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--pairs", type=int, default=2000)
        parser.add_argument("--raters", type=int, default=5)
        parser.add_argument("--samples", type=int, default=200)

    def handle(self, *args, pairs, raters, samples, **options):
        try:
            with transaction.atomic():
                self._bench(pairs, raters, samples)
                raise _Rollback
        except _Rollback:
            pass

    def _bench(self, n_pairs: int, n_raters: int, samples: int) -> None:
        rng = random.Random(0)
        project = project_create(name=f"bench-consensus-{time.time_ns()}")
        facets = list(project.facets.all())
        image = Image.objects.create(
            sha256="f" * 64, file="bench.png", mime="image/png", width=1, height=1, size_bytes=1
        )
        posts = Post.objects.bulk_create(
            Post(project=project, platform="other", content_key=f"b{i}", image=image)
            for i in range(n_pairs)
        )
        alts = AltText.objects.bulk_create(
            AltText(post=p, text=f"{s}{p.pk}", text_sha256=f"{s}{p.pk}", origin="imported-chosen")
            for p in posts
            for s in ("a", "b")
        )
        pairs = CandidatePair.objects.bulk_create(
            CandidatePair(post=posts[i], alt_a=alts[2 * i], alt_b=alts[2 * i + 1], source="import")
            for i in range(n_pairs)
        )
        users = [
            get_user_model().objects.create_user(f"bench-{time.time_ns()}-{r}")
            for r in range(n_raters)
        ]
        llm, _ = LLMLabeler.objects.get_or_create(model_id="bench", prompt_version="bench")
        rows = []
        for pair in pairs:
            truth = rng.choice(LABELS[:2])
            for facet in facets:
                for user in users:
                    label = truth if rng.random() < 0.8 else rng.choice(LABELS)
                    rows.append(
                        Judgement(
                            pair=pair, facet=facet, kind="human", rater_user=user, choice=label
                        )
                    )
                rows.append(
                    Judgement(pair=pair, facet=facet, kind="llm", rater_llm=llm, choice=truth)
                )
        Judgement.objects.bulk_create(rows, batch_size=5000)
        self.stdout.write(
            f"{n_pairs} pairs × {len(facets)} facets, {len(rows)} judgements "
            f"({n_raters} humans + 1 LLM)"
        )

        start = time.perf_counter()
        fit = reliability_fit(project=project, recompute=False)
        self.stdout.write(
            f"Dawid–Skene refit: {time.perf_counter() - start:.2f} s ({fit['raters']} raters)"
        )

        picks = [(rng.choice(pairs), rng.choice(facets)) for _ in range(samples)]
        start = time.perf_counter()
        for pair, facet in picks:
            consensus_update_for(pair=pair, facet=facet)
        per = (time.perf_counter() - start) / samples
        self.stdout.write(
            f"Incremental update: {per * 1000:.2f} ms per judgement ({samples} samples)"
        )

        start = time.perf_counter()
        n = consensus_recompute(project=project)
        full = time.perf_counter() - start
        self.stdout.write(
            f"Full recompute: {full:.2f} s for {n} items ({full / per:.0f}× one update)"
        )

        start = time.perf_counter()
        agreement_by_facet(project=project)
        self.stdout.write(
            f"Agreement (κ, α, percent) for all facets: {time.perf_counter() - start:.2f} s"
        )
