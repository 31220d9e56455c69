"""One configuration dataclass for SFT, DPO and MCM-DPO rounds (what a TrainingRound stores).

Plain data: the Django side fills it from a TrainingRound's hyper-parameters (`from_dict`) and
stores `to_dict()` next to the checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum

from modeltrain.mcmdpo.loss import MCMWeights
from modeltrain.mcmdpo.negatives import ImageNegative


class Method(StrEnum):
    SFT = "sft"
    DPO = "dpo"
    MCMDPO = "mcmdpo"


# The paper's four paradigms: is the vision encoder trained in the SFT stage, in the preference stage?
PARADIGMS: dict[str, tuple[bool, bool]] = {
    "frozen": (False, False),
    "sft_only": (True, False),
    "preference_only": (False, True),
    "both": (True, True),  # best in the paper
}

# Learning rates a round gets unless it names one: (method, use_lora) -> lr.
# Full fine-tuning follows the paper (5e-7 for the preference stage, 2e-5 for SFT). LoRA needs
# its own: an adapter's update is scaled by alpha/r and starts from B = 0, so at 5e-7 it barely
# moves in a 1-2 epoch round; LoRA practice runs about 10x the full fine-tuning rate, hence
# 5e-6 for DPO/MCM-DPO (trl's LoRA DPO examples sit at 5e-6..5e-5) and the usual 2e-4 for LoRA
# SFT (QLoRA, LLaVA's LoRA recipe).
DEFAULT_LEARNING_RATES: dict[tuple[str, bool], float] = {
    ("sft", False): 2e-5,
    ("dpo", False): 5e-7,
    ("mcmdpo", False): 5e-7,
    ("sft", True): 2e-4,
    ("dpo", True): 5e-6,
    ("mcmdpo", True): 5e-6,
}


def default_learning_rate(method: Method | str, use_lora: bool) -> float:
    """The learning rate a round of `method` gets when it names none (see DEFAULT_LEARNING_RATES)."""
    return DEFAULT_LEARNING_RATES[(Method(method).value, bool(use_lora))]


@dataclass
class MCMDPOConfig:
    """Hyper-parameters of one training round; defaults follow the MCM-DPO paper where it gives them."""

    method: Method | str = Method.MCMDPO
    base_model: str = ""  # local folder or Hugging Face id; loaded with the Auto classes
    # What is trained. Which one the vision flag uses depends on the stage (`method`).
    # The paper fine-tunes every weight and trains the vision encoder in both stages ("both").
    paradigm: str = "both"
    train_projector: bool = True
    train_language_model: bool = True
    use_lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    # Preference objective
    beta: float = 0.1
    weights: MCMWeights = field(default_factory=MCMWeights)
    negative_image: ImageNegative | str = ImageNegative.NOISE
    noise_step: int = 700
    negative_seed: int = 0
    vary_negatives_by_epoch: bool = False
    packed: bool = (
        True  # prefix-tree packing of the 8 conditions (same log-probs, far fewer tokens)
    )
    precompute_reference: bool = (
        True  # cache reference log-probs on disk; no reference model in memory
    )
    reference_cache_dir: str | None = None  # default: <output_dir>/ref-cache
    attention: str = "auto"  # auto (flex on CUDA when available, else sdpa) | sdpa | flex
    # Optimisation (the paper: cosine, warm-up 0.03). None: `default_learning_rate` for the
    # method and use_lora (the paper's 5e-7 / 2e-5 for full fine-tuning); a value always wins.
    learning_rate: float | None = None
    # The vision encoder's and projector's rate as a fraction of learning_rate (see
    # trainer.VisionRateMixin: a from-scratch vision side at the full rate collapses).
    vision_lr_scale: float = 1.0
    per_device_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    num_epochs: float = 2.0
    max_steps: int = -1
    warmup_ratio: float = 0.03
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    bf16: bool | None = None  # None: bf16 on CUDA, fp32 on CPU
    gradient_checkpointing: bool = False
    # Data
    max_response_tokens: int = 128
    max_context_chars: int = 1200
    # How records are shown (data.PromptStyle): "model" (the family's chat template) or
    # "vicuna_v1" (the reference's template for the paper's LLaVA), and the reference's
    # pad-to-square image preprocessing.
    prompt_template: str = "model"
    pad_to_square: bool = False
    # Checkpoints and logs
    save_steps: int = 50
    save_total_limit: int | None = 2
    logging_steps: int = 1
    resume: bool = True
    seed: int = 0

    def __post_init__(self):
        self.method = Method(self.method)
        self.negative_image = ImageNegative(self.negative_image)
        if isinstance(self.weights, dict):
            self.weights = MCMWeights(**self.weights)
        if self.paradigm not in PARADIGMS:
            raise ValueError(f"paradigm must be one of {sorted(PARADIGMS)}, got {self.paradigm!r}")
        if not self.vision_lr_scale > 0:
            raise ValueError(
                f"vision_lr_scale must be > 0 (freeze with paradigm/train_projector instead), "
                f"got {self.vision_lr_scale!r}"
            )
        # Remembered so that with_overrides(use_lora=...) re-derives a default rate, not keeps it.
        self._learning_rate_given = self.learning_rate is not None
        if self.learning_rate is None:
            self.learning_rate = default_learning_rate(self.method, self.use_lora)

    @property
    def train_vision_encoder(self) -> bool:
        """Whether this stage trains the vision encoder (SFT uses the paradigm's first flag)."""
        in_sft, in_preference = PARADIGMS[self.paradigm]
        return in_sft if self.method is Method.SFT else in_preference

    def to_dict(self) -> dict:
        data = asdict(self)
        data["method"] = self.method.value
        data["negative_image"] = ImageNegative(self.negative_image).value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> MCMDPOConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        return cls(**data)

    def with_overrides(self, **changes) -> MCMDPOConfig:
        if not self._learning_rate_given and "learning_rate" not in changes:
            changes["learning_rate"] = None  # still the default: derive it for the new method
        return replace(self, **changes)


# Back-compat alias: the issue and the Django side may call it either name.
TrainConfig = MCMDPOConfig
