"""Small builders for rating-UI tests: posts with a real stored image, alt-texts and pairs."""

from __future__ import annotations

import hashlib
import io
import itertools

from django.core.files.base import ContentFile
from PIL import Image as PILImage

_counter = itertools.count()


def make_post(*, project, context: str = "A post about shapes.", colour=(200, 30, 30)):
    from annotate.models import Image, Post

    n = next(_counter)
    buf = io.BytesIO()
    PILImage.new("RGB", (24, 24), colour).save(buf, format="PNG")
    data = buf.getvalue() + n.to_bytes(4, "big")  # distinct bytes -> distinct content address
    sha = hashlib.sha256(data).hexdigest()
    image = Image(sha256=sha, mime="image/png", width=24, height=24, size_bytes=len(data))
    image.file.save(f"images/{sha}.png", ContentFile(data), save=False)
    image.save()
    return Post.objects.create(
        project=project,
        platform="twitter",
        external_id=f"t{n}",
        content_key=hashlib.sha256(f"{sha}{context}".encode()).hexdigest(),
        context=context,
        image=image,
    )


def make_alt(*, post, text: str, origin: str = "user-written", parent=None):
    from annotate.models import AltText

    return AltText.objects.create(
        post=post,
        text=text,
        text_sha256=hashlib.sha256(text.encode()).hexdigest(),
        origin=origin,
        parent=parent,
    )


def make_pair(
    *,
    project,
    context: str = "A post about shapes.",
    a: str = "A red square.",
    b: str = "A shape.",
    source: str = "import",
    known_preference=None,
):
    from preferences.models import CandidatePair

    post = make_post(project=project, context=context)
    alt_a = make_alt(post=post, text=a, origin="imported-chosen")
    alt_b = make_alt(post=post, text=b, origin="imported-rejected")
    return CandidatePair.objects.create(
        post=post, alt_a=alt_a, alt_b=alt_b, source=source, known_preference=known_preference
    )


def make_pairs(*, project, n: int):
    """n pairs on one post, inserted in bulk (tests that need hundreds of items)."""
    from annotate.models import AltText
    from preferences.models import CandidatePair

    post = make_post(project=project)
    texts = [f"alt {next(_counter)}" for _ in range(2 * n)]
    alts = AltText.objects.bulk_create(
        AltText(
            post=post,
            text=t,
            text_sha256=hashlib.sha256(t.encode()).hexdigest(),
            origin="user-written",
        )
        for t in texts
    )
    return CandidatePair.objects.bulk_create(
        CandidatePair(post=post, alt_a=alts[2 * i], alt_b=alts[2 * i + 1], source="import")
        for i in range(n)
    )


def all_facets(project, choice: str = "A") -> dict[str, str]:
    return {f"facet-{f.key}": choice for f in project.facets.filter(is_active=True)}


def facet_answers(project, choice: str = "A") -> dict[str, str]:
    """Every active facet answered `choice`, keyed as assignment_submit takes them."""
    return {f.key: choice for f in project.facets.filter(is_active=True)}


def rater_client(project, member, name: str):
    """A test client signed in as a new member `name` who has read the guidelines."""
    from django.test import Client

    client = Client()
    client.force_login(member(name))
    client.get(f"/projects/{project.id}/rate/")  # guidelines first
    return client
