"""Does a model read the picture? Forced choices on the alt-text task's held-out posts.

For each post about the left or right group, the model scores its right alt-text against the same
alt-text with that group's colour (or shape, or count) changed to each other value. A choice
counts as right when the true alt-text beats every alternative, so a model that ignores the
picture lands near chance (1/5 for colour, 1/3 for shape and count) while one that reads it does
far better. The image margin is how much likelier the right alt-text is under the post's own
picture than under another scene's (nats; 0 for a model blind to the picture).
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

CHANCE = {"colour": 1 / 5, "shape": 1 / 3, "count": 1 / 3}


def _alternatives(group) -> dict[str, list]:
    from modeltrain.mcmdpo.alttext_task import COLOURS, COUNTS, SHAPES, Group

    return {
        "colour": [Group(c, group.shape, group.count) for c in COLOURS if c != group.colour],
        "shape": [Group(group.colour, s, group.count) for s in SHAPES if s != group.shape],
        "count": [Group(group.colour, group.shape, n) for n in COUNTS if n != group.count],
    }


def picture_use(
    model, processor, *, posts: int = 40, seed: int = 11, held_out: bool = False
) -> dict:
    """{"colour", "shape", "count": forced-choice accuracy, "image_margin": nats, "posts": n}.

    `held_out=False` draws unseen posts in trained colour-shape pairs; True, the task's held-out
    pairs (composition)."""
    import torch

    from modeltrain.mcmdpo import alttext_task
    from modeltrain.mcmdpo.data import NegativeSpec, PreferenceDataset
    from modeltrain.mcmdpo.formats import PreferenceRecord
    from modeltrain.mcmdpo.negatives import ImageNegative
    from modeltrain.mcmdpo.refcache import dataset_condition_logps

    sample = alttext_task.sample_posts(posts * 2, seed=seed, held_out=held_out)
    chosen = [p for p in sample if p.target != "sign"][:posts]
    with tempfile.TemporaryDirectory(prefix="altpref-picture-probe-") as tmp:
        records, owners = [], []
        for i, post in enumerate(chosen):
            path = Path(tmp) / f"{i}.png"
            alttext_task.draw_scene(post.scene).save(path)
            for kind, groups in _alternatives(post.scene.group(post.target)).items():
                for group in groups:
                    wrong = alttext_task._with_group(post, post.target, group)
                    records.append(
                        PreferenceRecord(len(records), str(path), post.context, post.chosen, wrong)
                    )
                    owners.append((kind, i))
        # The corrupted picture is another record's (another scene, or the same scene when the
        # draw lands on a sibling record; that only lowers the margin).
        dataset = PreferenceDataset(
            records, processor, negatives=NegativeSpec(image=ImageNegative.SWAP)
        )
        with torch.no_grad():
            logps = dataset_condition_logps(model, dataset, batch_size=16)
    beats = (logps[:, 0, 0, 0] > logps[:, 0, 0, 1]).tolist()
    right: dict[str, dict[int, bool]] = defaultdict(lambda: defaultdict(lambda: True))
    for won, (kind, i) in zip(beats, owners, strict=True):
        right[kind][i] &= won
    result = {kind: sum(right[kind].values()) / len(chosen) for kind in CHANCE}
    result["image_margin"] = float((logps[:, 0, 0, 0] - logps[:, 0, 1, 0]).mean())
    result["posts"] = len(chosen)
    return result


def describe(result: dict) -> str:
    parts = ", ".join(f"{k} {result[k]:.2f} (chance {CHANCE[k]:.2f})" for k in CHANCE)
    return f"{parts}; image margin {result['image_margin']:.2f} nats over {result['posts']} posts"
