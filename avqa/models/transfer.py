"""Initialising named layers of a model from another model's checkpoint (TASS-Net from AVST's grounding run).

TASS-Net sec. 4.1 ("Training Strategy"): "We utilize their pretrained weights directly for initializing certain
layers that overlap with our approach". The public code of its predecessor TJSTG (Bravo5542/TJSTG,
net_tjstg/main.py) loads AVST's grounding checkpoint (grounding_gen's main_grounding_gen_best.pt) and copies
fc_a1, fc_a2 (the audio MLP), fc_gl (the grounded-visual FC) and fc1..fc4 (the match classifier); everything
else keeps its initialisation. AVST_TO_TASS is that list on this project's modules:

  TJSTG / AVST public name  ->  avqa AVST (source)              ->  avqa TASSNet (destination)
  fc_a1, fc_a2                  audio_proj.mlp.{0,2}                audio_proj.mlp.{0,2}     128 -> d -> d
  fc_gl                         spatial_grounding.fc_gl             tsg.fc                   2d -> d
  fc1, fc2, fc3, fc4            match_head.mlp.{0,2,4,6}            match_head.mlp.{0,2,4,6} 2d -> d -> d/2 -> d/4 -> 2

A layer is a module prefix; every parameter and buffer under it is copied, so the per-channel input statistics
(`audio_proj.standardize`, fitted on each run's own train features) are not: the copied linear layers see the
standardised input either way.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

# destination layer of TASSNet -> source layer of AVST (see the module docstring)
AVST_TO_TASS = {
    "audio_proj.mlp": "audio_proj.mlp",
    "tsg.fc": "spatial_grounding.fc_gl",
    "match_head.mlp": "match_head.mlp",
}


class LayerTransferError(ValueError):
    """A layer mapping that does not fit the source checkpoint or the model."""


def layer_entries(state: Mapping[str, torch.Tensor], layer: str) -> dict[str, torch.Tensor]:
    """The entries of `state` under the module prefix `layer`, keyed by the rest of their name."""
    prefix = f"{layer}."
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}


def _top_level(state: Mapping[str, torch.Tensor]) -> list[str]:
    return sorted({key.split(".", 1)[0] for key in state})


def mapped_state(model: nn.Module, source_state: Mapping[str, torch.Tensor], layers: Mapping[str, str],
                 source: str = "source checkpoint") -> dict[str, tuple[str, torch.Tensor]]:
    """{model key: (source key, tensor)} of what `layers` ({destination layer: source layer}) takes from
    `source_state`.

    Every named layer must exist on both sides with the same entries (names below the prefix) of the same
    shapes, and no destination may lie inside another; anything else is a LayerTransferError naming the layer
    and what is wrong.
    """
    if not layers:
        raise LayerTransferError(f"{source}: no layers named to copy")
    nested = [(a, b) for a in layers for b in layers if a != b and b.startswith(f"{a}.")]
    if nested:
        raise LayerTransferError(f"destination layers inside one another: {nested}")
    own = model.state_dict()
    taken: dict[str, tuple[str, torch.Tensor]] = {}
    for destination, origin in layers.items():
        src = layer_entries(source_state, origin)
        dst = layer_entries(own, destination)
        if not src:
            raise LayerTransferError(f"{source}: has no layer {origin!r} (to copy into {destination!r}); its "
                                     f"top-level blocks: {_top_level(source_state)}")
        if not dst:
            raise LayerTransferError(f"the {type(model).__name__} model has no layer {destination!r} (to take "
                                     f"{origin!r} of {source}); its top-level blocks: {_top_level(own)}")
        if set(src) != set(dst):
            raise LayerTransferError(f"{source}: layer {origin!r} holds {sorted(src)} but the model's "
                                     f"{destination!r} holds {sorted(dst)}")
        wrong = [f"{name} {tuple(src[name].shape)} vs {tuple(dst[name].shape)}" for name in sorted(src)
                 if src[name].shape != dst[name].shape]
        if wrong:
            raise LayerTransferError(f"{source}: layer {origin!r} does not fit the model's {destination!r} "
                                     f"(source vs model shape): {', '.join(wrong)}")
        for name, value in src.items():
            taken[f"{destination}.{name}"] = (f"{origin}.{name}", value)
    return taken


def copy_layers(model: nn.Module, source_state: Mapping[str, torch.Tensor], layers: Mapping[str, str],
                source: str = "source checkpoint") -> list[str]:
    """Copy the layers named by `layers` ({destination in model: source in source_state}) into `model`.

    All layers are checked before any is copied (mapped_state); the rest of the model is untouched. Returns the
    copied entries as 'model key <- source key', sorted.
    """
    taken = mapped_state(model, source_state, layers, source)
    model.load_state_dict({key: value for key, (_, value) in taken.items()}, strict=False)
    return [f"{key} <- {origin}" for key, (origin, _) in sorted(taken.items())]
