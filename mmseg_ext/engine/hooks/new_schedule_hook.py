"""``--resume-with-new-schedule``: the config's optimizer settings and schedule, not the
checkpoint's, from the resumed iteration on."""
import copy

from mmengine.hooks import Hook
from mmengine.optim import OptimWrapperDict
from mmengine.registry import HOOKS


def _param_groups(optim_wrapper):
    """Per optimizer, the groups its schedulers update (with mmengine's ``base_lr`` group)."""
    wrappers = optim_wrapper.values() if isinstance(optim_wrapper, OptimWrapperDict) else [
        optim_wrapper]
    return [wrapper.param_groups for wrapper in wrappers]


def _schedulers(param_schedulers):
    if isinstance(param_schedulers, dict):
        return [s for schedulers in param_schedulers.values() for s in schedulers]
    return list(param_schedulers or [])


@HOOKS.register_module()
class NewScheduleOnResumeHook(Hook):
    """After ``--resume`` has restored the checkpoint, put back the optimizer hyper-parameters
    (lr, weight decay, ...) the config gives and rebuild the param schedulers from the config,
    stepped to the resumed iteration (epoch for ``by_epoch`` schedulers) as
    ``ParamSchedulerHook`` would have. Optimizer statistics (momentum, Adam moments) stay the
    checkpoint's. ``tools/train.py --resume-with-new-schedule`` adds it when the config's
    ``optim_wrapper`` or ``param_scheduler`` differs from the checkpoint's.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner):
        # Built from the config, not yet overwritten by the checkpoint (load_or_resume is next).
        self._groups = [[{k: v for k, v in group.items() if k != 'params'} for group in groups]
                        for groups in _param_groups(runner.optim_wrapper)]

    def before_train(self, runner):
        for groups, saved in zip(_param_groups(runner.optim_wrapper), self._groups):
            for group, values in zip(groups, saved):
                group.update(values)
                for key, value in values.items():  # schedulers start from the base values
                    if key.startswith('initial_'):
                        group[key.removeprefix('initial_')] = value
        if runner.cfg.get('param_scheduler') is None:
            return
        runner.param_schedulers = runner.build_param_scheduler(
            copy.deepcopy(runner.cfg.param_scheduler))
        schedulers = _schedulers(runner.param_schedulers)
        for steps, by_epoch in ((runner.iter, False), (runner.epoch, True)):
            stepped = [s for s in schedulers if s.by_epoch == by_epoch]
            for _ in range(steps):
                for scheduler in stepped:
                    scheduler.step()
        lrs = [group['lr'] for groups in _param_groups(runner.optim_wrapper) for group in groups]
        runner.logger.info(f'--resume-with-new-schedule: optimizer and param schedulers from the '
                           f'config at iteration {runner.iter}; lr now {min(lrs):.4g}'
                           + (f' - {max(lrs):.4g}' if max(lrs) != min(lrs) else ''))
