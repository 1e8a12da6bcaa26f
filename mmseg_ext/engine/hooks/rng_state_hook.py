"""Carry the RNG states through checkpoints so ``--resume`` continues exactly."""
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the torch RNG states (CPU and CUDA) with each checkpoint and restore them on resume.

    mmengine re-seeds at start-up and, on resume, replays the data loader up to the saved
    iteration, which reproduces the data-augmentation (numpy/random) stream. What it loses is the
    torch stream used in the model (dropout, stochastic depth); this hook puts it back.
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint):
        state = dict(torch=torch.get_rng_state())
        if torch.cuda.is_available():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint.setdefault('meta', {})['rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint):
        state = checkpoint.get('meta', {}).get('rng_state')
        if state is None or not runner._resume:  # load_from (fine-tuning) keeps its own stream
            return
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
