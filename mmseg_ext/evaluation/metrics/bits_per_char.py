"""Bits per character of a byte-level language model."""
import math

from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS


@METRICS.register_module()
class BitsPerChar(BaseMetric):
    """``bpc = sum(-log2 p(byte_t | bytes_<t)) / #bytes`` over the whole evaluation set.

    Expects the model's ``predict`` outputs to be dicts with ``nll_sum`` (natural log, summed over
    a sample's predicted bytes) and ``num_chars``.
    """

    def process(self, data_batch, data_samples) -> None:
        self.results.extend((float(s['nll_sum']), int(s['num_chars'])) for s in data_samples)

    def compute_metrics(self, results: list) -> dict:
        nll = sum(r[0] for r in results)
        chars = sum(r[1] for r in results)
        return dict(bpc=nll / chars / math.log(2))
