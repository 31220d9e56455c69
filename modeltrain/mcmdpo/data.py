"""Turn preference records into the token segments and pixel tensors of the 8 MCM-DPO conditions.

A record is tokenised once into segments that the 8 sequences share:

    prefix | image span (own / corrupted) | prompt tail (own / swapped context) | response (chosen / rejected)

``prefix`` is everything before the image placeholder run (chat header, BOS), the image span is
the processor's run of image tokens, the tail is the rest of the prompt (question with the
context, generation prompt). Each segment comes from tokenising the whole rendered prompt with the
model's own processor and splitting it at the image-token run, so the concatenation is exactly the
sequence the model would see; responses are tokenised alone and end with EOS, like trl does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from modeltrain.mcmdpo.families import FamilyAdapter, adapter_for_processor
from modeltrain.mcmdpo.formats import PreferenceRecord, format_question
from modeltrain.mcmdpo.negatives import (
    ImageNegative,
    corrupt_picture,
    other_index,
    record_generator,
    swapped_context_index,
)


@dataclass
class NegativeSpec:
    """Which losing image to build and from which seed; `vary_by_epoch` re-draws them each epoch."""

    image: ImageNegative | str = ImageNegative.NOISE
    noise_step: int = 700
    seed: int = 0
    vary_by_epoch: bool = False

    def key(self) -> str:
        return (
            f"{ImageNegative(self.image).value}:{self.noise_step}:{self.seed}:{self.vary_by_epoch}"
        )


@dataclass
class RecordExample:
    """Token segments and images of one record's 8 conditions.

    image_ids, pixel_values, image_inputs: index 0 own image, 1 corrupted image.
    tail_ids: index 0 own context, 1 swapped context.  response_ids: 0 chosen, 1 rejected.
    pixel_values[i]: (1, channels, height, width) (or the processor's per-image shape).
    ref_logps: (2, 2, 2) reference log-probs when precomputed, indexed [context][image][response].
    """

    index: int
    prefix_ids: list[int]
    image_ids: list[list[int]]
    tail_ids: list[list[int]]
    response_ids: list[list[int]]
    image_inputs: list[dict[str, torch.Tensor]]
    ref_logps: torch.Tensor | None = None
    attention: str = "causal"  # the family's attention semantics (see families/base.py)
    meta: dict = field(default_factory=dict)

    def sequence(self, context: int, image: int, response: int) -> tuple[list[int], int]:
        """Token ids of one unpacked condition and the number of prompt tokens before the response."""
        prompt = self.prefix_ids + self.image_ids[image] + self.tail_ids[context]
        return prompt + self.response_ids[response], len(prompt)


# The reference implementation's conversation template for LLaVA-1.5/1.6-Vicuna ("vicuna_v1").
VICUNA_V1 = (
    "A chat between a curious human and an artificial intelligence assistant. The assistant "
    "gives helpful, detailed, and polite answers to the human's questions. "
    "USER: {image}\n{question} ASSISTANT:"
)


@dataclass(frozen=True)
class PromptStyle:
    """How a record is shown to the model: prompt template and picture preprocessing.

    template "model": the family's own chat template (the default); "vicuna_v1": the MCM-DPO
    reference's template for the paper's LLaVA. pad_to_square: pad the picture to a square with
    the image processor's mean colour before processing, as the reference's LLaVA does
    ("expand2square"), instead of letting the processor crop or resize it.
    """

    template: str = "model"
    pad_to_square: bool = False

    def __post_init__(self):
        if self.template not in ("model", "vicuna_v1"):
            raise ValueError(
                f"prompt template must be 'model' or 'vicuna_v1', not {self.template!r}"
            )

    def prompt(self, processor, question: str, adapter: FamilyAdapter | None = None) -> str:
        if self.template == "vicuna_v1":
            image_token = getattr(processor, "image_token", None) or "<image>"
            return VICUNA_V1.format(image=image_token, question=question)
        return (adapter or adapter_for_processor(processor)).render_prompt(processor, question)

    def picture(self, image: Image.Image, processor) -> Image.Image:
        if not self.pad_to_square or image.width == image.height:
            return image
        mean = getattr(processor.image_processor, "image_mean", None) or (0.5, 0.5, 0.5)
        colour = tuple(int(round(255 * channel)) for channel in mean)
        side = max(image.size)
        square = Image.new("RGB", (side, side), colour)
        square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        return square


def render_prompt(
    processor, question: str, adapter: FamilyAdapter | None = None, style: PromptStyle | None = None
) -> str:
    """The prompt text for one image + question, as the model's family (or `style`) writes it."""
    return (style or PromptStyle()).prompt(processor, question, adapter)


def load_image(path: str | Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


class PreferenceDataset(torch.utils.data.Dataset):
    """Map-style dataset of `RecordExample`s with deterministic negatives.

    Negatives depend on (negative seed, record index, epoch) only; the epoch is fixed at 0 unless
    `negatives.vary_by_epoch`, so precomputed reference log-probs stay valid for the whole run.
    """

    def __init__(
        self,
        records: list[PreferenceRecord],
        processor,
        *,
        negatives: NegativeSpec | None = None,
        max_response_tokens: int = 128,
        max_context_chars: int = 1200,
        adapter: FamilyAdapter | None = None,
        style: PromptStyle | None = None,
    ):
        if len(records) < 2:
            raise ValueError(
                "MCM-DPO needs at least two records (swapped contexts come from others)"
            )
        self.records = records
        self.processor = processor
        self.negatives = negatives or NegativeSpec()
        self.max_response_tokens = max_response_tokens
        self.max_context_chars = max_context_chars
        self.epoch = 0
        self.ref_logps: torch.Tensor | None = None  # (len, 2, 2, 2) once precomputed
        self.adapter = adapter or adapter_for_processor(processor)
        self.style = style or PromptStyle()
        self._image_token_id = self.adapter.image_token_id(processor)
        self._contexts = [r.context for r in records]

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch if self.negatives.vary_by_epoch else 0

    def __getitem__(self, index: int) -> RecordExample:
        record = self.records[index]
        spec, epoch, count = self.negatives, self.epoch, len(self.records)
        other_context = self.records[swapped_context_index(index, self._contexts, spec.seed, epoch)]
        questions = [
            self._question(record.context, record.header),
            self._question(other_context.context, record.header),
        ]
        image = self._picture(record.image_path)
        prompt_texts = [self.style.prompt(self.processor, q, self.adapter) for q in questions]
        own = self._process([image, image], prompt_texts)
        prefix, own_span, tails = self._split(own["input_ids"])
        own_inputs = self.adapter.split_images(own)[0]

        kind = ImageNegative(spec.image)
        generator = record_generator(spec.seed, index, epoch, purpose="image")
        picture = None  # a losing picture the processor must see (the pixels cannot be edited)
        if kind is ImageNegative.SWAP:
            swap_index = other_index(index, count, spec.seed, epoch, purpose="image")
            picture = self._picture(self.records[swap_index].image_path)
        elif kind in (ImageNegative.CROP, ImageNegative.ROTATE) and not self.adapter.spatial_pixels:
            picture = corrupt_picture(image, kind, generator)
        if picture is not None:
            other = self._process([picture], prompt_texts[:1])
            corrupted_inputs = self.adapter.split_images(other)[0]
            other_prefix, corrupted_span, _ = self._split(other["input_ids"])
            if other_prefix != prefix:
                raise ValueError("the processor renders a different prefix for another image")
        else:
            corrupted_inputs = dict(own_inputs)
            corrupted_inputs["pixel_values"] = self.adapter.corrupt_pixels(
                own_inputs["pixel_values"], kind, generator, noise_step=spec.noise_step
            )
            corrupted_span = own_span

        ref = self.ref_logps[index] if self.ref_logps is not None else None
        return RecordExample(
            index=index,
            prefix_ids=prefix,
            image_ids=[own_span, corrupted_span],
            tail_ids=tails,
            response_ids=[self._response(record.chosen), self._response(record.rejected or "")],
            image_inputs=[own_inputs, corrupted_inputs],
            ref_logps=ref,
            attention=self.adapter.attention,
        )

    def _picture(self, path: str) -> Image.Image:
        return self.style.picture(load_image(path), self.processor)

    def _question(self, context: str, header: str) -> str:
        return format_question(context[: self.max_context_chars], header)

    def _process(self, images: list[Image.Image], texts: list[str]) -> dict[str, torch.Tensor]:
        out = self.adapter.process(self.processor, images, texts, padding_side="left")
        ids = out["input_ids"]
        mask = out["attention_mask"].bool()
        out["input_ids"] = [row[m].tolist() for row, m in zip(ids, mask, strict=True)]
        return out

    def _split(self, rows: list[list[int]]) -> tuple[list[int], list[int], list[list[int]]]:
        """Split each row at its image span into (shared prefix, image span, per-row tails)."""
        prefixes, spans, tails = [], [], []
        for row in rows:
            start, end = self.adapter.image_span(row, self._image_token_id)
            prefixes.append(row[:start])
            spans.append(row[start:end])
            tails.append(row[end:])
        if any(p != prefixes[0] for p in prefixes) or any(s != spans[0] for s in spans):
            raise ValueError("prompts of one record must share the part before the context")
        return prefixes[0], spans[0], tails

    def _response(self, text: str) -> list[int]:
        tokenizer = self.processor.tokenizer
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][: self.max_response_tokens - 1]
        return ids + [tokenizer.eos_token_id]
