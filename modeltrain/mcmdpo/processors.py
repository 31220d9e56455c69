"""Build and load processors on machines without torchvision.

AltPref feeds images only, never video. Yet Qwen-VL, LLaVA-OneVision and SmolVLM processors
insist on a video processor, and transformers' video processors import torchvision, which the CPU
machines cannot install beside the CPU torch wheel. Without torchvision these processors are built
with no video processor and transformers' PIL image processors (which AutoImageProcessor picks by
itself then); with torchvision, everything loads the ordinary way.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path


def torchvision_available() -> bool:
    from transformers.utils import is_torchvision_available

    return is_torchvision_available()


def without_video(cls, **parts):
    """`cls(**parts, video_processor=None)`, skipping ProcessorMixin's class check for the None."""
    processor = cls.__new__(cls)
    check = cls.check_argument_for_proper_class

    def lenient(name, argument):
        if argument is None and name == "video_processor":
            return None
        return check(processor, name, argument)

    processor.check_argument_for_proper_class = lenient  # this instance only, during __init__
    try:
        cls.__init__(processor, video_processor=None, **parts)
    finally:
        del processor.check_argument_for_proper_class
    # Saving (by us or by a Trainer's checkpoint) walks every attribute; skip the absent one.
    processor.save_pretrained = functools.partial(_save_without_video, processor)
    return processor


def _save_without_video(processor, *args, **kwargs):
    names = [name for name in type(processor).get_attributes() if name != "video_processor"]
    processor.get_attributes = lambda: names  # this instance, for this call only
    try:
        return type(processor).save_pretrained(processor, *args, **kwargs)
    finally:
        del processor.get_attributes


def make_processor(cls, **parts):
    """Instantiate a processor class; one that wants a video processor gets none (see module doc)."""
    import inspect

    if "video_processor" in inspect.signature(cls.__init__).parameters:
        parts.pop("video_processor", None)
        return without_video(cls, **parts)
    return cls(**parts)


def load_processor(path: str):
    """AutoProcessor.from_pretrained, or the same processor without its video half (no torchvision)."""
    from transformers import AutoProcessor

    if torchvision_available() or not _wants_video(path):
        return AutoProcessor.from_pretrained(path)
    import transformers
    from transformers import AutoImageProcessor, AutoTokenizer

    config = _processor_config(path)
    cls = getattr(transformers, config.pop("processor_class"))
    tokenizer = AutoTokenizer.from_pretrained(path)
    template = Path(path) / "chat_template.jinja"
    parts = {
        "image_processor": AutoImageProcessor.from_pretrained(path),
        "tokenizer": tokenizer,
        "chat_template": template.read_text() if template.exists() else None,
    }
    known = set(_init_parameters(cls))
    parts.update({k: v for k, v in config.items() if k in known and k not in parts})
    parts.pop("video_processor", None)
    return without_video(cls, **parts)


def _processor_config(path: str) -> dict:
    file = Path(path) / "processor_config.json"
    if not file.exists():
        return {}
    data = json.loads(file.read_text())
    return {k: v for k, v in data.items() if not isinstance(v, dict) or k == "processor_class"}


def _init_parameters(cls) -> list[str]:
    import inspect

    return list(inspect.signature(cls.__init__).parameters)


def _wants_video(path: str) -> bool:
    if not Path(path).is_dir():
        return False  # a hub id: AutoProcessor's own error is the clearest
    config = _processor_config(path)
    name = config.get("processor_class")
    if not name:
        return False
    import transformers

    cls = getattr(transformers, name, None)
    return cls is not None and "video_processor" in _init_parameters(cls)
