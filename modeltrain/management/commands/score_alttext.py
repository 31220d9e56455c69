"""Score a JSON-Lines file of {"idx", "chosen", "response"} exactly as MCM-DPO's get_score.py does."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from modeltrain.scoring import (
    SUMMARY_KEYS,
    ScoreInputError,
    ScorerDataMissing,
    score_file,
)


class Command(BaseCommand):
    help = "Score alt-text responses against references (BLEU, METEOR, ROUGE-L, CIDEr-D, edits)."

    def add_arguments(self, parser):
        parser.add_argument("file", help='JSON lines: {"idx", "chosen", "response"}')
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")
        parser.add_argument("--items", help="also write per-item scores to this JSON file")

    def handle(self, *args, **options):
        try:
            report = score_file(options["file"])
        except (ScoreInputError, ScorerDataMissing) as exc:
            raise CommandError(str(exc)) from None
        summary = {key: report.summary[key] for key in SUMMARY_KEYS}
        if options["items"]:
            with open(options["items"], "w", encoding="utf-8") as handle:
                json.dump(report.items, handle, ensure_ascii=False, indent=2)
        if options["json"]:
            self.stdout.write(json.dumps(summary))
            return
        for key in SUMMARY_KEYS:
            self.stdout.write(f"{key:>18}  {summary[key]}")
