from .all_mlp_head import AllMLPHead, convert_hf_head, convert_official_head, head_to_hf

__all__ = ['AllMLPHead', 'convert_hf_head', 'convert_official_head', 'head_to_hf']
