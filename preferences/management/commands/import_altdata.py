"""python manage.py import_altdata PATH [PATH ...] --images-dir DIR [...]"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Platform, Split
from preferences.imports import altdata_import
from preferences.projects import project_get_or_create


class Command(BaseCommand):
    help = (
        "Import alt-text records (MCM-DPO reference JSON/JSONL, generic JSONL or CSV). "
        "Exits non-zero when any record was rejected."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument(
            "--images-dir",
            type=Path,
            help="folder image paths are relative to (default: the file's)",
        )
        parser.add_argument(
            "--platform",
            choices=Platform.values,
            help="default: the record's ds_name, else guessed from the file name, else other",
        )
        parser.add_argument(
            "--split", choices=Split.values, help="default: guessed from the file name, else train"
        )
        parser.add_argument("--project", default="Default", help="created if missing")
        parser.add_argument(
            "--strict", action="store_true", help="import nothing if anything is bad"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object at the end")

    def handle(self, *args, **opts):
        for path in opts["paths"]:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
        if opts["images_dir"] and not opts["images_dir"].is_dir():
            raise CommandError(f"{opts['images_dir']}: no such folder")
        project, _ = project_get_or_create(name=opts["project"])
        report = altdata_import(
            paths=opts["paths"],
            project=project,
            images_dir=opts["images_dir"],
            platform=opts["platform"],
            split=opts["split"],
            strict=opts["strict"],
        )
        if opts["json"]:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False))
        else:
            for err in report.errors:
                where = f"{err['file']} record {err['record']}" if err["record"] else err["file"]
                self.stderr.write(f"rejected: {where}: {err['reason']}")
            for note in report.notes:
                self.stdout.write(f"note: {note['file']} record {note['record']}: {note['note']}")
            verdict = " (strict: nothing was imported)" if report.rolled_back else ""
            self.stdout.write(
                f"imported {report.imported}, duplicates {report.duplicates}, "
                f"rejected {report.rejected}{verdict}"
            )
        if report.rejected:
            raise SystemExit(1)
