"""Lay out the 8 conditions of each record for one forward pass: prefix-tree packed or unpacked.

Packed: one row per record, the sequences' shared prefixes stored once, in depth-first order

    prefix → image 0 → tail c0 → resp y0, resp y1 → tail c1 → y0, y1 → image 1 → tail c0 → ...

(2 image spans, 4 tails, 8 responses). A 4-D mask lets each token see only itself, earlier tokens
of its own segment and its ancestor segments; position ids are the token's position in its own
unpacked sequence. So every token's hidden state equals the one in the unpacked sequence, while
the image tokens are computed twice instead of eight times and each prompt once instead of twice.
Image spans appear in the row in the same order as the images in ``pixel_values`` (record-major,
own then corrupted), which is the order the model scatters image features into placeholders.

Unpacked: 8 right-padded rows per record, the straightforward (and reference) computation.

Families whose attention is not plain causal change the tree, not the idea: Gemma 3's image
tokens also see each other (the image segment is one bidirectional block), and PaliGemma's
prefix-LM prompt is bidirectional, so its prefix cannot be shared across contexts: each
(image, context) prompt is one bidirectional segment with its two responses below it. Each
packed token also records a branch (unpacked sequence) holding it and its offset there, so a
family whose positions are not plain counts (Qwen's M-RoPE) gets them from the model's own
function on the branches.

Both return a `Layout`; `condition_logps` runs the model on it and returns (batch, 2, 2, 2).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from modeltrain.mcmdpo.data import RecordExample

CONDITIONS = [(c, i, r) for c in (0, 1) for i in (0, 1) for r in (0, 1)]  # flat index = 4c + 2i + r


@dataclass
class Layout:
    """Model inputs for the 8 conditions of `num_records` records.

    input_ids: (rows, length). attention_mask: (rows, length) padding mask (unpacked) or
    (rows, 1, length, length) boolean visibility (packed). position_ids: (rows, length) or None.
    image_inputs: processor image tensors for all images in row order.
    keep: (rows, length) bool, positions whose next-token logits are needed.
    pair_pos: (tokens,) index into the flattened kept positions for each scored response token;
    pair_label: (tokens,) the token scored there; pair_cond: (tokens,) record * 8 + condition.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor | None
    image_inputs: dict[str, torch.Tensor]
    keep: torch.Tensor
    pair_pos: torch.Tensor
    pair_label: torch.Tensor
    pair_cond: torch.Tensor
    num_records: int
    response_mask: torch.Tensor
    path_ids: torch.Tensor | None = None
    path_mask: torch.Tensor | None = None
    path_image: torch.Tensor | None = None
    token_path: torch.Tensor | None = None

    def to(self, device) -> Layout:
        moved = {f.name: _move(getattr(self, f.name), device) for f in dataclasses.fields(self)}
        return Layout(**moved)

    @property
    def packed(self) -> bool:
        return self.attention_mask.dim() == 4

    @property
    def num_tokens(self) -> int:
        """Real (non-padding) tokens, the quantity packing reduces."""
        if self.attention_mask.dim() == 2:
            return int(self.attention_mask.sum())
        return int(self.attention_mask.diagonal(dim1=-2, dim2=-1).sum())


def _move(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _move(v, device) for k, v in value.items()}
    return value


class _Scored:
    """Collects (row, predicting position, label, condition) while a layout is built."""

    def __init__(self):
        self.rows: list[int] = []
        self.positions: list[int] = []
        self.labels: list[int] = []
        self.conds: list[int] = []

    def add(self, row: int, predictor: int, start: int, tokens: list[int], cond: int) -> None:
        # The first response token is predicted by the last prompt token (`predictor`), the others
        # by the previous response token.
        for offset, token in enumerate(tokens):
            self.rows.append(row)
            self.positions.append(predictor if offset == 0 else start + offset - 1)
            self.labels.append(token)
            self.conds.append(cond)

    def finish(self, rows: int, length: int) -> tuple[torch.Tensor, ...]:
        keep = torch.zeros(rows, length, dtype=torch.bool)
        keep[self.rows, self.positions] = True
        # Kept positions are flattened row-major; map each scored token to its slot there.
        slot = torch.full((rows, length), -1, dtype=torch.long)
        slot[keep] = torch.arange(int(keep.sum()))
        pair_pos = slot[self.rows, self.positions]
        return keep, pair_pos, torch.tensor(self.labels), torch.tensor(self.conds)


def unpacked_layout(examples: list[RecordExample], pad_token_id: int) -> Layout:
    """8 sequences per record, right-padded; row 8b + flat condition index."""
    sequences, prompt_lengths, scored = [], [], _Scored()
    for b, ex in enumerate(examples):
        for cond, (c, i, r) in enumerate(CONDITIONS):
            ids, prompt_len = ex.sequence(c, i, r)
            row = len(sequences)
            sequences.append(ids)
            prompt_lengths.append(prompt_len)
            scored.add(row, prompt_len - 1, prompt_len, ex.response_ids[r], 8 * b + cond)
    input_ids, attention = _right_padded(sequences, pad_token_id)
    keep, pair_pos, labels, conds = scored.finish(len(sequences), input_ids.shape[1])
    responses = torch.zeros(input_ids.shape, dtype=torch.bool)
    for row, (ids, start) in enumerate(zip(sequences, prompt_lengths, strict=True)):
        responses[row, start : len(ids)] = True
    images = stack_images([ex.image_inputs[i] for ex in examples for (_, i, _) in CONDITIONS])
    return Layout(
        input_ids, attention, None, images, keep, pair_pos, labels, conds, len(examples), responses
    )


def _right_padded(sequences: list[list[int]], pad_token_id: int):
    length = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), length), pad_token_id, dtype=torch.long)
    attention = torch.zeros(len(sequences), length, dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
    return input_ids, attention


def stack_images(pieces: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One model call's image inputs from per-image pieces, in token order.

    Concatenated on the first dimension; per-image tiles or patches (dimension 1 of a tensor of
    three or more dimensions: LLaVA-Next, Idefics3) are zero-padded to the longest, which is how
    the processors pad them and what the models skip.
    """
    stacked = {}
    for key in pieces[0]:
        tensors = [piece[key] for piece in pieces]
        if tensors[0].dim() >= 3 and len({t.shape[1] for t in tensors}) > 1:
            longest = max(t.shape[1] for t in tensors)
            tensors = [_pad_dim1(t, longest) for t in tensors]
        stacked[key] = torch.cat(tensors)
    return stacked


def _pad_dim1(tensor: torch.Tensor, size: int) -> torch.Tensor:
    shape = (tensor.shape[0], size - tensor.shape[1], *tensor.shape[2:])
    return torch.cat([tensor, tensor.new_zeros(shape)], dim=1)


def packed_layout(examples: list[RecordExample], pad_token_id: int) -> Layout:
    """One prefix-tree row per record (see module docstring)."""
    packs = [_pack_record(ex) for ex in examples]
    length = max(len(p.ids) for p in packs)
    n = len(packs)
    input_ids = torch.full((n, length), pad_token_id, dtype=torch.long)
    position_ids = torch.zeros(n, length, dtype=torch.long)
    visible = torch.zeros(n, 1, length, length, dtype=torch.bool)
    responses = torch.zeros(n, length, dtype=torch.bool)
    token_path = torch.zeros(n, length, dtype=torch.long)
    scored = _Scored()
    for b, pack in enumerate(packs):
        size = len(pack.ids)
        input_ids[b, :size] = torch.tensor(pack.ids)
        position_ids[b, :size] = torch.tensor(pack.positions)
        seg = torch.tensor(pack.segment_of)
        causal = torch.ones(size, size, dtype=torch.bool).tril()
        # within a bidirectional segment every token sees every other; elsewhere causally
        block = seg[:, None].eq(seg[None, :]) & pack.bidirectional[seg][:, None]
        visible[b, 0, :size, :size] = pack.ancestors[seg][:, seg] & (causal | block)
        # Padding attends only to itself, so no softmax row is empty (an all-masked row gives NaN).
        pad = torch.arange(size, length)
        visible[b, 0, pad, pad] = True
        responses[b, :size] = torch.tensor(pack.is_response)
        token_path[b, :size] = 8 * b + torch.tensor(pack.path)
        for predictor, start, tokens, cond in pack.responses:
            scored.add(b, predictor, start, tokens, 8 * b + cond)
    keep, pair_pos, labels, conds = scored.finish(n, length)
    paths = [ex.sequence(c, i, r)[0] for ex in examples for (c, i, r) in CONDITIONS]
    path_ids, path_mask = _right_padded(paths, pad_token_id)
    # Image inputs in the order of the image spans in the rows (the order the model fills them).
    images = [
        ex.image_inputs[i]
        for ex, pack in zip(examples, packs, strict=True)
        for i in pack.span_images
    ]
    first_span = [sum(len(p.span_images) for p in packs[:b]) for b in range(n)]
    path_image = torch.tensor(
        [
            first_span[b] + pack.span_of(c, i)
            for b, pack in enumerate(packs)
            for (c, i, _) in CONDITIONS
        ]
    )
    images = stack_images(images)
    return Layout(
        input_ids, visible, position_ids, images, keep, pair_pos, labels, conds, n, responses,
        path_ids, path_mask, path_image, token_path,
    )  # fmt: skip


@dataclass
class _Pack:
    """One record's prefix tree, token by token (segment, position, branch) and segment by segment."""

    ids: list[int] = dataclasses.field(default_factory=list)
    segment_of: list[int] = dataclasses.field(default_factory=list)
    positions: list[int] = dataclasses.field(default_factory=list)
    path: list[int] = dataclasses.field(default_factory=list)  # a condition whose branch holds it
    is_response: list[bool] = dataclasses.field(default_factory=list)
    parents: list[int] = dataclasses.field(default_factory=list)
    open_both_ways: list[bool] = dataclasses.field(default_factory=list)
    responses: list[tuple[int, int, list[int], int]] = dataclasses.field(default_factory=list)
    span_images: list[int] = dataclasses.field(default_factory=list)  # image (0/1) of each span
    ancestors: torch.Tensor | None = None  # ancestors[s, a]: a is s or an ancestor of s
    bidirectional: torch.Tensor | None = None  # per segment

    def add(self, tokens, parent, first_position, path, *, response=False, both_ways=False):
        segment = len(self.parents)
        self.parents.append(parent)
        self.open_both_ways.append(both_ways)
        self.ids.extend(tokens)
        self.segment_of.extend([segment] * len(tokens))
        self.positions.extend(range(first_position, first_position + len(tokens)))
        self.path.extend([path] * len(tokens))
        self.is_response.extend([response] * len(tokens))
        return segment

    def span_of(self, c: int, i: int) -> int:
        """Which of this record's image spans the branch of (context c, image i) goes through."""
        return 2 * i + c if len(self.span_images) == 4 else i

    def add_responses(self, ex: RecordExample, parent: int, depth: int, c: int, i: int) -> None:
        last_prompt_token = len(self.ids) - 1
        for r in (0, 1):
            cond = 4 * c + 2 * i + r
            start = len(self.ids)
            self.add(ex.response_ids[r], parent, depth, cond, response=True)
            self.responses.append((last_prompt_token, start, ex.response_ids[r], cond))

    def seal(self) -> _Pack:
        count = len(self.parents)
        self.ancestors = torch.eye(count, dtype=torch.bool)
        for s in range(count):
            a = self.parents[s]
            while a >= 0:
                self.ancestors[s, a] = True
                a = self.parents[a]
        self.bidirectional = torch.tensor(self.open_both_ways, dtype=torch.bool)
        return self


def _pack_record(ex: RecordExample) -> _Pack:
    """The prefix tree of one record's 8 conditions, by the family's attention semantics."""
    pack = _Pack()
    if ex.attention == "prefix_lm":
        # the prompt sees all of itself: nothing before the response is shared across contexts
        for i in (0, 1):
            for c in (0, 1):
                prompt = ex.prefix_ids + ex.image_ids[i] + ex.tail_ids[c]
                seg = pack.add(prompt, -1, 0, 4 * c + 2 * i, both_ways=True)
                pack.span_images.append(i)
                pack.add_responses(ex, seg, len(prompt), c, i)
        return pack.seal()
    prefix = pack.add(ex.prefix_ids, -1, 0, 0)
    depth_image = len(ex.prefix_ids)
    for i in (0, 1):
        image_both_ways = ex.attention == "image_bidirectional"
        image_seg = pack.add(ex.image_ids[i], prefix, depth_image, 2 * i, both_ways=image_both_ways)
        pack.span_images.append(i)
        depth_tail = depth_image + len(ex.image_ids[i])
        for c in (0, 1):
            tail_seg = pack.add(ex.tail_ids[c], image_seg, depth_tail, 4 * c + 2 * i)
            pack.add_responses(ex, tail_seg, depth_tail + len(ex.tail_ids[c]), c, i)
    return pack.seal()


def condition_logps(model, layout: Layout, *, attention_mask=None) -> torch.Tensor:
    """Summed response log-probs under each condition, shape (records, 2, 2, 2).

    The model's family adapter supplies what differs (positions, per-token inputs, the form of a
    packed mask). Only the positions in `layout.keep` go through the LM head (``logits_to_keep``
    as a boolean mask), so the (rows, length, vocab) logits are never built. `attention_mask`
    overrides the packed layout's (e.g. a flex_attention BlockMask on GPU).
    """
    from modeltrain.mcmdpo.families import adapter_for_model

    adapter = adapter_for_model(model)
    kwargs = dict(layout.image_inputs)
    position_ids = adapter.position_ids(model, layout)
    if position_ids is not None:
        kwargs["position_ids"] = position_ids
    if layout.packed:
        mask = attention_mask
        if mask is None:
            mask = adapter.packed_attention(layout.attention_mask, layout)
    else:
        mask = layout.attention_mask
        kwargs.update(adapter.token_inputs(layout))
    outputs = model(
        input_ids=layout.input_ids,
        attention_mask=mask,
        logits_to_keep=layout.keep,
        use_cache=False,
        **kwargs,
    )
    logits = outputs.logits
    if logits.dim() == 3:  # some models return (1, kept, vocab) for a boolean keep mask
        logits = logits.reshape(-1, logits.shape[-1])
    picked = logits[layout.pair_pos].float()
    token_logps = picked.gather(-1, layout.pair_label[:, None]).squeeze(-1) - torch.logsumexp(
        picked, dim=-1
    )
    sums = torch.zeros(layout.num_records * 8, dtype=token_logps.dtype, device=token_logps.device)
    sums = sums.index_add(0, layout.pair_cond, token_logps)
    return sums.view(layout.num_records, 2, 2, 2)


def response_token_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[label] per position; helper for tests and generation scoring."""
    return F.log_softmax(logits.float(), dim=-1).gather(-1, labels[..., None]).squeeze(-1)
