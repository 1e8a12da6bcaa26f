from .new_schedule_hook import NewScheduleOnResumeHook
from .non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .preemption_hook import REQUEUE_EXIT_CODE, PreemptionHook, TrainingPreempted
from .rng_state_hook import RNGStateHook

__all__ = ['NewScheduleOnResumeHook', 'NonFiniteLossError', 'NonFiniteLossHook', 'PreemptionHook',
           'REQUEUE_EXIT_CODE', 'RNGStateHook', 'TrainingPreempted']
