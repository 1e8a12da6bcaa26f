"""Character-level LM with :class:`CausalLSAttention1d` (docs/ls_attention.md)."""
from .bits_per_char import BitsPerChar
from .char_lm_dataset import CharLMDataset, read_corpus, split_corpus, unigram_bpc, write_splits
from .ls_char_lm import ARCH_SETTINGS, CausalLSLayer, LSCharLM

__all__ = [
    'ARCH_SETTINGS', 'BitsPerChar', 'CausalLSLayer', 'CharLMDataset', 'LSCharLM', 'read_corpus',
    'split_corpus', 'unigram_bpc', 'write_splits'
]
