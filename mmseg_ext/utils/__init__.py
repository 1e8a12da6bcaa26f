from .checkpoint import check_checkpoint_matches, load_state_dict_strict, state_dict_mismatch

__all__ = ['check_checkpoint_matches', 'load_state_dict_strict', 'state_dict_mismatch']
