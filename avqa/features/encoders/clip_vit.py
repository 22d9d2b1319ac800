"""The CLIP ViT family (TSPM; Li, Du, Hu, ACM MM 2024, sec. 3.1): per frame, CLIP's image embedding (D) and the
patch tokens merged by ToMe to n_tokens (D_tok), plus the same backbone's text tower for questions and prompts.

Backbone = an open_clip ViT config name, QuickGELU as OpenAI's checkpoints; the paper uses ViT-L/14@336px:
  backbone       image  patches  blocks  D (embedding)  D_tok (width)  text tokens
  ViT-B-32       224    7x7      12      512            768            512
  ViT-B-16       224    14x14    12      512            768            512
  ViT-L-14-336   336    24x24    24      768            1024           768
Frame embedding: by default CLIP's encode_image (no merging), as TSPM's frame features, computed by a pass of
the patched blocks with r = 0 (the same function as open_clip's forward to float tolerance, and under bf16
autocast on the CPU about twice as fast as its nn.MultiheadAttention path); a second, merging pass gives the
tokens. exact_embedding=False takes the merged pass's CLS embedding instead (one pass, cheaper, not CLIP's
embedding). Tokens are ln_post outputs at the ViT width, as TSPM's 1024-d tokens
(project_tokens=True maps them into the D-d joint space). Weights: as the other encoders (weights.py).
"""
from __future__ import annotations

import numpy as np
import torch

from avqa.features.encoders.tome import apply_tome, merged_forward, tome_schedule, vit_geometry
from avqa.features.encoders.base import FrozenEncoder
from avqa.features.encoders.weights import load_frozen
from avqa.runtime import autocast


BACKBONES = ("ViT-B-32", "ViT-B-16", "ViT-L-14-336")
HOW_TO_SUPPLY_VIT = (
    "Download the weights elsewhere and point the config at the local file, e.g.\n"
    "  weights: {clip_vit: path/to/ViT-L-14-336px.pt, ...}\n"
    "(OpenAI's CLIP checkpoint of that backbone, e.g. ViT-L-14-336px.pt / ViT-B-32.pt, or an open_clip state_dict "
    "of the same config), or use weights: random."
)


def _vision_config(backbone: str) -> dict:
    import open_clip

    config = open_clip.get_model_config(backbone)
    vision = (config or {}).get("vision_cfg", {})
    if not config or "timm_model_name" in vision or not isinstance(vision.get("patch_size"), int):
        raise ValueError(f"backbone {backbone!r} is not an open_clip CLIP ViT config (e.g. one of {BACKBONES})")
    return config


def clip_vit_dims(backbone: str, n_tokens: int, project_tokens: bool = False) -> dict:
    """The feature sizes of a backbone, from its config (no model built): embedding D, token shape
    (n_tokens, D_tok), text token width, image size, patches, depth and the ToMe schedule."""
    config = _vision_config(backbone)
    vision = config["vision_cfg"]
    side = vision["image_size"] // vision["patch_size"]
    schedule = tome_schedule(side * side, vision["layers"], n_tokens)
    embed = config["embed_dim"]
    return {"embedding": (embed,), "tokens": (n_tokens, embed if project_tokens else vision["width"]),
            "text_width": config["text_cfg"]["width"], "image_size": vision["image_size"],
            "n_patches": side * side, "depth": vision["layers"], "schedule": schedule}


def load_clip_vit(weights: str, seed: int, device, backbone: str):
    """open_clip CLIP ViT `backbone` (QuickGELU, as OpenAI's), frozen, in eval mode, on `device`, its visual
    blocks patched for ToMe (merging only inside tome.token_merging; the plain forward is open_clip's).

    random: built under torch.manual_seed(seed) (the global RNG is left untouched). pretrained: open_clip's
    'openai' tag (WeightsUnavailableError saying how to supply a file when it cannot be had). path: OpenAI's
    checkpoint or an open_clip state_dict of the same backbone. Never a silent fallback.
    """
    import open_clip

    _vision_config(backbone)

    def create(pretrained):
        return open_clip.create_model(backbone, pretrained=pretrained, force_quick_gelu=True)

    model = load_frozen(weights, seed, device, f"CLIP {backbone}", random=lambda: create(None),
                        pretrained=lambda: create("openai"), from_file=lambda file: create(str(file)),
                        source="open_clip tag 'openai'", how_to_supply=HOW_TO_SUPPLY_VIT)
    apply_tome(model.visual)
    return model


def clip_vit_transform(backbone: str):
    """CLIP's preprocessing for decoded frames at the backbone's image size S (224 or 336), batched on tensors.

    Returns f(frames) with frames uint8 (H, W, 3) or (N, H, W, 3) (numpy or torch) -> float32 (3, S, S) or
    (N, 3, S, S): resize the shortest side to S (bicubic, antialiased, uint8 like PIL), centre crop S, scale to
    [0, 1], normalise with OpenAI's mean/std: open_clip's val transform, without the PIL round trip.
    """
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    size = _vision_config(backbone)["vision_cfg"]["image_size"]

    def transform(frames) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(frames))
        if x.dtype != torch.uint8 or x.shape[-1] != 3 or x.ndim not in (3, 4):
            raise ValueError(f"expected uint8 frames (H, W, 3) or (N, H, W, 3), got {x.dtype} {tuple(x.shape)}")
        x = TF.resize(x.movedim(-1, -3), [size], interpolation=InterpolationMode.BICUBIC, antialias=True)
        x = TF.to_dtype(TF.center_crop(x, [size, size]), torch.float32, scale=True)
        return TF.normalize(x, mean=list(OPENAI_DATASET_MEAN), std=list(OPENAI_DATASET_STD))

    return transform


def clip_vit_frames(model, images: torch.Tensor, precision: str, n_tokens: int, exact_embedding: bool,
                    project_tokens: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """images (N, 3, S, S) -> (frame embeddings (N, D) float16, merged patch tokens (N, n_tokens, D_tok)
    float16), on the CPU. precision: fp32 | bf16 | fp16 autocast (fp16 on cuda only).

    exact_embedding: the embedding is CLIP's encode_image (an extra pass without merging); False: the CLS
    embedding of the merging pass. project_tokens: tokens @ proj (D_tok = D) instead of the ViT width.
    """
    visual = model.visual
    apply_tome(visual)
    n_patches, depth = vit_geometry(visual)
    schedule = tome_schedule(n_patches, depth, n_tokens)
    device = next(visual.parameters()).device
    x = images.to(device)
    if x.ndim != 4 or tuple(x.shape[-2:]) != tuple(visual.image_size):
        raise ValueError(f"expected images (N, 3, {visual.image_size[0]}, {visual.image_size[1]}), "
                         f"got {tuple(images.shape)}")
    with torch.inference_mode(), autocast(device, precision):
        merged_embedding, tokens, _ = merged_forward(visual, x, schedule)
        embedding = merged_forward(visual, x, (0,) * depth)[0] if exact_embedding else merged_embedding
        if project_tokens:
            tokens = tokens @ visual.proj
    return embedding.to("cpu", torch.float16), tokens.to("cpu", torch.float16).contiguous()


def clip_vit_tokenizer(backbone: str):
    import open_clip

    _vision_config(backbone)
    return open_clip.get_tokenizer(backbone)


def clip_vit_text(model, tokenizer, texts: list[str], batch: int = 256, precision: str = "fp32",
                  context_length: int | None = None) -> dict:
    """The same backbone's text tower on questions or prompts: sentence (N, D) float32 (the EOT token projected,
    as encode_text), tokens (N, L, text_width) float16 (ln_final outputs, zero at padding), token_mask (N, L)
    bool (real tokens incl. SOT/EOT). L = `context_length` or the longest text's token count (the causal text
    transformer makes cutting the padding exact; avqa.features.questions). The tokens are QA-TIGER's word features
    (questions-vit's question_tokens)."""
    from avqa.features.encoders.clip_text import text_forward, tokenize

    if not texts:
        raise ValueError("no texts to encode")
    device = next(model.parameters()).device
    ids = tokenize(tokenizer, list(texts), context_length)
    sentences, tokens = [], []
    with torch.inference_mode(), autocast(device, precision):
        for start in range(0, len(ids), batch):
            tok, sent = text_forward(model, ids[start:start + batch].to(device))
            tokens.append(tok.to("cpu", torch.float16))
            sentences.append(sent.to("cpu", torch.float32))
    token_mask = ids != 0
    tokens = torch.cat(tokens)
    tokens[~token_mask] = 0  # padding carries nothing; models read token_mask
    return {"sentence": torch.cat(sentences).numpy(), "tokens": tokens.numpy(), "token_mask": token_mask.numpy()}


class ClipViT(FrozenEncoder):
    """Extraction's CLIP ViT (features.clip_vit): per frame its embedding (store clip_vit) and its ToMe-merged
    patch tokens (store clip_vit_tokens), from one forward."""

    @staticmethod
    def input_size(spec) -> int:
        return clip_vit_dims(spec.clip_vit.backbone, spec.clip_vit.n_tokens)["image_size"]

    @staticmethod
    def preprocess(spec):
        return clip_vit_transform(spec.clip_vit.backbone)

    def load(self, spec, device):
        return load_clip_vit(spec.weights, spec.weights_seed, device, spec.clip_vit.backbone)

    @property
    def dims(self) -> dict:
        return clip_vit_dims(self.spec.clip_vit.backbone, self.spec.clip_vit.n_tokens)

    @property
    def outputs(self) -> dict[str, tuple[int, ...]]:
        return {"clip_vit": self.dims["embedding"], "clip_vit_tokens": self.dims["tokens"]}

    @property
    def provenance(self) -> dict:
        vit = self.spec.clip_vit
        return {**super().provenance, "backbone": vit.backbone, "n_tokens": vit.n_tokens,
                "tome_schedule": list(self.dims["schedule"]), "exact_embedding": vit.exact_embedding}

    def forward(self, inputs, precision):
        vit = self.spec.clip_vit
        embedding, tokens = clip_vit_frames(self.model, inputs, precision, vit.n_tokens, vit.exact_embedding)
        return embedding.numpy(), tokens.numpy()
