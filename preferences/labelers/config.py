"""Gemini settings, prices and the labeler the app uses (None when no API key is set)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

# USD per million tokens (input, output) for paid-tier text/image input, by model-id prefix;
# longest prefix wins. An estimate: the provider's bill is the truth.
PRICES_PER_MILLION: dict[str, tuple[Decimal, Decimal]] = {
    "gemini-2.5-pro": (Decimal("1.25"), Decimal("10.00")),
    "gemini-2.5-flash-lite": (Decimal("0.10"), Decimal("0.40")),
    "gemini-2.5-flash": (Decimal("0.30"), Decimal("2.50")),
    "gemini-2.0-flash": (Decimal("0.10"), Decimal("0.40")),
    "gemini": (Decimal("0.30"), Decimal("2.50")),
}
NOT_CONFIGURED = (
    "The LLM judge is not configured: set GEMINI_API_KEY (and optionally GEMINI_MODEL, "
    "GEMINI_BASE_URL) in the environment and restart."
)


def cost_estimate(*, model_id: str, input_tokens: int, output_tokens: int) -> Decimal:
    prefix = max(
        (p for p in PRICES_PER_MILLION if model_id.startswith(p)), key=len, default="gemini"
    )
    price_in, price_out = PRICES_PER_MILLION[prefix]
    cost = (price_in * input_tokens + price_out * output_tokens) / Decimal(1_000_000)
    return cost.quantize(Decimal("0.000001"))  # the precision LLMCall stores


@dataclass(frozen=True)
class GeminiSettings:
    api_key: str
    model_id: str
    base_url: str
    rpm: int
    max_retries: int
    budget_usd: Decimal
    timeout_s: float
    retry_base_delay_s: float
    batch_size: int


def gemini_settings() -> GeminiSettings:
    return GeminiSettings(
        api_key=getattr(settings, "GEMINI_API_KEY", "") or "",
        model_id=getattr(settings, "GEMINI_MODEL", "gemini-2.5-flash"),
        base_url=getattr(settings, "GEMINI_BASE_URL", "") or "",
        rpm=int(getattr(settings, "GEMINI_RPM", 60)),
        max_retries=int(getattr(settings, "GEMINI_MAX_RETRIES", 3)),
        budget_usd=Decimal(str(getattr(settings, "GEMINI_BUDGET_USD", "5"))),
        timeout_s=float(getattr(settings, "GEMINI_TIMEOUT_S", 60)),
        retry_base_delay_s=float(getattr(settings, "GEMINI_RETRY_BASE_DELAY_S", 2.0)),
        batch_size=int(getattr(settings, "GEMINI_BATCH_SIZE", 10)),
    )


def gemini_configured() -> bool:
    return bool(gemini_settings().api_key)


def labeler_build():
    """The configured labeler, or None without an API key."""
    cfg = gemini_settings()
    if not cfg.api_key:
        return None
    from .gemini import GeminiLabeler

    return GeminiLabeler(
        api_key=cfg.api_key, model_id=cfg.model_id, base_url=cfg.base_url, timeout_s=cfg.timeout_s
    )
