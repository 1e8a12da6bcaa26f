from .all_mlp_head import AllMLPHead, convert_hf_head, convert_official_head

__all__ = ['AllMLPHead', 'convert_hf_head', 'convert_official_head']
