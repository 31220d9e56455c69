"""Tiny models of every supported vision-language family, built from configs on the CPU.

Each family gets a word-level tokenizer trained in code (with the family's special tokens), a
processor built from transformers' PIL image processors (no torchvision needed), a chat template
with the real one's structure, and a randomly initialised model a few hundred KB in size. The
family matrix test and the doctor's tests train and generate with them; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from modeltrain.mcmdpo import tiny
from modeltrain.mcmdpo.processors import make_processor
from modeltrain.mcmdpo.tiny import TinyShape, build_llava_config, build_processor

TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
TEXT_KV = dict(TEXT, num_key_value_heads=2)
SIGLIP = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, patch_size=8
)

# Chat templates with the structure of each family's real one (roles, image placement, turns).
_TURNS = "{% for m in messages %}{% for c in m['content'] %}{% if c['type'] == 'image' %}"
CHATML_QWEN = (
    _TURNS + "{% if loop.first %}<|im_start|>{{ m['role'] }}\n{% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% else %}{% if loop.first %}<|im_start|>"
    "{{ m['role'] }}\n{% endif %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CHATML_IMAGE = (
    _TURNS + "{% if loop.first %}<|im_start|>{{ m['role'] }}\n{% endif %}<image>\n{% else %}"
    "{% if loop.first %}<|im_start|>{{ m['role'] }}\n{% endif %}{{ c['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}"
)
INST = (
    _TURNS + "{% if loop.first %}[INST] {% endif %}<image>\n{% else %}{% if loop.first %}[INST] "
    "{% endif %}{{ c['text'] }}{% endif %}{% endfor %} [/INST]{% endfor %}"
)
IDEFICS = (
    "<|im_start|>"
    + _TURNS
    + "{% if loop.first %}User:{% endif %}<image>{% else %}{% if loop.first %}User:{% endif %}"
    "{{ c['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
GEMMA = (
    "<bos>"
    + _TURNS
    + "{% if loop.first %}<start_of_turn>user\n{% endif %}<start_of_image>{% else %}"
    "{% if loop.first %}<start_of_turn>user\n{% endif %}{{ c['text'] }}{% endif %}{% endfor %}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def build_tokenizer(texts: Iterable[str], specials: list[str], *, named: dict[str, str]):
    """tiny.build_tokenizer with a family's special tokens and chat-template role words."""
    return tiny.build_tokenizer(
        texts, specials=specials, named=named, extra_words=["user assistant model User Assistant"]
    )


def _ids(tokenizer, **names: str) -> dict[str, int]:
    return {key: tokenizer.convert_tokens_to_ids(token) for key, token in names.items()}


def _text(tokenizer, **extra) -> dict:
    return dict(
        TEXT_KV,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        **extra,
    )


def _llava(texts):
    tokenizer = build_tokenizer(texts, ["<image>"], named={"image_token": "<image>"})
    config = build_llava_config(
        vocab_size=len(tokenizer),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return config, build_processor(tokenizer, TinyShape())


def _llava_next(texts):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaNextConfig, LlavaNextProcessor
    from transformers.models.llava_next.image_processing_pil_llava_next import (
        LlavaNextImageProcessorPil,
    )

    tokenizer = build_tokenizer(
        texts, ["<image>", "[INST]", "[/INST]"], named={"image_token": "<image>"}
    )
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": 32},
        crop_size={"height": 32, "width": 32},
        image_grid_pinpoints=[[32, 32], [32, 64], [64, 32]],
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
        vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=INST, image_token="<image>",
    )  # fmt: skip
    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(**SIGLIP, image_size=32, projection_dim=32),
        text_config=LlamaConfig(**_text(tokenizer)),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=[[32, 32], [32, 64], [64, 32]],
        vision_feature_select_strategy="default", vision_feature_layer=-1, tie_word_embeddings=False,
    )  # fmt: skip
    return config, processor


def _llava_onevision(texts):
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionProcessor,
        Qwen2Config,
        SiglipVisionConfig,
    )
    from transformers.models.llava_onevision.image_processing_pil_llava_onevision import (
        LlavaOnevisionImageProcessorPil,
    )

    specials = ["<image>", "<video>", "<|im_start|>", "<|im_end|>"]
    tokenizer = build_tokenizer(
        texts, specials, named={"image_token": "<image>", "video_token": "<video>"}
    )
    grid = [[32, 32], [32, 64], [64, 32]]
    image_processor = LlavaOnevisionImageProcessorPil(
        size={"height": 32, "width": 32}, image_grid_pinpoints=grid
    )
    processor = make_processor(
        LlavaOnevisionProcessor, image_processor=image_processor, tokenizer=tokenizer, num_image_tokens=16,
        vision_feature_select_strategy="full", chat_template=CHATML_IMAGE,
    )  # fmt: skip
    config = LlavaOnevisionConfig(
        vision_config=SiglipVisionConfig(**SIGLIP, image_size=32),
        text_config=Qwen2Config(**_text(tokenizer)),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=grid, vision_feature_select_strategy="full", vision_feature_layer=-1,
        tie_word_embeddings=False,
    )  # fmt: skip
    return config, processor


QWEN_SPECIALS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]  # fmt: skip


def _qwen_processor(cls, tokenizer, patch_size: int):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    unit = patch_size * 2  # patch x spatial merge
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=patch_size, merge_size=2, temporal_patch_size=2,
        size={"shortest_edge": unit * unit * 4, "longest_edge": unit * unit * 4},
    )  # fmt: skip
    return make_processor(
        cls, image_processor=image_processor, tokenizer=tokenizer, chat_template=CHATML_QWEN
    )


def _qwen_tokenizer(texts):
    return build_tokenizer(
        texts, QWEN_SPECIALS, named={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"}
    )


def _qwen_ids(tokenizer) -> dict:
    return _ids(
        tokenizer, image_token_id="<|image_pad|>", video_token_id="<|video_pad|>",
        vision_start_token_id="<|vision_start|>", vision_end_token_id="<|vision_end|>",
    )  # fmt: skip


def _qwen2_vl(texts):
    from transformers import Qwen2VLConfig, Qwen2VLProcessor

    tokenizer = _qwen_tokenizer(texts)
    vision = dict(depth=1, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2, patch_size=8,
                  spatial_merge_size=2, temporal_patch_size=2)  # fmt: skip
    text = _text(tokenizer, rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3]})
    config = Qwen2VLConfig(vision_config=vision, text_config=text, **_qwen_ids(tokenizer))
    return config, _qwen_processor(Qwen2VLProcessor, tokenizer, 8)


def _qwen2_5_vl(texts):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLProcessor

    tokenizer = _qwen_tokenizer(texts)
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, out_hidden_size=64, num_heads=2,
                  patch_size=8, spatial_merge_size=2, temporal_patch_size=2, window_size=32,
                  fullatt_block_indexes=[1])  # fmt: skip
    text = _text(tokenizer, rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3]})
    config = Qwen2_5_VLConfig(vision_config=vision, text_config=text, **_qwen_ids(tokenizer))
    return config, _qwen_processor(Qwen2_5_VLProcessor, tokenizer, 8)


def _qwen3_vl(texts):
    from transformers import Qwen3VLConfig, Qwen3VLProcessor

    tokenizer = _qwen_tokenizer(texts)
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, out_hidden_size=64, num_heads=2,
                  patch_size=8, spatial_merge_size=2, temporal_patch_size=2,
                  num_position_embeddings=16, deepstack_visual_indexes=[0])  # fmt: skip
    text = _text(
        tokenizer, head_dim=16,
        rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "mrope_interleaved": True},
    )  # fmt: skip
    config = Qwen3VLConfig(vision_config=vision, text_config=text, **_qwen_ids(tokenizer))
    return config, _qwen_processor(Qwen3VLProcessor, tokenizer, 8)


IDEFICS_SPECIALS = ["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>", "<|im_start|>"]  # fmt: skip
# Row/column tags of image splitting: up to 2 x 2 tiles at the tiny sizes.
TILE_TAGS = [f"<row_{r}_col_{c}>" for r in (1, 2) for c in (1, 2)]


def _idefics_parts(texts, processor_module: str):
    import importlib

    tokenizer = build_tokenizer(
        texts, IDEFICS_SPECIALS + TILE_TAGS, named={"image_token": "<image>"}
    )
    module = importlib.import_module(f"transformers.models.{processor_module}")
    name = (
        "Idefics3ImageProcessorPil" if "idefics" in processor_module else "SmolVLMImageProcessorPil"
    )
    image_processor = getattr(module, name)(
        do_image_splitting=True, size={"longest_edge": 64}, max_image_size={"longest_edge": 32},
    )  # fmt: skip
    return tokenizer, image_processor


def _idefics_config(cls, tokenizer):
    from transformers import LlamaConfig

    return cls(
        vision_config=dict(SIGLIP, image_size=32),
        text_config=LlamaConfig(**_text(tokenizer)).to_dict(),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=2, tie_word_embeddings=False,
    )  # fmt: skip


def _idefics3(texts):
    from transformers import Idefics3Config, Idefics3Processor

    tokenizer, image_processor = _idefics_parts(texts, "idefics3.image_processing_pil_idefics3")
    processor = Idefics3Processor(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4, chat_template=IDEFICS
    )
    return _idefics_config(Idefics3Config, tokenizer), processor


def _smolvlm(texts):
    from transformers import SmolVLMConfig, SmolVLMProcessor

    tokenizer, image_processor = _idefics_parts(texts, "smolvlm.image_processing_pil_smolvlm")
    processor = make_processor(
        SmolVLMProcessor, image_processor=image_processor, tokenizer=tokenizer,
        image_seq_len=4, chat_template=IDEFICS,
    )  # fmt: skip
    return _idefics_config(SmolVLMConfig, tokenizer), processor


def _gemma3(texts):
    from transformers import Gemma3Config, Gemma3Processor
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    specials = ["<start_of_image>", "<end_of_image>", "<image_soft_token>", "<start_of_turn>", "<end_of_turn>", "<bos>"]  # fmt: skip
    tokenizer = build_tokenizer(
        texts, specials,
        named={"image_token": "<image_soft_token>", "boi_token": "<start_of_image>", "eoi_token": "<end_of_image>"},
    )  # fmt: skip
    image_processor = Gemma3ImageProcessorPil(size={"height": 32, "width": 32})
    processor = Gemma3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_length=4,
        chat_template=GEMMA,
    )
    text = _text(
        tokenizer,
        head_dim=16,
        sliding_window=512,
        layer_types=["sliding_attention", "full_attention"],
    )
    config = Gemma3Config(
        vision_config=dict(SIGLIP, image_size=32), text_config=text, mm_tokens_per_image=4,
        **_ids(tokenizer, image_token_id="<image_soft_token>", boi_token_id="<start_of_image>",
               eoi_token_id="<end_of_image>"),
    )  # fmt: skip
    return config, processor


def _paligemma(texts):
    from transformers import GemmaConfig, PaliGemmaConfig, PaliGemmaProcessor, SiglipVisionConfig
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    tokenizer = build_tokenizer(texts, ["<image>"], named={"image_token": "<image>"})
    image_processor = SiglipImageProcessorPil(size={"height": 32, "width": 32})
    image_processor.image_seq_length = 16
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    config = PaliGemmaConfig(
        vision_config=SiglipVisionConfig(**SIGLIP, image_size=32, projection_dim=64),
        text_config=GemmaConfig(**_text(tokenizer, head_dim=16)),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), projection_dim=64,
    )  # fmt: skip
    return config, processor


def _mllama(texts):
    from transformers import MllamaConfig, MllamaProcessor
    from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil

    tokenizer = build_tokenizer(texts, ["<|image|>"], named={"image_token": "<|image|>"})
    image_processor = MllamaImageProcessorPil(size={"height": 32, "width": 32}, max_image_tiles=4)
    processor = MllamaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    config = MllamaConfig(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_global_layers=1,
                           attention_heads=2, image_size=32, patch_size=8, max_num_tiles=4,
                           intermediate_layers_indices=[0], vision_output_dim=64),
        text_config=dict(_text(tokenizer), cross_attention_layers=[1]),
        image_token_index=tokenizer.convert_tokens_to_ids("<|image|>"),
    )  # fmt: skip
    return config, processor


# name -> builder of (config, processor). The family matrix test iterates over these.
FAMILIES: dict[str, Callable] = {
    "llava": _llava,
    "llava_next": _llava_next,
    "llava_onevision": _llava_onevision,
    "qwen2_vl": _qwen2_vl,
    "qwen2_5_vl": _qwen2_5_vl,
    "qwen3_vl": _qwen3_vl,
    "idefics3": _idefics3,
    "smolvlm": _smolvlm,
    "gemma3": _gemma3,
    "paligemma": _paligemma,
    "mllama": _mllama,
}


def build_tiny(family: str, texts: Iterable[str], *, seed: int = 0):
    """(model, processor): a randomly initialised tiny model of `family` in fp32 with SDPA."""
    import torch
    from transformers import AutoModelForImageTextToText

    config, processor = FAMILIES[family](list(texts))
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2 and not param.any():
                # Gemma 3 starts its image projection at zero: the model would ignore images.
                param.normal_(0.0, 0.05)
    model.set_attn_implementation("sdpa")
    tokenizer = processor.tokenizer
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.eval(), processor


def save_tiny(folder: str | Path, family: str, texts: Iterable[str], *, seed: int = 0) -> Path:
    """Build a tiny model of `family` and save it with its processor (loadable by the Auto classes)."""
    folder = Path(folder)
    model, processor = build_tiny(family, texts, seed=seed)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
