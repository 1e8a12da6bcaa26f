"""Stop (or skip) a training step whose loss or gradients are NaN or infinite, before it
changes the weights."""
import functools

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper
from mmengine.registry import HOOKS


class NonFiniteLossError(FloatingPointError):
    """Training met a NaN or infinite loss (or was about to save non-finite weights)."""


def _format_terms(log_vars):
    return ', '.join(f'{name}={float(torch.as_tensor(value).detach()):.4g}'
                     for name, value in log_vars.items())


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Check the loss of every training step before its backward pass, and its gradients
    before the optimizer step.

    A NaN or infinite loss (or gradient: a huge learning rate overflows the gradients one step
    before the loss) stops training at once with :class:`NonFiniteLossError`, which names the
    iteration and every loss term. The bad step never reaches the weights, no checkpoint is
    written, the newest checkpoint on disk stays the last good one, and the process exits
    non-zero. With ``max_skips=n`` the first ``n`` bad steps are skipped instead (no optimizer
    step; BatchNorm running statistics are put back), and the next one stops training. As a last
    guard, a checkpoint whose weights are not finite is never written. Under AMP the gradient
    check is left to the loss scaler, which skips overflowing steps itself.

    ``tools/train.py`` adds this hook to every config that does not list it; list it in
    ``custom_hooks`` to set ``max_skips``. In distributed training the ranks agree (all-reduce)
    on skipping, so they stay in step.
    """

    priority = 'HIGHEST'

    def __init__(self, max_skips=0):
        if max_skips < 0:
            raise ValueError(f'NonFiniteLossHook: max_skips must be >= 0, got {max_skips}')
        self.max_skips = max_skips
        self.skipped = 0
        self._terms = {}
        self._buffers = None

    def before_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        parse_losses = model.parse_losses
        optim_wrapper = runner.optim_wrapper
        update_params = optim_wrapper.update_params

        def parse_and_keep_terms(losses):
            loss, log_vars = parse_losses(losses)
            self._terms = log_vars
            return loss, log_vars

        def update_if_finite(loss, *args, **kwargs):
            bad = (~torch.isfinite(loss.detach())).any().float()
            all_reduce(bad, op='max')  # every rank takes the same decision
            if not bad.item():
                return update_params(loss, *args, **kwargs)
            self._bad_step(runner, model, optim_wrapper, 'loss')

        model.parse_losses = parse_and_keep_terms
        optim_wrapper.update_params = update_if_finite
        if not isinstance(optim_wrapper, AmpOptimWrapper):
            step = optim_wrapper.step

            @functools.wraps(step)  # keeps the parameter schedulers' step counter mark
            def step_if_finite(*args, **kwargs):
                grads = [p.grad for group in optim_wrapper.param_groups for p in group['params']
                         if p.grad is not None]  # all-reduced already: the same on every rank
                if grads and not torch.isfinite(torch.nn.utils.get_total_norm(grads)):
                    return self._bad_step(runner, model, optim_wrapper, 'gradients')
                return step(*args, **kwargs)

            optim_wrapper.step = step_if_finite

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.skipped < self.max_skips:  # a skipped step must not leave its BN statistics
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            self._buffers = [b.detach().clone() for b in model.buffers()]

    def _bad_step(self, runner, model, optim_wrapper, what):
        where = f'Non-finite {what} at iteration {runner.iter + 1} (epoch {runner.epoch + 1})'
        terms = _format_terms(self._terms) or 'no loss terms recorded on this rank'
        if self.skipped < self.max_skips:
            self.skipped += 1
            optim_wrapper.zero_grad()
            with torch.no_grad():
                for buffer, saved in zip(model.buffers(), self._buffers):
                    buffer.copy_(saved)
            runner.logger.warning(f'{where}: {terms}. Step skipped ({self.skipped} of '
                                  f'max_skips={self.max_skips}).')
            return
        last = runner.message_hub.get_info('last_ckpt')
        saved = f'the last good checkpoint is {last}. ' if last else 'no checkpoint was saved. '
        raise NonFiniteLossError(
            f'{where}: {terms}. Training stopped before this step changed the weights; {saved}'
            'Usual causes: a learning rate too high (optim_wrapper.optimizer.lr), no gradient '
            'clipping (optim_wrapper.clip_grad=dict(max_norm=...)), fp16 overflow (--amp), or '
            'wrong labels (tools/misc/check_dataset.py). To skip up to n bad steps instead, list '
            "dict(type='NonFiniteLossHook', max_skips=n) in custom_hooks.")

    def before_save_checkpoint(self, runner, checkpoint):
        bad = [name for name, value in checkpoint.get('state_dict', {}).items()
               if torch.is_tensor(value) and value.is_floating_point()
               and not torch.isfinite(value).all()]
        if bad:
            raise NonFiniteLossError(
                f'Refusing to save a checkpoint at iteration {runner.iter + 1}: {len(bad)} '
                f'weights are not finite ({", ".join(bad[:5])}{" ..." if len(bad) > 5 else ""}). '
                'The newest checkpoint on disk is the last good one.')
