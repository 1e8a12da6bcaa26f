from .ls_attention_1d import LSAttention1d
from .ls_attention_2d import LSAttention2d
from .ls_attention_base import DualLayerNorm, DynamicProjection
from .ls_attention_causal import CausalLSAttention1d
from .ls_attention_convert import convert_official_ls_state_dict

__all__ = [
    'CausalLSAttention1d', 'DualLayerNorm', 'DynamicProjection', 'LSAttention1d', 'LSAttention2d',
    'convert_official_ls_state_dict'
]
