"""Causal byte-level LM built from :class:`CausalLSAttention1d` (docs/ls_attention.md)."""
from .bits_per_char import BitsPerChar
from .byte_text_dataset import ByteTextDataset
from .ls_char_lm import CausalLSBlock, LSCharLM

__all__ = ['BitsPerChar', 'ByteTextDataset', 'CausalLSBlock', 'LSCharLM']
