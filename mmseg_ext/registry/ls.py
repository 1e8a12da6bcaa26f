"""Long-Short Transformer attention and the paper's language models (configs/ls_transformer):
the attention layers, the character LM and the LRA classifier, their datasets and metrics, the
training hooks."""
from ..datasets import char_lm, lra  # noqa: F401
from ..engine import hooks, resumable_epoch_loop  # noqa: F401
from ..evaluation.metrics import bits_per_char, classification_accuracy  # noqa: F401
from ..models import layers, lm  # noqa: F401
from ..models import lra as lra_models  # noqa: F401
