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

Both return a `Layout`; `condition_logps` runs the model on it and returns (batch, 2, 2, 2).
"""

from __future__ import annotations

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

    def to(self, device) -> Layout:
        move = lambda t: t.to(device) if isinstance(t, torch.Tensor) else t  # noqa: E731
        return Layout(
            input_ids=move(self.input_ids),
            attention_mask=move(self.attention_mask),
            position_ids=move(self.position_ids),
            image_inputs={k: move(v) for k, v in self.image_inputs.items()},
            keep=move(self.keep),
            pair_pos=move(self.pair_pos),
            pair_label=move(self.pair_label),
            pair_cond=move(self.pair_cond),
            num_records=self.num_records,
        )

    @property
    def num_tokens(self) -> int:
        """Real (non-padding) tokens, the quantity packing reduces."""
        if self.attention_mask.dim() == 2:
            return int(self.attention_mask.sum())
        return int(self.attention_mask.diagonal(dim1=-2, dim2=-1).sum())


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


def _stack_images(examples: list[RecordExample]) -> dict[str, torch.Tensor]:
    keys = examples[0].image_inputs[0].keys()
    return {k: torch.cat([ex.image_inputs[i][k] for ex in examples for i in (0, 1)]) for k in keys}


def unpacked_layout(examples: list[RecordExample], pad_token_id: int) -> Layout:
    """8 sequences per record, right-padded; row 8b + flat condition index."""
    sequences, scored = [], _Scored()
    for b, ex in enumerate(examples):
        for cond, (c, i, r) in enumerate(CONDITIONS):
            ids, prompt_len = ex.sequence(c, i, r)
            row = len(sequences)
            sequences.append(ids)
            scored.add(row, prompt_len - 1, prompt_len, ex.response_ids[r], 8 * b + cond)
    length = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), length), pad_token_id, dtype=torch.long)
    attention = torch.zeros(len(sequences), length, dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
    keep, pair_pos, labels, conds = scored.finish(len(sequences), length)
    images = {
        k: torch.cat([ex.image_inputs[i][k] for ex in examples for (_, i, _) in CONDITIONS])
        for k in examples[0].image_inputs[0]
    }
    return Layout(input_ids, attention, None, images, keep, pair_pos, labels, conds, len(examples))


def packed_layout(examples: list[RecordExample], pad_token_id: int) -> Layout:
    """One prefix-tree row per record (see module docstring)."""
    rows = [_pack_record(ex, b) for b, ex in enumerate(examples)]
    length = max(len(ids) for ids, *_ in rows)
    n = len(rows)
    input_ids = torch.full((n, length), pad_token_id, dtype=torch.long)
    position_ids = torch.zeros(n, length, dtype=torch.long)
    visible = torch.zeros(n, 1, length, length, dtype=torch.bool)
    scored = _Scored()
    for b, (ids, segment_of, positions, ancestors, responses) in enumerate(rows):
        size = len(ids)
        input_ids[b, :size] = torch.tensor(ids)
        position_ids[b, :size] = torch.tensor(positions)
        seg = torch.tensor(segment_of)
        causal = torch.ones(size, size, dtype=torch.bool).tril()
        visible[b, 0, :size, :size] = ancestors[seg][:, seg] & causal
        # Padding attends only to itself, so no softmax row is empty (an all-masked row gives NaN).
        pad = torch.arange(size, length)
        visible[b, 0, pad, pad] = True
        for predictor, start, tokens, cond in responses:
            scored.add(b, predictor, start, tokens, 8 * b + cond)
    keep, pair_pos, labels, conds = scored.finish(n, length)
    return Layout(
        input_ids, visible, position_ids, _stack_images(examples), keep, pair_pos, labels, conds, n
    )


def _pack_record(ex: RecordExample, record: int):
    """Token ids, segment per token, positions, ancestor matrix and response slots of one record."""
    ids: list[int] = []
    segment_of: list[int] = []
    positions: list[int] = []
    parents: list[int] = []
    responses: list[tuple[int, int, list[int], int]] = []

    def add_segment(tokens: list[int], parent: int, first_position: int) -> int:
        segment = len(parents)
        parents.append(parent)
        ids.extend(tokens)
        segment_of.extend([segment] * len(tokens))
        positions.extend(range(first_position, first_position + len(tokens)))
        return segment

    prefix = add_segment(ex.prefix_ids, -1, 0)
    depth_image = len(ex.prefix_ids)
    for i in (0, 1):
        image_seg = add_segment(ex.image_ids[i], prefix, depth_image)
        depth_tail = depth_image + len(ex.image_ids[i])
        for c in (0, 1):
            tail_seg = add_segment(ex.tail_ids[c], image_seg, depth_tail)
            last_prompt_token = len(ids) - 1
            depth_response = depth_tail + len(ex.tail_ids[c])
            for r in (0, 1):
                start = len(ids)
                add_segment(ex.response_ids[r], tail_seg, depth_response)
                responses.append((last_prompt_token, start, ex.response_ids[r], 4 * c + 2 * i + r))

    count = len(parents)
    ancestors = torch.eye(count, dtype=torch.bool)  # ancestors[s, a]: a is s or an ancestor of s
    for s in range(count):
        a = parents[s]
        while a >= 0:
            ancestors[s, a] = True
            a = parents[a]
    return ids, segment_of, positions, ancestors, responses


def condition_logps(model, layout: Layout, *, attention_mask=None) -> torch.Tensor:
    """Summed response log-probs under each condition, shape (records, 2, 2, 2).

    Only the positions in `layout.keep` go through the LM head (``logits_to_keep`` as a boolean
    mask), so the (rows, length, vocab) logits are never built. `attention_mask` overrides the
    layout's (e.g. a flex_attention BlockMask on GPU).
    """
    kwargs = dict(layout.image_inputs)
    if layout.position_ids is not None:
        kwargs["position_ids"] = layout.position_ids
    outputs = model(
        input_ids=layout.input_ids,
        attention_mask=layout.attention_mask if attention_mask is None else attention_mask,
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
