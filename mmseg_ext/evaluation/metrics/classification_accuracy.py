"""Top-1 accuracy of a sequence classifier."""
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS


@METRICS.register_module()
class ClassificationAccuracy(BaseMetric):
    """``accuracy = 100 * #(pred == label) / #samples`` over the whole evaluation set.

    Expects the model's ``predict`` outputs to be dicts with ``pred`` and ``label``.
    """

    def process(self, data_batch, data_samples) -> None:
        self.results.extend(int(s['pred']) == int(s['label']) for s in data_samples)

    def compute_metrics(self, results: list) -> dict:
        return dict(accuracy=100.0 * sum(results) / len(results))
