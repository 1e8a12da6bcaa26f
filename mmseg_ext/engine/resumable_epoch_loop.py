"""An epoch-based training loop that a mid-epoch checkpoint resumes where it stopped."""
import torch
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop
from mmengine.utils import ProgressBar

#: Message-hub key (saved in every checkpoint, restored by ``--resume``): batches of the
#: current epoch already trained.
BATCHES_DONE = 'train_epoch_batches_done'


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop``, except that a run resumed from a checkpoint written in
    the middle of an epoch (by ``PreemptionHook``, or an iteration-interval ``CheckpointHook``)
    continues that epoch with its next batch; mmengine starts the epoch again, so its samples
    are trained twice and the iteration count and schedule drift.

    The batches already trained are drawn from the data loader again but not computed (as
    mmengine's ``IterBasedTrainLoop`` replays them), so the sample order is the uninterrupted
    run's; with non-persistent data loader workers (re-seeded at every epoch) their random
    augmentations are too, and the resumed run ends with exactly the uninterrupted run's
    weights. Persistent workers (seeded once per process) and the trainer's own random state
    (no workers) have moved on over the earlier epochs: there the rest of the epoch gets other
    augmentations than the uninterrupted run's (docs/compat.md).

    ``tools/train.py`` uses it for every epoch-based config.
    """

    def run_epoch(self) -> None:
        """Iterate one epoch, skipping the batches a resumed checkpoint had already trained."""
        hub = self.runner.message_hub
        done = hub.get_info(BATCHES_DONE, 0)
        if done and not 0 < done < len(self.dataloader):
            print_log(f'the checkpoint was written after batch {done} of epoch '
                      f'{self._epoch + 1}, which has {len(self.dataloader)} batches with this '
                      'config: the epoch starts again from its first batch', logger='current',
                      level='WARNING')
            done = 0
        elif done:
            print_log(f'resuming epoch {self._epoch + 1} after its batch {done} (of '
                      f'{len(self.dataloader)}): drawing the trained batches again without '
                      'training on them', logger='current')
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        if done:  # the checkpoint's torch RNG state already counts the draw of the epoch's
            with torch.random.fork_rng(devices=[]):  # data loader iterator (its worker seed)
                batches = iter(self.dataloader)
        else:
            batches = iter(self.dataloader)
        replay = ProgressBar(done) if done and is_main_process() else None
        for idx, data_batch in enumerate(batches):
            if idx < done:
                if replay is not None:
                    replay.update()
                continue
            hub.update_info(BATCHES_DONE, idx + 1)  # what a checkpoint of this iteration holds
            self.run_iter(idx, data_batch)
        hub.update_info(BATCHES_DONE, 0)  # before the epoch's own checkpoint is written
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
