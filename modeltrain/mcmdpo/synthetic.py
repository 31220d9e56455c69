"""A synthetic alt-text preference snapshot: coloured shapes, posts about a topic, right and wrong alt-text.

The chosen alt-text names the image's colour and shape and the post's topic; the rejected one gets
the colour, the shape or the topic wrong. A model can only prefer chosen reliably by looking at the
image and reading the context, which is what MCM-DPO's image and context margins measure.
Written in the reference (mcmdpo) format so it exercises the same reader as real snapshots.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 60, 220),
    "yellow": (230, 210, 20),
}
SHAPES = ("circle", "square", "triangle")
TOPICS = ("cooking", "travel", "music", "football")
HEADER = "Given an image and context, generate alt-text for the image.Context:\n"


def draw_shape(
    colour: str, shape: str, size: int = 48, jitter: random.Random | None = None
) -> Image.Image:
    image = Image.new("RGB", (size, size), (245, 245, 245))
    draw = ImageDraw.Draw(image)
    rng = jitter or random.Random(0)
    margin = size // 6 + rng.randint(-2, 2)
    box = (margin, margin, size - margin, size - margin)
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon(
            [(size // 2, margin), (margin, size - margin), (size - margin, size - margin)],
            fill=fill,
        )
    return image


def alt_text(colour: str, shape: str, topic: str) -> str:
    return f"a {colour} {shape} for {topic}"


def post_text(topic: str, rng: random.Random) -> str:
    opener = rng.choice(["my post about", "thoughts on", "today we talk", "a thread on"])
    return f"{opener} {topic} with friends"


def write_snapshot(folder: str | Path, count: int = 32, *, seed: int = 0, size: int = 48) -> Path:
    """Write `count` records as ``synthetic_train.json`` + ``image/synthetic_train/*.png``."""
    folder = Path(folder)
    image_dir = folder / "image" / "synthetic_train"
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        colour, shape, topic = (
            rng.choice(list(COLOURS)),
            rng.choice(SHAPES),
            TOPICS[index % len(TOPICS)],
        )
        name = f"{index:04d}.png"
        draw_shape(colour, shape, size, rng).save(image_dir / name)
        wrong = rng.choice(["colour", "shape", "topic"])
        bad_colour = (
            rng.choice([c for c in COLOURS if c != colour]) if wrong == "colour" else colour
        )
        bad_shape = rng.choice([s for s in SHAPES if s != shape]) if wrong == "shape" else shape
        bad_topic = rng.choice([t for t in TOPICS if t != topic]) if wrong == "topic" else topic
        question = HEADER + post_text(topic, rng)
        text = {
            "question": question,
            "chosen": alt_text(colour, shape, topic),
            "rejected": alt_text(bad_colour, bad_shape, bad_topic),
        }
        rows.append({"image": {"path": name}, "idx": index, "text": json.dumps(text)})
    (folder / "synthetic_train.json").write_text(json.dumps(rows, indent=1))
    return folder


def vocabulary() -> list[str]:
    """Every text the synthetic snapshot can contain (for training a tiny tokenizer)."""
    words = [*COLOURS, *SHAPES, *TOPICS]
    openers = "my post about thoughts on today we talk a thread with friends for"
    return [HEADER, openers, " ".join(words)]
