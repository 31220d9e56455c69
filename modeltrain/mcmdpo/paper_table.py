"""The MCM-DPO paper's table in miniature: SFT, SFT -> DPO and SFT -> MCM-DPO on the alt-text task, on a CPU.

    python -m modeltrain.mcmdpo.paper_table [--seeds N] [--json] [--quick] [--paradigms]

Per seed: the task (`alttext_task`) is written with that seed; a fresh tiny LLaVA is SFT-trained
on its TAlt split (the SFT stage, `demo_model.train_sft_stage`); then three rows start from that
same SFT-stage model and get the same budget (steps, batch, learning rate) on the PAlt split:

- SFT: more SFT on the chosen alt-texts (the paper's SFT baseline),
- SFT -> DPO: trl's DPO on chosen vs rejected,
- SFT -> MCM-DPO: MCM-DPO (response, image and context margins).

`--paradigms` adds the paper's four paradigms for MCM-DPO (is the vision encoder trained in the
SFT stage, in the preference stage); each has its own SFT stage, since that is what differs.

Each model then writes alt-text for the held-out test split (combinations never seen in
training; beam search as the reference implementation) and is scored with the reference-exact
scorer (`modeltrain.scoring`: BLEU-1, BLEU-4, METEOR, ROUGE-L, CIDEr). On the held-out
preference pairs: "pref acc" is the share of pairs whose chosen alt-text the model gives a
higher log-probability than the rejected one, and the margins are the implicit reward margins
beta * (h(winner) - h(loser)), h = log pi - log pi_ref, against the SFT-stage model, for the
response (chosen vs rejected), image (own vs corrupted image) and context (own vs another post's
context) dimensions, as the training logs report them. Rows give mean +- sd over seeds.

The rows are what the runs produce: nothing here picks a seed or a metric to favour a method.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from modeltrain.mcmdpo.demo_model import DEFAULT_RECIPE, PREFERENCE_DEFAULTS, DemoRecipe
from modeltrain.mcmdpo.tiny import TinyShape

METRICS = ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
PREFERENCE = ("pref_acc", "margin_response", "margin_image", "margin_context")
COLUMNS = METRICS + PREFERENCE
_SCORER_KEYS = {
    "BLEU-1": "bleu_1",
    "BLEU-4": "bleu_4",
    "METEOR": "METEOR",
    "ROUGE-L": "ROUGE-L",
    "CIDEr": "CIDEr",
}
MAIN_ROWS = ("SFT", "SFT -> DPO", "SFT -> MCM-DPO")


@dataclass(frozen=True)
class TableConfig:
    """Sizes and hyper-parameters; the preference stage is the same for every row."""

    seeds: int = 3
    talt: int = DEFAULT_RECIPE.talt_records
    palt: int = 192
    test: int = 48
    sft: DemoRecipe = DEFAULT_RECIPE  # the SFT stage (its seed is replaced per run)
    steps: int = 48  # preference stage: same steps, batch and learning rate for every row
    batch_size: int = 8
    learning_rate: float = PREFERENCE_DEFAULTS["learning_rate"]
    beta: float = PREFERENCE_DEFAULTS["beta"]
    num_beams: int = 3
    max_new_tokens: int = 32
    paradigms: bool = False
    with_untrained: bool = True  # also score the random model the SFT stage starts from


QUICK = TableConfig(
    seeds=1,
    talt=64,
    palt=24,
    test=12,
    sft=DemoRecipe(
        talt_records=64,
        steps=40,
        batch_size=8,
        learning_rate=5e-3,
        shape=TinyShape(image_size=48, patch_size=16),
    ),
    steps=3,
    batch_size=4,
    num_beams=1,
    max_new_tokens=24,
)


def run_table(config: TableConfig, work_dir: str | Path | None = None, log=print) -> dict:
    """Train and score every row for every seed; returns per-seed rows and their summary."""
    from modeltrain.mcmdpo.demo_model import one_thread

    started = time.monotonic()
    per_seed: list[dict[str, dict]] = []
    with one_thread(), tempfile.TemporaryDirectory(prefix="altpref-paper-table-") as tmp:
        root = Path(work_dir or tmp)
        for seed in range(config.seeds):
            seed_started = time.monotonic()
            per_seed.append(run_seed(config, seed, root / f"seed-{seed}", log))
            log(f"seed {seed}: {time.monotonic() - seed_started:.0f} s")
    return {
        "config": _jsonable(asdict(config)),
        "per_seed": per_seed,
        "summary": summarise(per_seed),
        "ordering": ordering(per_seed),
        "wall_seconds": time.monotonic() - started,
    }


def run_seed(config: TableConfig, seed: int, folder: Path, log=print) -> dict[str, dict]:
    from modeltrain.mcmdpo import alttext_task
    from modeltrain.mcmdpo.demo_model import save_untrained, train_sft_stage

    task = alttext_task.write_task(
        folder / "task", seed=seed, talt=config.talt, palt=config.palt, test=config.test
    )
    recipe = replace(config.sft, seed=seed, talt_records=config.talt)
    rows: dict[str, dict] = {}
    paradigms = ["both", "frozen", "sft_only", "preference_only"] if config.paradigms else ["both"]
    for paradigm in paradigms:
        sft_stage, _ = train_sft_stage(
            task.talt, folder / f"sft-{paradigm}", recipe, paradigm=paradigm
        )
        reference = _Reference(sft_stage, task.test, config)
        if paradigm == "both":
            if config.with_untrained:
                untrained = save_untrained(folder / "untrained", recipe)
                rows["untrained"] = evaluate(untrained, task.test, reference, config)
            rows["SFT stage"] = evaluate(sft_stage, task.test, reference, config)
            methods = {"SFT": "sft", "SFT -> DPO": "dpo", "SFT -> MCM-DPO": "mcmdpo"}
        else:
            methods = {f"SFT -> MCM-DPO ({paradigm})": "mcmdpo"}
        for name, method in methods.items():
            model_dir = preference_stage(
                method,
                sft_stage,
                task.palt,
                folder / f"{method}-{paradigm}",
                config,
                seed,
                paradigm,
            )
            rows[name] = evaluate(model_dir, task.test, reference, config)
            log(
                f"  seed {seed} {name}: ROUGE-L {rows[name]['ROUGE-L']:.2f} CIDEr {rows[name]['CIDEr']:.2f}"
            )
    return rows


def preference_stage(
    method: str, base: Path, palt: Path, out: Path, config: TableConfig, seed: int, paradigm: str
) -> Path:
    """One row's training from the SFT-stage model: the same budget whatever the method."""
    from modeltrain.mcmdpo.config import MCMDPOConfig
    from modeltrain.mcmdpo.run import run_training

    training = MCMDPOConfig(
        method=method,
        base_model=str(base),
        paradigm=paradigm,
        learning_rate=config.learning_rate,
        # The SFT stage's ratio for every row alike (see trainer.VisionRateMixin).
        vision_lr_scale=config.sft.vision_lr_scale,
        use_lora=PREFERENCE_DEFAULTS["use_lora"],
        per_device_batch_size=config.batch_size,
        max_steps=config.steps,
        warmup_ratio=PREFERENCE_DEFAULTS["warmup_ratio"],
        lr_scheduler=PREFERENCE_DEFAULTS["lr_scheduler"],
        beta=config.beta,
        save_steps=10**9,
        save_total_limit=None,
        logging_steps=max(1, config.steps // 4),
        resume=False,
        seed=seed,
    )
    return run_training(training, palt, out).final_dir


class _Reference:
    """The SFT-stage model's held-out condition log-probs (the margins' reference), computed once."""

    def __init__(self, model_dir: Path, test_dir: Path, config: TableConfig):
        self.model_dir, self.test_dir, self.config = model_dir, test_dir, config
        self._logps = None

    def logps(self, dataset):
        if self._logps is None:
            from modeltrain.mcmdpo.generate import load_trained
            from modeltrain.mcmdpo.refcache import dataset_condition_logps

            model, _ = load_trained(self.model_dir)
            self._logps = dataset_condition_logps(model, dataset, batch_size=8)
        return self._logps


def evaluate(model_dir: Path, test_dir: Path, reference: _Reference, config: TableConfig) -> dict:
    """Reference-exact scores of the model's alt-text on the test split, and its preference metrics."""
    from modeltrain.mcmdpo.data import NegativeSpec, PreferenceDataset
    from modeltrain.mcmdpo.formats import read_records
    from modeltrain.mcmdpo.generate import generate_alt_texts, load_trained
    from modeltrain.mcmdpo.loss import reward_margins
    from modeltrain.mcmdpo.refcache import dataset_condition_logps
    from modeltrain.scoring import score_records

    model, processor = load_trained(model_dir)
    records = read_records(test_dir)
    outputs = generate_alt_texts(
        model,
        processor,
        [(r.image_path, r.context) for r in records],
        num_beams=config.num_beams,
        max_new_tokens=config.max_new_tokens,
        batch_size=16,
    )
    summary = score_records(
        {"idx": i, "chosen": r.chosen, "response": o}
        for i, (r, o) in enumerate(zip(records, outputs, strict=True))
    ).summary
    row = {name: float(summary[key]) for name, key in _SCORER_KEYS.items()}
    # Fixed negatives (seed 0, noise) for every model, so rows compare on the same pairs.
    dataset = PreferenceDataset(records, processor, negatives=NegativeSpec())
    policy = dataset_condition_logps(model, dataset, batch_size=8)
    margins = reward_margins(policy, reference.logps(dataset), config.beta)
    row["pref_acc"] = float((policy[:, 0, 0, 0] > policy[:, 0, 0, 1]).float().mean())
    for name in ("response", "image", "context"):
        row[f"margin_{name}"] = float(margins[name].mean())
    row["examples"] = [
        {"context": r.context, "reference": r.chosen, "generated": o}
        for r, o in list(zip(records, outputs, strict=True))[:3]
    ]
    return row


# --- summary and printing ----------------------------------------------------------------------


def summarise(per_seed: list[dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """mean, sd (0 for one seed), min and max of every column, per row."""
    out: dict[str, dict[str, dict]] = {}
    for name in per_seed[0]:
        out[name] = {}
        for column in COLUMNS:
            values = [seed_rows[name][column] for seed_rows in per_seed]
            out[name][column] = {
                "mean": statistics.fmean(values),
                "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values),
                "max": max(values),
            }
    return out


def ordering(per_seed: list[dict[str, dict]]) -> dict[str, dict]:
    """Whether MCM-DPO > DPO > SFT on ROUGE-L and CIDEr, in mean and with disjoint seed ranges."""
    result = {}
    for metric in ("ROUGE-L", "CIDEr"):
        values = {name: [rows[name][metric] for rows in per_seed] for name in MAIN_ROWS}
        sft, dpo, mcm = (values[name] for name in MAIN_ROWS)
        result[metric] = {
            "means_ordered": statistics.fmean(mcm) > statistics.fmean(dpo) > statistics.fmean(sft),
            "ranges_disjoint": min(mcm) > max(dpo) and min(dpo) > max(sft),
        }
    return result


def format_table(result: dict) -> str:
    summary = result["summary"]
    width = max(len(name) for name in summary) + 2
    head = f"{'':<{width}}" + "".join(f"{c:>16}" for c in COLUMNS)
    lines = [head, "-" * len(head)]
    for name, columns in summary.items():
        cells = []
        for column in COLUMNS:
            stats = columns[column]
            digits = 3 if column in PREFERENCE else 2
            cells.append(f"{stats['mean']:.{digits}f} ± {stats['sd']:.{digits}f}".rjust(16))
        lines.append(f"{name:<{width}}" + "".join(cells))
    seeds = len(result["per_seed"])
    lines.append("")
    lines.append(
        f"{seeds} seed(s); scores x100 (reference scorer); margins: beta * reward margin vs the "
        "SFT-stage model; pref acc: log p(chosen) > log p(rejected) on held-out pairs"
    )
    for metric, check in result["ordering"].items():
        lines.append(
            f"MCM-DPO > DPO > SFT on {metric}: means {'yes' if check['means_ordered'] else 'no'}, "
            f"seed ranges disjoint {'yes' if check['ranges_disjoint'] else 'no'}"
        )
    lines.append(f"wall time {result['wall_seconds']:.0f} s")
    return "\n".join(lines)


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modeltrain.mcmdpo.paper_table", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seeds", type=int, default=None, help="seeds to average (default 3)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quick", action="store_true", help="a small configuration (tests)")
    parser.add_argument("--paradigms", action="store_true", help="add MCM-DPO's four paradigms")
    parser.add_argument("--work-dir", help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else TableConfig()
    if args.seeds is not None:
        if args.seeds < 1:
            parser.error("--seeds must be at least 1")
        config = replace(config, seeds=args.seeds)
    if args.paradigms:
        config = replace(config, paradigms=True)
    # Progress goes to stderr, so --json keeps stdout one JSON document.
    result = run_table(config, args.work_dir, log=lambda line: print(line, file=sys.stderr))
    if args.json:
        print(json.dumps(_jsonable(result), indent=1))
    else:
        print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
