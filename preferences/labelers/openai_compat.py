"""Any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama) over plain HTTP.

POST {base_url}/chat/completions with the image as a data URL and the answer schema as
`response_format: {"type": "json_schema", ...}` (strict). The standard library's urllib is
enough for one JSON request, so no SDK is needed. As with Gemini, there are no retries here:
services.llm_generate's policy (backoff on 429/5xx/timeouts) is the only one, and the answer
text is checked by answers.py like every provider's.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.error
import urllib.request
from typing import Any

from .base import LabelerError, RawAnswer

# Far above any real answer (answers.MAX_ANSWER_CHARS refuses 64k characters) yet bounded, so
# a runaway server cannot fill the worker's memory.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024


class OpenAICompatibleLabeler:
    provider = "openai"

    def __init__(self, *, api_key: str, model_id: str, base_url: str, timeout_s: float = 60.0):
        self.model_id = model_id
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._api_key = api_key
        self._timeout_s = timeout_s

    def request_body(self, *, prompt: str, image_bytes: bytes, mime: str, schema: dict) -> dict:
        data_url = f"data:{mime};base64,{base64.b64encode(image_bytes).decode('ascii')}"
        return {
            "model": self.model_id,
            "temperature": 0,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": data_url}},
                        {"type": "text", "text": prompt},
                    ],
                }
            ],
            # The plain JSON Schema of answers.py is already this dialect (strict mode wants
            # every property required and additionalProperties false, which it has).
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "answer", "strict": True, "schema": schema},
            },
        }

    def generate(
        self, *, prompt: str, image_bytes: bytes, mime: str, schema: dict[str, Any]
    ) -> RawAnswer:
        body = self.request_body(prompt=prompt, image_bytes=image_bytes, mime=mime, schema=schema)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(
            self._url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        start = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            code = exc.code
            raise LabelerError(
                f"The OpenAI-compatible server answered HTTP {code}: {_error_text(exc)}".strip(),
                transient=code == 429 or code >= 500,
                http_status=code,
                latency_ms=_ms(start),
            ) from exc
        except TimeoutError as exc:  # socket.timeout is TimeoutError since Python 3.10
            raise _timeout(start) from exc
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as exc:
            if isinstance(getattr(exc, "reason", None), TimeoutError):
                raise _timeout(start) from exc
            raise LabelerError(
                f"Could not reach the OpenAI-compatible server: {exc}",
                transient=True,
                latency_ms=_ms(start),
            ) from exc
        return _answer(raw, latency_ms=_ms(start))


def _answer(raw: bytes, *, latency_ms: int) -> RawAnswer:
    """The answer text and token counts of a 200 response; a malformed envelope is a bad
    answer (HTTP 200, not retried, counted against the item like an invalid answer text)."""

    def bad(message: str) -> LabelerError:
        return LabelerError(message, transient=False, http_status=200, latency_ms=latency_ms)

    if len(raw) > MAX_RESPONSE_BYTES:
        raise bad(f"The server's response is larger than {MAX_RESPONSE_BYTES:,} bytes.")
    try:
        envelope = json.loads(raw.decode("utf-8", errors="replace"))
        message = envelope["choices"][0]["message"]
        text = message.get("content") or ""
        usage = envelope.get("usage") or {}
        input_tokens = int(usage.get("prompt_tokens") or 0)
        output_tokens = int(usage.get("completion_tokens") or 0)
    except RecursionError:
        raise bad("The server's response nests JSON too deeply to parse.") from None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise bad(f"The server's response is not a chat completion: {exc}") from exc
    if not text and message.get("refusal"):
        raise bad(f"The model refused: {message['refusal']}")
    if not isinstance(text, str):
        raise bad("The chat completion's content is not text.")
    return RawAnswer(
        text=text, input_tokens=input_tokens, output_tokens=output_tokens, latency_ms=latency_ms
    )


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(exc.read(64_000) or b"{}")
        return str(payload.get("error", {}).get("message", ""))
    except (ValueError, AttributeError, RecursionError, OSError):
        return ""


def _timeout(start: float) -> LabelerError:
    return LabelerError(
        "The OpenAI-compatible server did not answer within the timeout.",
        transient=True,
        latency_ms=_ms(start),
    )


def _ms(start: float) -> int:
    return int((time.monotonic() - start) * 1000)
