"""CLIP ViT backbone sizes from open_clip's model config files, read without importing open_clip (hence torch):
what the Snakefile helpers need to size a model's inputs (avqa.workflow.visual_options)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path


def backbone_config(backbone: str) -> dict:
    """open_clip's config of a CLIP ViT backbone (its model_configs/{backbone}.json); a name that is not a ViT
    config is an error naming it."""
    found = importlib.util.find_spec("open_clip")  # locates the package without running its __init__
    if found is None or not found.submodule_search_locations:
        raise ModuleNotFoundError("open_clip is not installed: the CLIP ViT backbones are its model configs")
    path = Path(found.submodule_search_locations[0]) / "model_configs" / f"{backbone}.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    vision = config.get("vision_cfg", {})
    if "timm_model_name" in vision or not isinstance(vision.get("patch_size"), int):
        raise ValueError(f"backbone {backbone!r} is not an open_clip CLIP ViT config (no ViT {path.name} in "
                         f"{path.parent})")
    return config


def clip_vit_sizes(backbone: str) -> dict[str, int]:
    """{"embedding": D, the image (and text) embedding size, "token_width": the ViT width of its patch tokens}."""
    config = backbone_config(backbone)
    return {"embedding": config["embed_dim"], "token_width": config["vision_cfg"]["width"]}
