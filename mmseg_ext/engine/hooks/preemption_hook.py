"""Checkpoint and exit cleanly when a cluster asks a job to stop (Slurm preemption, time limit)."""
import atexit
import functools
import multiprocessing
import os
import os.path as osp
import signal
import threading

import torch
from mmengine.dist import all_reduce, barrier, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS

# EX_TEMPFAIL of sysexits.h ("try again later"); tools/slurm_train.sh requeues on it.
REQUEUE_EXIT_CODE = 75


class TrainingPreempted(SystemExit):
    """Raised after the checkpoint is written: exits the process with the requeue code."""


# Shared with the data loader workers (forked after it is made): 1 once the trainer is done;
# from then on a worker that gets one of the signals exits at once, quietly (the trainer, or
# multiprocessing's exit handler, stops workers still alive at exit with SIGTERM).
_TRAINER_DONE = multiprocessing.Value('b', 0, lock=False)
atexit.register(setattr, _TRAINER_DONE, 'value', 1)


def _worker_signal(signum, frame):
    """Ignore the signal while the trainer runs; afterwards exit with status 0, as PyTorch's own
    worker handler does when its parent terminates it. Dying of the signal instead makes the
    trainer's SIGCHLD handler report "DataLoader worker ... is killed by signal: Terminated" at
    every exit that still has workers (persistent ones)."""
    if _TRAINER_DONE.value:
        os._exit(0)


def _leave_signals_to_the_trainer(signals):
    """Make the data loader workers the Runner builds ignore ``signals`` while training runs.

    Slurm signals every process of a job step. PyTorch's workers die of SIGTERM (their handler
    re-raises it) and the trainer then fails with "DataLoader worker is killed" before it can
    save. mmengine seeds each worker through ``default_worker_init_fn``, which runs in the
    worker after PyTorch has set its handlers: the wrapper installs one that ignores the signals
    until the trainer is done, so that the trainer can still stop its workers at exit.
    """
    import mmengine.runner.runner as runner_module
    seed_worker = runner_module.default_worker_init_fn
    if getattr(seed_worker, 'ignored_signals', None) == signals:
        return
    original = getattr(seed_worker, '__wrapped__', seed_worker)

    @functools.wraps(original)
    def seed_worker_ignoring_signals(*args, **kwargs):
        original(*args, **kwargs)
        for signum in signals:
            signal.signal(signum, _worker_signal)

    seed_worker_ignoring_signals.ignored_signals = signals
    runner_module.default_worker_init_fn = seed_worker_ignoring_signals


@HOOKS.register_module()
class PreemptionHook(Hook):
    """On SIGTERM or SIGUSR1, finish the current iteration, save a checkpoint, then exit with
    :data:`REQUEUE_EXIT_CODE`.

    Slurm sends SIGTERM when it preempts a job (``KillWait``, 30 s by default, before SIGKILL) and
    ``srun --signal=USR1@T`` sends SIGUSR1 T seconds before the time limit. ``tools/slurm_train.sh``
    requeues the job on this exit code and restarts it with ``--resume``, which continues
    exactly: iteration-based loops replay the data up to the checkpoint, epoch-based ones
    (``ResumableEpochBasedTrainLoop``) continue the epoch with its next batch. In distributed
    training the ranks agree (all-reduce) on the iteration
    to stop at, and all wait until rank 0 has written the checkpoint.

    ``tools/train.py`` adds this hook to every config that does not list it.
    """

    priority = 'LOWEST'  # after CheckpointHook, which may have saved this iteration already

    def __init__(self, signals=('SIGTERM', 'SIGUSR1'), exit_code=REQUEUE_EXIT_CODE):
        self.signals = [getattr(signal, name) for name in signals]
        self.exit_code = exit_code
        self._received = None
        self._previous = {}
        _leave_signals_to_the_trainer(self.signals)

    def _on_signal(self, signum, frame):
        self._received = signum

    def before_train(self, runner):
        if threading.current_thread() is not threading.main_thread():
            runner.logger.warning('PreemptionHook: not in the main thread, so SIGTERM and SIGUSR1 '
                                  'end training without a checkpoint')
            return
        _TRAINER_DONE.value = 0
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def after_train(self, runner):
        _TRAINER_DONE.value = 1
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        flag = torch.tensor(0. if self._received is None else float(self._received))
        all_reduce(flag, op='max')  # stop every rank at the same iteration
        if not flag.item():
            return
        name = signal.Signals(int(flag.item())).name
        path = self._save(runner)
        barrier()  # no rank exits while rank 0 is still writing
        _TRAINER_DONE.value = 1
        runner.logger.warning(
            f'{name} received: saved {path} after iteration {runner.iter + 1}; exiting with code '
            f'{self.exit_code} so that the job is requeued and resumed (--resume).')
        raise TrainingPreempted(self.exit_code)

    def _save(self, runner):
        step = runner.iter + 1
        hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
        if hook is not None and not hook.by_epoch:
            path = hook.file_backend.join_path(hook.out_dir, hook.filename_tmpl.format(step))
            if hook.last_ckpt != path:  # CheckpointHook did not save this iteration
                hook._save_checkpoint(runner)
            return path
        # Epoch-based loops: a checkpoint in the middle of the epoch, with the iteration count.
        out_dir = hook.out_dir if hook is not None else runner.work_dir
        filename = f'epoch_{runner.epoch + 1}_iter_{step}.pth'
        runner.save_checkpoint(out_dir, filename, by_epoch=False)
        path = osp.join(out_dir, filename)
        if is_main_process():
            with open(osp.join(runner.work_dir, 'last_checkpoint'), 'w') as f:
                f.write(path)
        return path
