"""Versioned prompt templates: files under prompts/, version = a hash of the file's contents.

Editing a template therefore changes its version, which changes the LLMLabeler (a new rater for
blending) and the cache key (old answers are not reused for a new prompt).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from string import Template

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    text: str

    @property
    def version(self) -> str:
        digest = hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:12]
        return f"{self.name}-{digest}"

    def render(self, **values: str) -> str:
        # substitute, not safe_substitute: a missing value is a programming error, not a prompt.
        return Template(self.text).substitute(**values)


def prompt_load(name: str, *, directory: Path | None = None) -> PromptTemplate:
    path = (directory or PROMPT_DIR) / f"{name}.txt"
    return PromptTemplate(name=name, text=path.read_text(encoding="utf-8"))
