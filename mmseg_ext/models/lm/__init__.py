"""Character-level LM with :class:`CausalLSAttention1d` (docs/ls_attention.md)."""
from .ls_char_lm import ARCH_SETTINGS, CausalLSLayer, LSCharLM

__all__ = ['ARCH_SETTINGS', 'CausalLSLayer', 'LSCharLM']
