"""The demo's base model: a tiny LLaVA built in code and SFT-trained on the alt-text task's TAlt split.

A randomly initialised tiny model writes junk, so a demo round would have nothing sensible to
improve. This module builds one that writes task-shaped alt-text ("two red circles on the left
next to one blue square"), once, and caches it:

- the cache folder is keyed by a hash of the recipe (task seed, sizes, steps, learning rate,
  model shape and RECIPE_VERSION), so a changed recipe builds a new model instead of reusing a
  stale one;
- concurrent builders (two workers, a test and `make run`) each build in their own temporary
  folder and rename it into place; the first rename wins, later ones discard theirs;
- first-time cost is printed; the target is at most 60 s on a 2-core CPU.

`python -m modeltrain.mcmdpo.demo_model [--cache-dir DIR]` builds (or finds) it and prints its
path, the build time and a few generated alt-texts next to their references.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from modeltrain.mcmdpo.tiny import TinyShape

RECIPE_VERSION = 2  # bump when the task or the training code changes what a recipe builds
BUILD_INFO = "altpref_demo_model.json"


# How a preference (or further SFT) stage trains the SFT-trained demo model: paper_table's
# preference rows and the demo project's "tiny" rounds both use it. The defaults for a random
# tiny model (LoRA at 3e-3, beta 1) undid the demo model's SFT in two steps: every output became
# a loop such as "two yellow circles on the left next to on the left next to ...".
PREFERENCE_DEFAULTS = {
    "use_lora": False,
    "learning_rate": 2e-4,
    "beta": 0.1,
    "vision_lr_scale": 0.1,  # the SFT stage's ratio (see DemoRecipe.vision_lr_scale)
    "warmup_ratio": 0.1,
    "lr_scheduler": "cosine",
}


@dataclass(frozen=True)
class DemoRecipe:
    """Everything that decides which model the build produces (and so its cache key)."""

    seed: int = 0
    talt_records: int = 384
    steps: int = 200
    batch_size: int = 16
    learning_rate: float = 3e-3
    # The vision encoder and projector learn at a tenth of that: at the full rate the
    # from-scratch vision side collapsed to one vector for every picture and the model wrote
    # guessed colours, shapes and counts (see trainer.VisionRateMixin).
    vision_lr_scale: float = 0.1
    shape: TinyShape = field(
        default_factory=lambda: TinyShape(
            # 32 px (the task's 48 px pictures resized): 16 image tokens, a third of the step
            # time of 48 px on a CPU, for about the same loss after the same steps.
            image_size=32,
            patch_size=8,
            vision_hidden=64,
            vision_layers=2,
            text_hidden=128,
            text_layers=2,
            heads=4,
            kv_heads=2,
            intermediate=256,
        )
    )

    def key(self) -> str:
        payload = json.dumps({"version": RECIPE_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


DEFAULT_RECIPE = DemoRecipe()


def default_cache_dir() -> Path:
    """$ALTPREF_DEMO_MODEL_DIR, else <user cache>/altpref/demo-model."""
    configured = os.environ.get("ALTPREF_DEMO_MODEL_DIR")
    if configured:
        return Path(configured)
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "altpref" / "demo-model"


def demo_model_path(
    cache_dir: str | Path | None = None, recipe: DemoRecipe = DEFAULT_RECIPE
) -> Path:
    """Where the model for `recipe` lives (built or not)."""
    return Path(cache_dir or default_cache_dir()) / f"demo-{recipe.key()}"


def is_built(path: Path) -> bool:
    return (path / BUILD_INFO).is_file() and (path / "config.json").is_file()


_WORDS = re.compile(r"\w+|[^\w\s]+")  # what the tokenizer's Whitespace pre-tokenizer splits


def task_words() -> frozenset[str]:
    """Every word the demo model's tokenizer knows (it is trained on the task's vocabulary)."""
    from modeltrain.mcmdpo import alttext_task
    from modeltrain.mcmdpo.tiny import TEMPLATE_WORDS

    texts = [*alttext_task.vocabulary(), TEMPLATE_WORDS]
    return frozenset(w for text in texts for w in _WORDS.findall(text))


def knows_all_words(texts) -> bool:
    """Whether the demo model can read and write `texts` with no unknown word (the seeded demo
    can; another project's posts would turn into <unk> for it)."""
    known = task_words()
    return all(w in known for text in texts for w in _WORDS.findall(text))


def ensure_demo_model(
    cache_dir: str | Path | None = None,
    *,
    recipe: DemoRecipe = DEFAULT_RECIPE,
    log: Callable[[str], None] | None = None,
) -> Path:
    """The cached demo model's folder, built first if missing (safe to call from many processes)."""
    target = demo_model_path(cache_dir, recipe)
    if is_built(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        info = build_demo_model(staging, recipe)
        if log:
            log(
                f"built the demo model in {info['build_seconds']:.1f} s "
                f"({info['steps']} SFT steps, final loss {info['final_loss']:.3f})"
            )
        staging.chmod(0o755)  # mkdtemp makes it private; the web server and workers read it
        try:
            staging.rename(target)
        except OSError:
            if not is_built(target):  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@contextmanager
def one_thread():
    """Run torch on one intra-op thread for the block, then restore the setting.

    A model this small gains little from a second thread, and on a shared 2-core machine two
    contending threads are far slower than one (measured at load 7-9: the demo build took 42 s
    on one thread, over 300 s on two; paper_table's SFT stage likewise)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_demo_model(folder: str | Path, recipe: DemoRecipe = DEFAULT_RECIPE) -> dict:
    """Build the tiny model, SFT it on the task's TAlt split, and save it (model + processor) to `folder`."""
    from modeltrain.mcmdpo import alttext_task

    folder = Path(folder)
    started = time.monotonic()
    with one_thread(), tempfile.TemporaryDirectory(prefix="altpref-demo-build-") as tmp:
        tmp = Path(tmp)
        task = alttext_task.write_task(
            tmp / "task", seed=recipe.seed, talt=recipe.talt_records, palt=0, test=0
        )
        final, result = train_sft_stage(task.talt, tmp, recipe)
        folder.mkdir(parents=True, exist_ok=True)
        for item in final.iterdir():
            shutil.move(str(item), folder / item.name)
    losses = [h["loss"] for h in result.history if h.get("loss") is not None]
    info = {
        "recipe": asdict(recipe),
        "recipe_version": RECIPE_VERSION,
        "steps": result.global_step,
        "final_loss": losses[-1] if losses else float("nan"),
        "build_seconds": time.monotonic() - started,
    }
    (folder / BUILD_INFO).write_text(json.dumps(info, indent=1))
    return info


def save_untrained(folder: str | Path, recipe: DemoRecipe = DEFAULT_RECIPE) -> Path:
    """The randomly initialised tiny model (task tokenizer, recipe's shape and seed) in `folder`."""
    from modeltrain.mcmdpo import alttext_task
    from modeltrain.mcmdpo.tiny import build_tiny_llava

    folder = Path(folder)
    model, processor = build_tiny_llava(
        alttext_task.vocabulary(), seed=recipe.seed, shape=recipe.shape
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def train_sft_stage(talt_dir: Path, work_dir: Path, recipe: DemoRecipe, *, paradigm: str = "both"):
    """SFT a fresh tiny model on `talt_dir`; returns (final model folder, TrainingResult)."""
    from modeltrain.mcmdpo.run import run_training

    init = save_untrained(Path(work_dir) / "init", recipe)
    config = sft_config(
        base_model=str(init),
        steps=recipe.steps,
        batch_size=recipe.batch_size,
        learning_rate=recipe.learning_rate,
        vision_lr_scale=recipe.vision_lr_scale,
        seed=recipe.seed,
        paradigm=paradigm,
    )
    result = run_training(config, talt_dir, Path(work_dir) / "sft")
    return result.final_dir, result


def sft_config(
    *,
    base_model: str,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    paradigm: str = "both",
    vision_lr_scale: float = 1.0,
):
    """The SFT settings of the demo build (and of paper_table's SFT stage)."""
    from modeltrain.mcmdpo.config import MCMDPOConfig

    return MCMDPOConfig(
        method="sft",
        base_model=base_model,
        paradigm=paradigm,
        learning_rate=learning_rate,
        vision_lr_scale=vision_lr_scale,
        per_device_batch_size=batch_size,
        max_steps=steps,
        warmup_ratio=0.05,
        lr_scheduler="cosine",
        save_steps=10**9,  # one build, no resumes: no intermediate checkpoints to write
        save_total_limit=None,
        logging_steps=20,
        resume=False,
        seed=seed,
    )


def _examples(model_dir: Path, count: int) -> list[tuple[str, str, str]]:
    """(context, reference, generated) for `count` held-out task posts."""
    from modeltrain.mcmdpo import alttext_task
    from modeltrain.mcmdpo.formats import read_records
    from modeltrain.mcmdpo.generate import generate_alt_texts, load_trained

    with tempfile.TemporaryDirectory() as tmp:
        task = alttext_task.write_task(tmp, seed=1, talt=0, palt=count, test=count)
        records = read_records(task.palt, require_rejected=False)[:count]
        records += read_records(task.test, require_rejected=False)[:count]
        model, processor = load_trained(model_dir)
        outputs = generate_alt_texts(
            model,
            processor,
            [(r.image_path, r.context) for r in records],
            num_beams=3,
            max_new_tokens=32,
        )
    return [(r.context, r.chosen, o) for r, o in zip(records, outputs, strict=True)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modeltrain.mcmdpo.demo_model", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--cache-dir", help="default: $ALTPREF_DEMO_MODEL_DIR or ~/.cache/altpref/demo-model"
    )
    parser.add_argument(
        "--examples", type=int, default=3, help="generated examples to print per split"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    path = ensure_demo_model(args.cache_dir, log=print)
    print(f"demo model: {path} (ready in {time.monotonic() - started:.1f} s)")
    from modeltrain.mcmdpo.generate import load_trained
    from modeltrain.mcmdpo.picture_probe import describe, picture_use

    with one_thread():
        model, processor = load_trained(path)
        print(f"reads the picture (unseen posts): {describe(picture_use(model, processor))}")
    if args.examples:
        for context, reference, generated in _examples(path, args.examples):
            print(f"  post:      {context}\n  reference: {reference}\n  model:     {generated}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
