"""A fake Gemini server speaking the generateContent REST shape, for tests and offline demos.

    POST /v1beta/models/{model}:generateContent
    -> {"candidates": [{"content": {"parts": [{"text": "..."}]}}], "usageMetadata": {...}}

It answers like a sensible, position-consistent judge (the longer alt-text wins every facet)
and a grammar fixer (capitalise, fix "teh", end with a period). `script` makes the next
requests misbehave: "ok", "malformed" (not JSON), "off-schema" (JSON of the wrong shape),
"429", "500", "slow" (sleeps past the client's timeout), "biased" (always answers "A", so the
two orders disagree). Hostile answers: "nul" (a JSON-escaped NUL in the rationale or corrected
text), "nul-raw" (a raw NUL character in the answer text), "surrogate" (a lone surrogate),
"deep" (JSON nested 100,000 deep), "huge" (a 5 MB rationale or correction).
Every request is recorded in `requests` for assertions.

Run it for `make run` demos: python -m preferences.labelers.fake_gemini --port 8765, then set
GEMINI_API_KEY=fake GEMINI_BASE_URL=http://127.0.0.1:8765.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_BLOCK = re.compile(r"^(POST TEXT|ALT-TEXT|ALT-TEXT A|ALT-TEXT B):\n<<<(.*?)>>>", re.S | re.M)


def _blocks(prompt: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in _BLOCK.finditer(prompt)}


def _fix(text: str) -> str:
    text = re.sub(r"\bteh\b", "the", text.strip())
    text = re.sub(r"\s+", " ", text)
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    if text and text[-1] not in ".!?":
        text += "."
    return text


def _poison(payload: dict, poison: str) -> None:
    """Put `poison` into every free-text field of an answer."""
    for entry in payload.get("facets", []):
        entry["rationale"] += poison
    if "corrected" in payload:
        payload["corrected"] += poison


class FakeGemini:
    def __init__(self, *, slow_seconds: float = 2.0):
        self.requests: list[dict] = []
        self.script: list[str] = []
        self.default = "ok"
        self.slow_seconds = slow_seconds
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- behaviour ----------------------------------------------------------------------
    def next_behaviour(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def answer_text(self, *, prompt: str, schema: dict, behaviour: str) -> str:
        """The answer text a (mis)behaving judge gives; the same for every wire format."""
        blocks = _blocks(prompt)
        if "ALT-TEXT A" in blocks:
            item = schema["properties"]["facets"]["items"]["properties"]["facet"]
            first, second = blocks["ALT-TEXT A"], blocks["ALT-TEXT B"]
            if behaviour == "biased":
                verdict = "A"
            else:
                verdict = (
                    "A" if len(first) > len(second) else "B" if len(second) > len(first) else "tie"
                )
            payload = {
                "facets": [
                    {"facet": key, "verdict": verdict, "rationale": f"{key}: {verdict} is better."}
                    for key in item["enum"]
                ]
            }
        else:
            original = blocks.get("ALT-TEXT", "")
            fixed = _fix(original)
            payload = {"corrected": fixed, "changed": fixed != original}
        if behaviour == "off-schema":
            payload = {"answer": "A", "confidence": 0.9}
        poison = {"nul": "\x00", "surrogate": "\ud800", "huge": "x" * 5_000_000}.get(behaviour)
        if poison is not None:
            _poison(payload, poison)
        text = json.dumps(payload)
        if behaviour == "nul-raw":
            text = text[:-1] + ', "note": "raw\x00nul"}'
        if behaviour == "deep":
            text = text[:-1] + ', "note": ' + "[" * 100_000 + "]" * 100_000 + "}"
        if behaviour == "malformed":
            text = text[: len(text) // 2] + " ...oops"
        return text

    # --- the wire format (FakeOpenAI overrides these) -----------------------------------
    path_pattern = r"/v1(beta)?/models/[^/:]+:generateContent"

    def api_key(self, headers) -> str:
        return headers.get("x-goog-api-key", "")

    def answer(self, body: dict, behaviour: str) -> dict:
        parts = body.get("contents", [{}])[-1].get("parts", [])
        prompt = "\n".join(p.get("text", "") for p in parts if "text" in p)
        schema = body.get("generationConfig", {}).get("responseSchema", {})
        text = self.answer_text(prompt=prompt, schema=schema, behaviour=behaviour)
        return {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": {
                "promptTokenCount": 300 + len(prompt) // 4,
                "candidatesTokenCount": max(1, len(text) // 4),
                "totalTokenCount": 300 + len(prompt) // 4 + max(1, len(text) // 4),
            },
            "modelVersion": "fake-gemini",
        }

    def error(self, code: int) -> dict:
        status, message = {
            404: ("NOT_FOUND", "Not found"),
            429: ("RESOURCE_EXHAUSTED", "Quota"),
            500: ("INTERNAL", "Boom"),
        }[code]
        return {"error": {"code": code, "message": message, "status": status}}

    # --- server -------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet in tests
                pass

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {}
                behaviour = fake.next_behaviour()
                with fake._lock:
                    fake.requests.append(
                        {
                            "path": self.path,
                            "body": body,
                            "api_key": fake.api_key(self.headers),
                            "behaviour": behaviour,
                        }
                    )
                if not re.fullmatch(fake.path_pattern, self.path):
                    return self._send(404, fake.error(404))
                if behaviour in ("429", "500"):
                    return self._send(int(behaviour), fake.error(int(behaviour)))
                if behaviour == "slow":
                    time.sleep(fake.slow_seconds)
                self._send(200, fake.answer(body, behaviour))

            def _send(self, status: int, payload: dict | bytes):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://{host}:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def serve_cli(fake, *, default_port: int, banner: str, description: str) -> None:
    """`python -m ...fake_<provider> [--port N]`: serve until Ctrl-C; `banner` gets the URL."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=default_port)
    args = parser.parse_args()
    url = fake.start(port=args.port)
    print(banner.format(url=url), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


def main() -> None:
    serve_cli(
        FakeGemini(),
        default_port=8765,
        banner="Fake Gemini on {url} (Ctrl-C to stop)",
        description=__doc__.splitlines()[0],
    )


if __name__ == "__main__":
    main()
