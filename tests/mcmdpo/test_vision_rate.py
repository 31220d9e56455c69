"""The vision encoder and projector can learn at a fraction of the language model's rate."""

import torch

from modeltrain.mcmdpo.modeling import parameter_group
from modeltrain.mcmdpo.tiny import build_tiny_llava
from modeltrain.mcmdpo.trainer import split_vision_groups


def _groups(optimizer):
    return [
        ({parameter_group(n) for n in names(optimizer, g)}, g["lr"], g["weight_decay"])
        for g in optimizer.param_groups
    ]


def names(optimizer, group):
    return [n for n, p in _MODEL.named_parameters() if any(p is q for q in group["params"])]


_MODEL, _ = build_tiny_llava(["one red circle on the left"])


def test_vision_and_projector_get_the_scaled_rate_in_every_group():
    decay = [p for n, p in _MODEL.named_parameters() if n.endswith("weight")]
    rest = [p for n, p in _MODEL.named_parameters() if not n.endswith("weight")]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=2e-3
    )
    split_vision_groups(optimizer, _MODEL, 0.1)
    groups = _groups(optimizer)
    assert {frozenset(k) for k, _, _ in groups} == {
        frozenset({"language"}),
        frozenset({"vision", "projector"}),
    }
    for kinds, lr, _ in groups:
        assert kinds in ({"language"}, {"vision", "projector"})
        assert lr == (2e-3 if kinds == {"language"} else 2e-3 * 0.1)
    # Each parameter keeps its original group's weight decay; none is lost or doubled.
    decayed = {id(p) for p in decay}
    for group in optimizer.param_groups:
        assert {id(p) in decayed for p in group["params"]} == {group["weight_decay"] == 0.1}
    seen = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in _MODEL.parameters())


def test_a_group_without_vision_parameters_is_left_alone():
    language = [p for n, p in _MODEL.named_parameters() if parameter_group(n) == "language"]
    optimizer = torch.optim.AdamW(language, lr=1e-3)
    split_vision_groups(optimizer, _MODEL, 0.1)
    assert len(optimizer.param_groups) == 1 and optimizer.param_groups[0]["lr"] == 1e-3
