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
from avqa.features.encoders.weights import WeightsUnavailableError, download_timeout, existing_file, frozen
from avqa.runtime import autocast


DEFAULT_BACKBONE = "ViT-L-14-336"   # the paper's ViT-L/14@336px
DEFAULT_N_TOKENS = 14               # TSPM's merged tokens per frame
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


def clip_vit_dims(backbone: str = DEFAULT_BACKBONE, n_tokens: int = DEFAULT_N_TOKENS,
                  project_tokens: bool = False) -> dict:
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


def load_clip_vit(weights: str, seed: int, device, backbone: str = DEFAULT_BACKBONE):
    """open_clip CLIP ViT `backbone` (QuickGELU, as OpenAI's), frozen, in eval mode, on `device`, its visual
    blocks patched for ToMe (merging only inside tome.token_merging; the plain forward is open_clip's).

    random: built under torch.manual_seed(seed) (the global RNG is left untouched). pretrained: open_clip's
    'openai' tag (WeightsUnavailableError saying how to supply a file when it cannot be had). path: OpenAI's
    checkpoint or an open_clip state_dict of the same backbone. Never a silent fallback.
    """
    import open_clip

    _vision_config(backbone)
    if weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = open_clip.create_model(backbone, pretrained=None, force_quick_gelu=True)
    elif weights == "pretrained":
        try:
            with download_timeout():
                model = open_clip.create_model(backbone, pretrained="openai", force_quick_gelu=True)
        except Exception as err:
            raise WeightsUnavailableError(
                f"could not load the pretrained CLIP {backbone} weights (open_clip tag 'openai'): {err}\n"
                + HOW_TO_SUPPLY_VIT) from err
    else:
        file = existing_file(weights, f"CLIP {backbone}")
        try:
            model = open_clip.create_model(backbone, pretrained=str(file), force_quick_gelu=True)
        except Exception as err:
            raise ValueError(f"{file}: not a loadable CLIP {backbone} checkpoint: {err}") from err
    apply_tome(model.visual)
    return frozen(model, device)


def clip_vit_transform(backbone: str = DEFAULT_BACKBONE):
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


def clip_vit_frames(model, images: torch.Tensor, precision: str = "fp32", n_tokens: int = DEFAULT_N_TOKENS,
                    exact_embedding: bool = True, project_tokens: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
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


def clip_vit_tokenizer(backbone: str = DEFAULT_BACKBONE):
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
