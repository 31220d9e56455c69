"""The one labeler interface: send a prompt with an image and a response schema, get JSON text.

Implementations (Gemini; tests use the real Gemini SDK against a fake server) raise
LabelerError for anything that is not an answer; `transient` says whether retrying may help
(429, 5xx, timeouts, connection errors). Parsing and checking the answer is not their job:
see answers.py, so every implementation is held to the same schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class RawAnswer:
    text: str
    input_tokens: int
    output_tokens: int
    latency_ms: int
    http_status: int = 200


class LabelerError(Exception):
    def __init__(
        self, message: str, *, transient: bool, http_status: int | None = None, latency_ms: int = 0
    ):
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.http_status = http_status
        self.latency_ms = latency_ms


class Labeler(Protocol):
    provider: str
    model_id: str

    def generate(
        self, *, prompt: str, image_bytes: bytes, mime: str, schema: dict[str, Any]
    ) -> RawAnswer: ...
