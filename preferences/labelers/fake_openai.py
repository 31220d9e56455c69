"""A fake OpenAI-compatible server (POST /v1/chat/completions), for tests and offline demos.

It judges and corrects exactly like the fake Gemini server (same `script` behaviours: "ok",
"malformed", "off-schema", "429", "500", "slow", "biased", "nul", "nul-raw", "surrogate",
"deep", "huge"), in the chat-completions wire format. Two more concern the envelope itself:
"bad-envelope" (a 200 whose body is not a chat completion) and "refusal" (the model refuses).

Run it for `make run` demos: python -m preferences.labelers.fake_openai --port 8766, then set
OPENAI_BASE_URL=http://127.0.0.1:8766/v1 OPENAI_MODEL=fake-vlm.
"""

from __future__ import annotations

from .fake_gemini import FakeGemini, serve_cli


class FakeOpenAI(FakeGemini):
    path_pattern = r"(/v1)?/chat/completions"

    def api_key(self, headers) -> str:
        auth = headers.get("Authorization", "")
        return auth.removeprefix("Bearer ")

    def answer(self, body: dict, behaviour: str) -> dict | bytes:
        if behaviour == "bad-envelope":
            return b'{"id": "x", "object": "chat.completion", "choices": "none"'
        content = body.get("messages", [{}])[-1].get("content", [])
        prompt = "\n".join(p.get("text", "") for p in content if p.get("type") == "text")
        schema = body.get("response_format", {}).get("json_schema", {}).get("schema", {})
        text = self.answer_text(prompt=prompt, schema=schema, behaviour=behaviour)
        message = {"role": "assistant", "content": text}
        if behaviour == "refusal":
            message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
        prompt_tokens, completion_tokens = 300 + len(prompt) // 4, max(1, len(text) // 4)
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def error(self, code: int) -> dict:
        kind = {404: "not_found", 429: "rate_limit_exceeded", 500: "server_error"}[code]
        return {"error": {"message": f"Fake {kind}", "type": kind, "code": kind}}


def main() -> None:
    serve_cli(
        FakeOpenAI(),
        default_port=8766,
        banner="Fake OpenAI-compatible server on {url}/v1 (Ctrl-C to stop)",
        description=__doc__.splitlines()[0],
    )


if __name__ == "__main__":
    main()
