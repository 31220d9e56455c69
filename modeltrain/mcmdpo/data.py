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

from modeltrain.mcmdpo.formats import PreferenceRecord, format_question
from modeltrain.mcmdpo.negatives import (
    ImageNegative,
    corrupt_image,
    other_index,
    record_generator,
    swapped_context_index,
)

FALLBACK_TEMPLATE = "USER: {image}\n{question} ASSISTANT:"
# Processor outputs other than ids/masks that travel with pixel_values, one entry per image.
IMAGE_KEYS = ("pixel_values", "image_sizes")


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
    meta: dict = field(default_factory=dict)

    def sequence(self, context: int, image: int, response: int) -> tuple[list[int], int]:
        """Token ids of one unpacked condition and the number of prompt tokens before the response."""
        prompt = self.prefix_ids + self.image_ids[image] + self.tail_ids[context]
        return prompt + self.response_ids[response], len(prompt)


def render_prompt(processor, question: str) -> str:
    """The prompt text for one image + question: the model's chat template, else LLaVA-1.5's form."""
    template = getattr(processor, "chat_template", None)
    if template:
        messages = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}
        ]
        return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    image_token = getattr(processor, "image_token", None) or "<image>"
    return FALLBACK_TEMPLATE.format(image=image_token, question=question)


def image_token_id(processor) -> int:
    tokenizer = processor.tokenizer
    token = getattr(processor, "image_token", None) or "<image>"
    return tokenizer.convert_tokens_to_ids(token)


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
        self._image_token_id = image_token_id(processor)
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
        image = load_image(record.image_path)
        prompt_texts = [render_prompt(self.processor, q) for q in questions]
        own = self._process([image, image], prompt_texts)
        prefix, own_span, tails = self._split(own["input_ids"])

        own_inputs = {k: v[:1] for k, v in own.items() if k in IMAGE_KEYS}
        kind = ImageNegative(spec.image)
        if kind is ImageNegative.SWAP:
            swap_index = other_index(index, count, spec.seed, epoch, purpose="image")
            swap = self._process(
                [load_image(self.records[swap_index].image_path)], prompt_texts[:1]
            )
            corrupted_inputs = {k: v[:1] for k, v in swap.items() if k in IMAGE_KEYS}
            swap_prefix, corrupted_span, _ = self._split(swap["input_ids"])
            if swap_prefix != prefix:
                raise ValueError("the processor renders a different prefix for another image")
        else:
            generator = record_generator(spec.seed, index, epoch, purpose="image")
            corrupted_inputs = dict(own_inputs)
            corrupted_inputs["pixel_values"] = corrupt_image(
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
        )

    def _question(self, context: str, header: str) -> str:
        return format_question(context[: self.max_context_chars], header)

    def _process(self, images: list[Image.Image], texts: list[str]) -> dict[str, torch.Tensor]:
        out = self.processor(
            images=images,
            text=texts,
            return_tensors="pt",
            padding=True,
            padding_side="left",
            add_special_tokens=False,  # the rendered prompt already carries any BOS (trl does the same)
        )
        ids = out["input_ids"]
        mask = out["attention_mask"].bool()
        out["input_ids"] = [row[m].tolist() for row, m in zip(ids, mask, strict=True)]
        return out

    def _split(self, rows: list[list[int]]) -> tuple[list[int], list[int], list[list[int]]]:
        """Split each row at its image-token run into (shared prefix, image span, per-row tails)."""
        prefixes, spans, tails = [], [], []
        for row in rows:
            positions = [i for i, t in enumerate(row) if t == self._image_token_id]
            if not positions or positions[-1] - positions[0] + 1 != len(positions):
                raise ValueError("expected one contiguous run of image tokens in each prompt")
            start, end = positions[0], positions[-1] + 1
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
