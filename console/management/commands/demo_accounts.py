"""python manage.py demo_accounts [--url URL]: seed the demo (seed_demo) and print what a
newcomer needs, last and in a box: where the app is and the demo accounts with passwords.

`make run` calls it after all install and migrate output, so the accounts are not scrolled
away by it."""

import io
import re

from django.core.management import call_command
from django.core.management.base import BaseCommand

ACCOUNT = re.compile(r"demo account\s+(\S+)\s+password\s+(\S+)")


def box(lines: list[str]) -> str:
    width = max(len(line) for line in lines)
    rule = "+" + "-" * (width + 2) + "+"
    return "\n".join([rule, *(f"| {line:<{width}} |" for line in lines), rule])


class Command(BaseCommand):
    help = "Seed the demo project (once) and print the demo accounts in a box."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, **opts):
        out = io.StringIO()
        call_command("seed_demo", stdout=out, no_color=True)
        text = out.getvalue()
        accounts = ACCOUNT.findall(text)
        others = [
            line.strip() for line in text.splitlines() if line.strip() and not ACCOUNT.search(line)
        ]
        lines = [f"AltPref: open {opts['url']}", ""]
        if accounts:
            lines.append("Demo accounts (passwords are shown this once):")
            lines += [f"  {user:<10}  password  {password}" for user, password in accounts]
        else:
            lines += [
                "Demo accounts: admin, reviewer, annotator (passwords were shown",
                "on the first run). New passwords:",
                "  .venv/bin/python manage.py seed_demo --reset-passwords",
            ]
        lines += ["", *others] if others else []
        self.stdout.write("\n" + box(lines) + "\n")
