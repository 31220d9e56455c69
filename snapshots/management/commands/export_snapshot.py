"""Export a TAlt, PAlt or test snapshot folder from the command line (no Snapshot row)."""

import json

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Project
from core.errors import ApplicationError
from snapshots.services import snapshot_export, snapshot_filters_build, snapshot_formats_parse


class Command(BaseCommand):
    help = "Write a snapshot folder: data files in the chosen formats plus manifest.json."

    def add_arguments(self, parser):
        parser.add_argument("--kind", required=True, choices=["palt", "talt", "test"])
        parser.add_argument("--out", required=True, help="Folder to create (must be empty).")
        parser.add_argument("--project", help="Project name (default: all projects).")
        parser.add_argument("--platform", action="append", default=[])
        parser.add_argument("--split", action="append", default=[])
        parser.add_argument("--min-confidence", type=float, default=0.0)
        parser.add_argument("--facet", nargs="+", action="extend", default=[])
        parser.add_argument("--include-llm-only", action="store_true")
        parser.add_argument("--no-imported", action="store_true", help="Leave out imported pairs.")
        parser.add_argument(
            "--relative-images",
            action="store_true",
            help="Copy images into the folder and write relative paths.",
        )
        parser.add_argument(
            "--format", action="append", default=[], choices=["mcmdpo", "jsonl", "parquet", "all"]
        )
        parser.add_argument("--json", action="store_true", help="Print the manifest as JSON.")

    def handle(self, *args, **opts):
        project = None
        if opts["project"]:
            project = Project.objects.filter(name=opts["project"]).first()
            if project is None:
                raise CommandError(f'No project named "{opts["project"]}".')
        try:
            filters = snapshot_filters_build(
                kind=opts["kind"],
                project=project,
                platforms=opts["platform"],
                splits=opts["split"],
                min_confidence=opts["min_confidence"],
                facets=opts["facet"] or None,
                include_llm_only=opts["include_llm_only"],
                include_imported=not opts["no_imported"],
                image_paths="relative" if opts["relative_images"] else "absolute",
            )
            manifest = snapshot_export(
                kind=opts["kind"],
                filters=filters,
                formats=snapshot_formats_parse(opts["format"] or None),
                out_dir=opts["out"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        if opts["json"]:
            self.stdout.write(json.dumps(manifest, indent=2, sort_keys=True))
            return
        counts = manifest["counts"]
        self.stdout.write(f"{opts['kind']}: {counts['records']} records written to {opts['out']}")
        if counts["skipped"]:
            self.stdout.write(
                "skipped: " + ", ".join(f"{k} {v}" for k, v in counts["skipped"].items())
            )
        for name, entry in manifest["files"].items():
            if not name.startswith("images/"):
                self.stdout.write(f"  {name}  {entry['records']} records  sha256 {entry['sha256']}")
