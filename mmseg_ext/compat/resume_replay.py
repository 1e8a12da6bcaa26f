"""Exact ``--resume`` on onedl-mmengine: replay the skipped batches, as upstream mmengine does.

On resume, an iteration-based loop skips the batches the interrupted run already trained on.
Upstream mmengine (0.10.7) loads them; onedl-mmengine (0.10.12) fast-forwards the sampler
without loading them (``_InfiniteDataloaderIterator.skip_iter``). The dataloader workers' random
state, which draws the crops and flips, then starts afresh at the resumed iteration instead of
where the uninterrupted run had it, and the resumed run trains on other augmentations
(tests/test_tools.py::test_resume_after_crash_matches_uninterrupted_run fails on it). Loading
the skipped batches costs their data time once per resume.

onedl-mmengine also creates the DataLoader iterator lazily, at the first batch, and creating it
draws from the main process's torch generator. The interrupted run drew it at iteration 0, so
the state saved with the checkpoint (and restored by ``RNGStateHook``) already holds that draw:
the replay runs on a fork of the generator, leaving the restored state as it was.
"""
import torch


def make_resume_replay_skipped_batches():
    """Route onedl-mmengine's ``skip_iter`` through loading the batches (no-op upstream)."""
    from mmengine.runner.loops import _InfiniteDataloaderIterator
    original = getattr(_InfiniteDataloaderIterator, 'skip_iter', None)
    if original is None or hasattr(original, '__wrapped__'):
        return

    def skip_iter(self, num_iters):
        with torch.random.fork_rng(devices=[]):
            for _ in range(num_iters):
                next(self)

    skip_iter.__wrapped__ = original
    _InfiniteDataloaderIterator.skip_iter = skip_iter
