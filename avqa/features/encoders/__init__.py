"""The frozen encoders, one module per family: CLIP-RN50 (clip_rn50: visual 7x7x2048 maps + text tower) and
VGGish (vggish: 128-d per second of audio); weights.py is the weights policy they share (random | pretrained |
a local checkpoint, never a silent fallback). Every model is returned frozen in eval() mode.

A new encoder family (e.g. ResNet-18, CLIP ViT) is a module beside these with a loader and a forward, plus its
store layout in avqa.features.layout.
"""
from avqa.features.encoders.clip_rn50 import (CLIP_ARCH, CLIP_IMAGE_SIZE, DEFAULT_BN3_GAMMA, clip_image_transform,
                                              clip_maps, load_clip)
from avqa.features.encoders.vggish import SAMPLE_RATE, load_vggish, vggish_emb, vggish_examples
from avqa.features.encoders.weights import WeightsUnavailableError, resolve_weights

__all__ = ["CLIP_ARCH", "CLIP_IMAGE_SIZE", "DEFAULT_BN3_GAMMA", "SAMPLE_RATE", "WeightsUnavailableError",
           "clip_image_transform", "clip_maps", "load_clip", "load_vggish", "resolve_weights", "vggish_emb",
           "vggish_examples"]
from avqa.features.encoders.clip_vit import (BACKBONES as CLIP_VIT_BACKBONES, DEFAULT_BACKBONE as CLIP_VIT_BACKBONE,
                                             DEFAULT_N_TOKENS as CLIP_VIT_N_TOKENS, clip_vit_dims, clip_vit_frames,
                                             clip_vit_text, clip_vit_tokenizer, clip_vit_transform, load_clip_vit)
from avqa.features.encoders.tome import apply_tome, merged_forward, token_merging, tome_schedule

__all__ += ["CLIP_VIT_BACKBONES", "CLIP_VIT_BACKBONE", "CLIP_VIT_N_TOKENS", "apply_tome", "clip_vit_dims",
            "clip_vit_frames", "clip_vit_text", "clip_vit_tokenizer", "clip_vit_transform", "load_clip_vit",
            "merged_forward", "token_merging", "tome_schedule"]
