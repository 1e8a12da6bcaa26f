from .checkpoint import check_checkpoint_matches, raise_on_mismatch

__all__ = ['check_checkpoint_matches', 'raise_on_mismatch']
