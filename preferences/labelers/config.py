"""The registry of LLM providers: how each is configured, priced and built.

A provider is one registered `Provider`: its settings prefix (GEMINI_*, OPENAI_*), its prices
and a factory for the client that speaks its wire format. Everything else (prompts, the answer
schema, answer checks, retries, budget, cache) is shared, so adding a provider is one client
module and one `provider_register` call. The labeler row (LLMLabeler.provider) and the answer
cache store the provider key, so two providers serving a model of the same name never mix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from core.errors import ApplicationError

from .base import Labeler

NOT_CONFIGURED = (
    "The LLM judge is not configured: set GEMINI_API_KEY (Gemini) or OPENAI_BASE_URL / "
    "OPENAI_API_KEY (an OpenAI-compatible server: OpenAI, vLLM, Ollama) in the environment "
    'and restart. README, "LLM judge".'
)


@dataclass(frozen=True)
class ProviderSettings:
    """One provider's settings, read from `<PREFIX>_*` Django settings (the environment)."""

    provider: str
    api_key: str
    model_id: str
    base_url: str
    rpm: int
    max_retries: int
    budget_usd: Decimal
    timeout_s: float
    retry_base_delay_s: float
    batch_size: int
    configured: bool


@dataclass(frozen=True)
class Provider:
    key: str
    label: str
    prefix: str  # settings prefix: GEMINI -> GEMINI_API_KEY, GEMINI_MODEL, ...
    default_model: str
    # USD per million tokens (input, output) by model-id prefix; the longest prefix wins and
    # "" is the fallback. An estimate: the provider's bill is the truth.
    prices: dict[str, tuple[Decimal, Decimal]]
    build: Callable[[ProviderSettings], Labeler]
    # Self-hosted OpenAI-compatible servers (vLLM, Ollama) need a base URL but no key.
    needs_key: bool = True

    def settings(self) -> ProviderSettings:
        def get(name: str, default):
            return getattr(settings, f"{self.prefix}_{name}", default)

        api_key = get("API_KEY", "") or ""
        base_url = get("BASE_URL", "") or ""
        return ProviderSettings(
            provider=self.key,
            api_key=api_key,
            model_id=get("MODEL", "") or self.default_model,
            base_url=base_url,
            rpm=int(get("RPM", 60)),
            max_retries=int(get("MAX_RETRIES", 3)),
            budget_usd=Decimal(str(get("BUDGET_USD", "5"))),
            timeout_s=float(get("TIMEOUT_S", 60)),
            retry_base_delay_s=float(get("RETRY_BASE_DELAY_S", 2.0)),
            batch_size=int(get("BATCH_SIZE", 10)),
            configured=bool(api_key) if self.needs_key else bool(api_key or base_url),
        )

    def cost(self, *, model_id: str, input_tokens: int, output_tokens: int) -> Decimal:
        prefix = max((p for p in self.prices if model_id.startswith(p)), key=len, default="")
        price_in, price_out = self.prices[prefix]
        cost = (price_in * input_tokens + price_out * output_tokens) / Decimal(1_000_000)
        return cost.quantize(Decimal("0.000001"))  # the precision LLMCall stores


PROVIDERS: dict[str, Provider] = {}


def provider_register(provider: Provider) -> Provider:
    PROVIDERS[provider.key] = provider
    return provider


def provider_get(key: str) -> Provider:
    try:
        return PROVIDERS[key]
    except KeyError:
        known = ", ".join(PROVIDERS)
        raise ApplicationError(f'Unknown LLM provider "{key}"; use one of: {known}.') from None


def providers_configured() -> list[Provider]:
    return [p for p in PROVIDERS.values() if p.settings().configured]


def provider_default() -> Provider | None:
    """LLM_PROVIDER when it is set and configured, else the first configured provider."""
    configured = providers_configured()
    wanted = getattr(settings, "LLM_PROVIDER", "") or ""
    for provider in configured:
        if provider.key == wanted:
            return provider
    return configured[0] if configured else None


def llm_configured() -> bool:
    return provider_default() is not None


def _build_gemini(cfg: ProviderSettings) -> Labeler:
    from .gemini import GeminiLabeler

    return GeminiLabeler(
        api_key=cfg.api_key, model_id=cfg.model_id, base_url=cfg.base_url, timeout_s=cfg.timeout_s
    )


def _build_openai(cfg: ProviderSettings) -> Labeler:
    from .openai_compat import OpenAICompatibleLabeler

    return OpenAICompatibleLabeler(
        api_key=cfg.api_key,
        model_id=cfg.model_id,
        base_url=cfg.base_url or "https://api.openai.com/v1",
        timeout_s=cfg.timeout_s,
    )


provider_register(
    Provider(
        key="gemini",
        label="Gemini (google-genai)",
        prefix="GEMINI",
        default_model="gemini-2.5-flash",
        prices={
            "gemini-2.5-pro": (Decimal("1.25"), Decimal("10.00")),
            "gemini-2.5-flash-lite": (Decimal("0.10"), Decimal("0.40")),
            "gemini-2.5-flash": (Decimal("0.30"), Decimal("2.50")),
            "gemini-2.0-flash": (Decimal("0.10"), Decimal("0.40")),
            "": (Decimal("0.30"), Decimal("2.50")),
        },
        build=_build_gemini,
    )
)
provider_register(
    Provider(
        key="openai",
        label="OpenAI-compatible (OpenAI, vLLM, Ollama)",
        prefix="OPENAI",
        default_model="gpt-4o-mini",
        prices={
            "gpt-4.1-nano": (Decimal("0.10"), Decimal("0.40")),
            "gpt-4.1-mini": (Decimal("0.40"), Decimal("1.60")),
            "gpt-4.1": (Decimal("2.00"), Decimal("8.00")),
            "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
            "gpt-4o": (Decimal("2.50"), Decimal("10.00")),
            # Any other model name is taken to be self-hosted (vLLM, Ollama): no per-token bill,
            # so a run's budget does not stop it.
            "": (Decimal("0"), Decimal("0")),
        },
        build=_build_openai,
        needs_key=False,
    )
)
