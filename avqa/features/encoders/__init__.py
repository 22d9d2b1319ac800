"""The frozen encoders, one module per family: CLIP-RN50 (clip_rn50: visual 7x7x2048 maps + text tower),
ResNet-18 (resnet18: 7x7x512 maps), CLIP ViT (clip_vit: frame embedding + ToMe-merged tokens, text tower; tome.py
the merging) and VGGish (vggish: 128-d per second of audio). weights.py is the weights policy they share
(random | pretrained | a local checkpoint, never a silent fallback); base.py what extraction needs of an encoder.
Every model is returned frozen in eval() mode.

Each module ends with its extraction class, named by its record in the encoder registry (avqa.features.layout):
a new encoder is a module here plus one registry line.
"""
from avqa.features.encoders.clip_rn50 import (CLIP_ARCH, CLIP_IMAGE_SIZE, clip_image_transform, clip_maps,
                                              load_clip)
from avqa.features.encoders.clip_vit import (BACKBONES as CLIP_VIT_BACKBONES, clip_vit_dims, clip_vit_frames,
                                             clip_vit_text, clip_vit_tokenizer, clip_vit_transform, load_clip_vit)
from avqa.features.encoders.tome import apply_tome, merged_forward, token_merging, tome_schedule
from avqa.features.encoders.vggish import load_vggish, vggish_emb, vggish_examples
from avqa.features.encoders.weights import WeightsUnavailableError

__all__ = ["CLIP_ARCH", "CLIP_IMAGE_SIZE", "CLIP_VIT_BACKBONES", "WeightsUnavailableError", "apply_tome",
           "clip_image_transform", "clip_maps", "clip_vit_dims", "clip_vit_frames", "clip_vit_text",
           "clip_vit_tokenizer", "clip_vit_transform", "load_clip", "load_clip_vit", "load_vggish", "merged_forward",
           "token_merging", "tome_schedule", "vggish_emb", "vggish_examples"]
