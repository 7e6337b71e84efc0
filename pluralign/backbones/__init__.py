"""Frozen text backbones: the only place ``transformers`` models are loaded."""

from pluralign.backbones.text_encoder import TextEncoder, default_backbone_path

__all__ = ["TextEncoder", "default_backbone_path"]
