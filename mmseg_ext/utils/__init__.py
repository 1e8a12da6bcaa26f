from .checkpoint import check_checkpoint_matches, load_matching_checkpoint, raise_on_mismatch

__all__ = ['check_checkpoint_matches', 'load_matching_checkpoint', 'raise_on_mismatch']
