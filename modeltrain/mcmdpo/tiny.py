"""Tiny LLaVA-shaped models, tokenizer and processor built from configs, for CPU tests and the bench.

No hub access: the tokenizer is a word-level tokenizer trained in code on the texts it will see.
This is the only module (with bench.py) that names LLaVA; training code loads any
image-text-to-text model through the Auto classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>", IMAGE_TOKEN]
# Words of the fallback prompt template (see data.render_prompt) so they never map to <unk>.
TEMPLATE_WORDS = (
    "USER : ASSISTANT : Given an image and context , generate alt - text for the image . Context"
)


@dataclass(frozen=True)
class TinyShape:
    """Sizes of a tiny LLaVA (CLIP vision tower + Llama LM)."""

    image_size: int = 32
    patch_size: int = 8
    vision_hidden: int = 32
    vision_layers: int = 1
    text_hidden: int = 64
    text_layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128

    @property
    def image_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2


def build_tokenizer(
    texts: Iterable[str],
    *,
    extra_words: Iterable[str] = (),
    specials: Iterable[str] = (IMAGE_TOKEN,),
    named: dict[str, str] | None = None,
):
    """A word-level PreTrainedTokenizerFast trained on `texts` with pad/eos and `specials`.

    `named` are the tokenizer's named special tokens (image_token, ...); by default LLaVA's.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(unk_token="<unk>"))
    core.normalizer = normalizers.NFKC()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(
        special_tokens=[*SPECIAL_TOKENS[:4], *specials], min_frequency=1
    )
    corpus = [*texts, TEMPLATE_WORDS, *extra_words]
    core.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens=named or {"image_token": IMAGE_TOKEN},
    )
    tokenizer.padding_side = "left"  # generation and trl's prompt padding expect left padding
    return tokenizer


def build_processor(tokenizer, shape: TinyShape = TinyShape()):  # noqa: B008 - frozen dataclass
    """LlavaProcessor with a PIL CLIP image processor (no torchvision needed)."""
    from transformers import LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": shape.image_size},
        crop_size={"height": shape.image_size, "width": shape.image_size},
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=shape.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by the "default" strategy
        image_token=IMAGE_TOKEN,
    )


def build_llava_config(
    *,
    vocab_size: int,
    image_token_id: int,
    pad_token_id: int,
    eos_token_id: int,
    shape: TinyShape = TinyShape(),  # noqa: B008 - frozen dataclass
    max_positions: int = 1024,
):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(
        hidden_size=shape.vision_hidden,
        intermediate_size=shape.vision_hidden * 2,
        num_hidden_layers=shape.vision_layers,
        num_attention_heads=2,
        image_size=shape.image_size,
        patch_size=shape.patch_size,
        projection_dim=shape.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=shape.text_hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.text_layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=max_positions,
        pad_token_id=pad_token_id,
        eos_token_id=eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=image_token_id,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        image_seq_length=shape.image_tokens,
        projector_hidden_act="gelu",
        tie_word_embeddings=False,
    )


def build_tiny_llava(texts: Iterable[str], *, seed: int = 0, shape: TinyShape = TinyShape()):  # noqa: B008
    """Return (model, processor): a randomly initialised tiny LLaVA in fp32 with SDPA attention."""
    import torch
    from transformers import LlavaForConditionalGeneration

    tokenizer = build_tokenizer(texts)
    processor = build_processor(tokenizer, shape)
    config = build_llava_config(
        vocab_size=len(tokenizer),
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        shape=shape,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).to(torch.float32)
    model.set_attn_implementation("sdpa")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = None
    return model, processor


def save_tiny_llava(folder: str | Path, texts: Iterable[str], *, seed: int = 0) -> Path:
    """Build a tiny LLaVA and save it (model + processor) so Auto classes can load the folder."""
    folder = Path(folder)
    model, processor = build_tiny_llava(texts, seed=seed)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
