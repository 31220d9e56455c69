"""A controlled alt-text task in which both the image and the post's context decide the right answer.

Each scene is a small PIL drawing: a sign with a short word across the top, and below it two
groups of shapes, one on the left and one on the right (a colour, a shape and a count each).
Each post is about one part of the scene, and its text says which: "the one on the left", "the
right one", or "what does the sign say?". The chosen alt-text describes that part first, so the
same picture needs different alt-text for different posts, and the same post text needs different
alt-text for different pictures.

Rejected alternatives are the kinds people really write: a caption of the wrong part (ignores the
context), the wrong colour, the wrong count, a copy of the post text, "image of ...", and a file
name.

Composition, not memorisation: a few (colour, shape) pairs never occur in the TAlt or PAlt
splits, and every test post is about one of them (or, for a sign post, its scene holds one). Every
colour and every shape is still seen in training, only never together.

Everything is deterministic from the seed. `write_task` writes three snapshot folders in the
MCM-DPO reference format (what `formats.read_records` and the Django importer read):

- ``talt/alttext_talt.json``: chosen only (SFT data, "TAlt"),
- ``palt/alttext_palt.json``: chosen and rejected (preference data, "PAlt"),
- ``test/alttext_test.json``: held-out combinations, chosen and rejected (the rejected ones only
  serve held-out preference accuracy; generation is scored against chosen),

each with its images in ``image/<file stem>/`` beside the file, as the reference layout has them.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from modeltrain.mcmdpo.formats import DEFAULT_HEADER

IMAGE_SIZE = 48
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (20, 160, 40),
    "blue": (30, 60, 225),
    "yellow": (235, 200, 0),
    "purple": (140, 40, 170),
}
SHAPES = ("circle", "square", "triangle")
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles"}
COUNTS = {1: "one", 2: "two", 3: "three"}
WORDS = ("SALE", "OPEN", "STOP", "LOVE")
SIDES = ("left", "right")
TOPICS = ("bake sale", "football match", "music festival", "garden show")
# Never drawn in a training scene; every test post is about one of them.
HELD_OUT: frozenset[tuple[str, str]] = frozenset(
    {("red", "triangle"), ("green", "circle"), ("blue", "square"), ("yellow", "triangle")}
)
SIDE_POSTS = (
    "Which logo should we use for the {topic}? I like the one on the {side}.",
    "My kid drew the {side} one for {topic} day!",
    "Vote for the {side} design for our {topic} club.",
    "Is the {side} sticker too bright for the {topic} flyer?",
)
SIGN_POSTS = (
    "What does the sign say? Saw it at the {topic}.",
    "Can anyone read this sign from the {topic}?",
)
FILE_NAMES = ("IMG_0412.png", "DSC_1187.jpg", "photo_2.png", "upload_final.png")
REJECTION_KINDS = (
    "ignores_context",
    "wrong_colour",
    "wrong_count",
    "post_copy",
    "image_of",
    "file_name",
)


@dataclass(frozen=True)
class Group:
    colour: str
    shape: str
    count: int

    def phrase(self) -> str:
        noun = self.shape if self.count == 1 else PLURAL[self.shape]
        return f"{COUNTS[self.count]} {self.colour} {noun}"


@dataclass(frozen=True)
class Scene:
    word: str
    left: Group
    right: Group

    def group(self, side: str) -> Group:
        return self.left if side == "left" else self.right

    def pairs(self) -> set[tuple[str, str]]:
        return {(self.left.colour, self.left.shape), (self.right.colour, self.right.shape)}


@dataclass(frozen=True)
class Post:
    """One post: a scene, what the post is about ("left", "right" or "sign"), its text."""

    scene: Scene
    target: str
    context: str

    @property
    def chosen(self) -> str:
        return alt_text(self.scene, self.target)


def alt_text(scene: Scene, target: str) -> str:
    """The right alt-text: the part the post is about first, then the rest for orientation."""
    if target == "sign":
        return (
            f"a sign that says {scene.word} above {scene.left.phrase()} and {scene.right.phrase()}"
        )
    other = "right" if target == "left" else "left"
    return f"{scene.group(target).phrase()} on the {target} next to {scene.group(other).phrase()}"


def rejected_alt_text(post: Post, kind: str, rng: random.Random) -> str:
    """A wrong alt-text of `kind` (one of REJECTION_KINDS) for `post`."""
    scene, target = post.scene, post.target
    focus_side = target if target != "sign" else rng.choice(SIDES)
    focus = scene.group(focus_side)
    if kind == "ignores_context":
        # The caption of another part of the picture: right about the image, wrong for this post.
        other = [t for t in ("left", "right", "sign") if t != target]
        return alt_text(scene, rng.choice(other))
    if kind == "wrong_colour":
        colour = rng.choice([c for c in COLOURS if c != focus.colour])
        return _with_group(post, focus_side, Group(colour, focus.shape, focus.count))
    if kind == "wrong_count":
        count = rng.choice([n for n in COUNTS if n != focus.count])
        return _with_group(post, focus_side, Group(focus.colour, focus.shape, count))
    if kind == "post_copy":
        return post.context
    if kind == "image_of":
        return rng.choice(["image of shapes", "image of a sign", f"image of {PLURAL[focus.shape]}"])
    if kind == "file_name":
        return rng.choice(FILE_NAMES)
    raise ValueError(f"unknown rejection kind {kind!r}; expected one of {REJECTION_KINDS}")


def _with_group(post: Post, side: str, group: Group) -> str:
    scene = post.scene
    changed = (
        Scene(scene.word, group, scene.right)
        if side == "left"
        else Scene(scene.word, scene.left, group)
    )
    return alt_text(changed, post.target)


# --- pictures ---------------------------------------------------------------------------------


def draw_scene(scene: Scene, size: int = IMAGE_SIZE) -> Image.Image:
    """The scene as a `size` x `size` RGB picture on a 3 x 3 grid: the sign with its word across
    the top row, the left group in the left column and the right group in the right column of
    the two rows below (the middle column stays empty, so each part has its own grid cells)."""
    image = Image.new("RGB", (size, size), (245, 245, 240))
    draw = ImageDraw.Draw(image)
    cell = size // 3
    draw.rectangle((1, 1, size - 2, cell - 2), fill=(255, 255, 255), outline=(60, 60, 60))
    font = ImageFont.load_default(size=max(8, cell - 4))
    box = draw.textbbox((0, 0), scene.word, font=font)
    x = (size - (box[2] - box[0])) // 2 - box[0]
    y = (cell - (box[3] - box[1])) // 2 - box[1]
    draw.text((x, y), scene.word, fill=(0, 0, 0), font=font)
    for left_edge, group in ((0, scene.left), (size - cell, scene.right)):
        _draw_group(draw, group, left_edge, cell, cell, size - cell)
    return image


def _draw_group(draw: ImageDraw.ImageDraw, group: Group, x0: int, y0: int, w: int, h: int) -> None:
    slot = h // 3  # up to three shapes, stacked
    side = min(slot - 2, w - 4)
    top = y0 + (h - slot * group.count) // 2
    fill = COLOURS[group.colour]
    for k in range(group.count):
        cx, cy = x0 + w // 2, top + slot * k + slot // 2
        box = (cx - side // 2, cy - side // 2, cx + side // 2, cy + side // 2)
        if group.shape == "circle":
            draw.ellipse(box, fill=fill)
        elif group.shape == "square":
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(cx, box[1]), (box[0], box[3]), (box[2], box[3])], fill=fill)


# --- sampling ---------------------------------------------------------------------------------


def _random_group(rng: random.Random, allowed: list[tuple[str, str]]) -> Group:
    colour, shape = rng.choice(allowed)
    return Group(colour, shape, rng.choice(list(COUNTS)))


def _random_scene(rng: random.Random, *, held_out: bool) -> Scene:
    """A scene; with held_out, at least one side holds a held-out pair, else neither does."""
    seen = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in HELD_OUT]
    every = [(c, s) for c in COLOURS for s in SHAPES]
    while True:
        if held_out:
            special, other = _random_group(rng, sorted(HELD_OUT)), _random_group(rng, every)
            left, right = (special, other) if rng.random() < 0.5 else (other, special)
        else:
            left, right = _random_group(rng, seen), _random_group(rng, seen)
        if (left.colour, left.shape) != (right.colour, right.shape):
            return Scene(rng.choice(WORDS), left, right)


def _post_for(scene: Scene, rng: random.Random, *, held_out: bool) -> Post:
    targets = ["left", "right", "sign"]
    if held_out:
        # A test side post is about the held-out group itself.
        targets = [s for s in SIDES if (scene.group(s).colour, scene.group(s).shape) in HELD_OUT]
        targets += ["sign"]
    # Side posts twice as often as sign posts: there are two sides.
    weights = [1.0 if t == "sign" else 2.0 for t in targets]
    target = rng.choices(targets, weights=weights)[0]
    topic = rng.choice(TOPICS)
    template = rng.choice(SIGN_POSTS if target == "sign" else SIDE_POSTS)
    return Post(scene, target, template.format(topic=topic, side=target))


def sample_posts(count: int, *, seed: int, held_out: bool, posts_per_scene: int = 2) -> list[Post]:
    """`count` posts, `posts_per_scene` per picture (a picture is shared, as on real platforms)."""
    rng = random.Random(f"alttext-task:{seed}:{'test' if held_out else 'train'}")
    posts: list[Post] = []
    while len(posts) < count:
        scene = _random_scene(rng, held_out=held_out)
        targets_used: set[str] = set()
        for _ in range(posts_per_scene):
            post = _post_for(scene, rng, held_out=held_out)
            if post.target in targets_used and len(posts) % 2:
                continue  # prefer different posts about one picture
            targets_used.add(post.target)
            posts.append(post)
            if len(posts) == count:
                break
    return posts


# --- writing snapshots -----------------------------------------------------------------------


@dataclass(frozen=True)
class TaskPaths:
    """Where `write_task` put each split (a folder `formats.read_records` reads)."""

    root: Path
    talt: Path
    palt: Path
    test: Path


def write_task(
    folder: str | Path,
    *,
    seed: int = 0,
    talt: int = 384,
    palt: int = 256,
    test: int = 64,
    size: int = IMAGE_SIZE,
) -> TaskPaths:
    """Write the TAlt, PAlt and held-out test splits of the task under `folder`."""
    folder = Path(folder)
    # TAlt and PAlt come from one stream of training posts, split so they share no picture.
    train = sample_posts(talt + palt, seed=seed, held_out=False)
    splits = {
        "talt": (train[:talt], False),
        "palt": (train[talt:], True),
        "test": (sample_posts(test, seed=seed, held_out=True), True),
    }
    rng = random.Random(f"alttext-task:{seed}:rejections")
    for name, (posts, with_rejected) in splits.items():
        _write_split(folder / name, f"alttext_{name}", posts, rng, with_rejected, size)
    return TaskPaths(folder, folder / "talt", folder / "palt", folder / "test")


def _write_split(
    folder: Path,
    stem: str,
    posts: list[Post],
    rng: random.Random,
    with_rejected: bool,
    size: int,
) -> None:
    image_dir = folder / "image" / stem
    image_dir.mkdir(parents=True, exist_ok=True)
    names: dict[Scene, str] = {}
    rows = []
    for index, post in enumerate(posts):
        name = names.get(post.scene)
        if name is None:
            name = names[post.scene] = f"scene-{len(names):04d}.png"
            draw_scene(post.scene, size).save(image_dir / name)
        text = {"question": DEFAULT_HEADER + post.context, "chosen": post.chosen}
        if with_rejected:
            kind = REJECTION_KINDS[index % len(REJECTION_KINDS)]
            text["rejected"] = rejected_alt_text(post, kind, rng)
            text["rejection_kind"] = kind
        rows.append(
            {
                "ds_name": "alttext_task",
                "idx": index,
                "image": {"path": name},
                "target": post.target,
                "text": json.dumps(text),
            }
        )
    (folder / f"{stem}.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")


def vocabulary() -> list[str]:
    """Every word the task can contain, for training a tokenizer in code."""
    words = [
        *COLOURS,
        *SHAPES,
        *PLURAL.values(),
        *COUNTS.values(),
        *WORDS,
        *SIDES,
        *TOPICS,
        "a sign that says above and on the next to image of shapes",
        *FILE_NAMES,
    ]
    texts = [DEFAULT_HEADER, " ".join(words)]
    texts += [t.format(topic="x", side="y") for t in SIDE_POSTS + SIGN_POSTS]
    return texts
