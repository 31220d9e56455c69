"""Gemini through the official google-genai SDK: inline image bytes, JSON answers with a schema.

The SDK's own retries are switched off (HttpRetryOptions(attempts=1)) so that the run's retry
policy (services.llm_generate: backoff on 429/5xx/timeouts, counted and recorded) is the only one.
"""

from __future__ import annotations

import time
from typing import Any

from .base import LabelerError, RawAnswer


def _is_timeout(exc: BaseException) -> bool:
    # httpx and its fork httpx2 (which the SDK may use) have distinct but same-named classes.
    return any(c.__name__ in ("TimeoutException", "TimeoutError") for c in type(exc).__mro__)


def _is_connection_error(exc: BaseException) -> bool:
    return any(
        c.__name__ in ("ConnectError", "RemoteProtocolError", "ConnectionError", "NetworkError")
        for c in type(exc).__mro__
    )


def gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON Schema (answers.py) in Gemini's responseSchema dialect: upper-case type names,
    and no additionalProperties (Gemini's Schema has no such field; it answers only the listed
    properties anyway)."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "additionalProperties":
            continue
        if key == "type":
            out[key] = value.upper()
        elif key == "properties":
            out[key] = {name: gemini_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = gemini_schema(value)
        else:
            out[key] = value
    return out


class GeminiLabeler:
    provider = "gemini"

    def __init__(self, *, api_key: str, model_id: str, base_url: str = "", timeout_s: float = 60.0):
        from google import genai
        from google.genai import types

        self.model_id = model_id
        self._types = types
        options = types.HttpOptions(
            # v1beta: the documented REST surface for responseSchema / JSON mode.
            api_version="v1beta",
            timeout=int(timeout_s * 1000),  # milliseconds
            retry_options=types.HttpRetryOptions(attempts=1),
            **({"base_url": base_url} if base_url else {}),
        )
        self._client = genai.Client(api_key=api_key, http_options=options)

    def generate(
        self, *, prompt: str, image_bytes: bytes, mime: str, schema: dict[str, Any]
    ) -> RawAnswer:
        from google.genai import errors

        types = self._types
        config = types.GenerateContentConfig(
            response_mime_type="application/json",
            response_schema=types.Schema.model_validate(gemini_schema(schema)),
            temperature=0,
        )
        contents = [types.Part.from_bytes(data=image_bytes, mime_type=mime), prompt]
        start = time.monotonic()
        try:
            response = self._client.models.generate_content(
                model=self.model_id, contents=contents, config=config
            )
        except errors.APIError as exc:
            code = int(exc.code or 0)
            raise LabelerError(
                f"Gemini answered HTTP {code}: {exc.message or exc.status or ''}".strip(),
                transient=code == 429 or code >= 500,
                http_status=code or None,
                latency_ms=_ms(start),
            ) from exc
        except RecursionError as exc:
            # The SDK json-parses a schema'd answer itself; 100k-deep JSON overflows it. That
            # is a bad answer (HTTP 200), not an outage: no retry, counted against the item.
            raise LabelerError(
                "Gemini's answer nests JSON too deeply to parse.",
                transient=False,
                http_status=200,
                latency_ms=_ms(start),
            ) from exc
        except Exception as exc:
            if _is_timeout(exc):
                raise LabelerError(
                    "Gemini did not answer within the timeout.",
                    transient=True,
                    latency_ms=_ms(start),
                ) from exc
            if _is_connection_error(exc):
                raise LabelerError(
                    f"Could not reach Gemini: {exc}", transient=True, latency_ms=_ms(start)
                ) from exc
            raise
        usage = response.usage_metadata
        try:
            text = response.text or ""
        except ValueError:  # the SDK raises on candidates without text parts
            text = ""
        return RawAnswer(
            text=text,
            input_tokens=int(getattr(usage, "prompt_token_count", 0) or 0),
            output_tokens=int(getattr(usage, "candidates_token_count", 0) or 0)
            + int(getattr(usage, "thoughts_token_count", 0) or 0),
            latency_ms=_ms(start),
        )


def _ms(start: float) -> int:
    return int((time.monotonic() - start) * 1000)
