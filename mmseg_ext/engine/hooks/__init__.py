from .non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .preemption_hook import REQUEUE_EXIT_CODE, PreemptionHook, TrainingPreempted
from .rng_state_hook import RNGStateHook

__all__ = ['NonFiniteLossError', 'NonFiniteLossHook', 'PreemptionHook', 'REQUEUE_EXIT_CODE',
           'RNGStateHook', 'TrainingPreempted']
