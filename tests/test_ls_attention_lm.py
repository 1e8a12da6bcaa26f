"""The causal LS char-LM example trains end to end through the mmengine Runner."""
import importlib.util
import math
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmseg_ext.models.lm import BitsPerChar, ByteTextDataset, LSCharLM

ROOT = Path(__file__).resolve().parents[1]


def load_make_toy_text():
    spec = importlib.util.spec_from_file_location('make_toy_text',
                                                  ROOT / 'tools/misc/make_toy_text.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_toy_text_is_deterministic_and_dataset_splits_by_offset(tmp_path):
    make = load_make_toy_text()
    text = make.make_text(5000, seed=3)
    assert text == make.make_text(5000, seed=3) and text != make.make_text(5000, seed=4)
    path = tmp_path / 'toy.txt'
    path.write_bytes(text.encode())
    data = text.encode()
    train = ByteTextDataset(str(path), 'train', val_fraction=0.2, seq_len=32, stride=16)
    val = ByteTextDataset(str(path), 'val', val_fraction=0.2, seq_len=32)
    cut = int(round(len(data) * 0.8))
    assert bytes(train[1]['inputs'].tolist()) == data[16:49]
    assert bytes(val[0]['inputs'].tolist()) == data[cut:cut + 33]
    assert len(val) == (len(data) - cut - 33) // 32 + 1
    assert 3.0 < make.unigram_bpc(data, 0.2) < 5.0


def test_lm_predictions_are_causal_and_metric_is_bits():
    torch.manual_seed(0)
    model = LSCharLM(embed_dims=16, depth=2, num_heads=2, window_size=4, segment_size=3,
                     dp_rank=1, max_len=32).eval()
    tokens = torch.randint(0, 256, (1, 21))
    changed = tokens.clone()
    changed[0, 12:] = (changed[0, 12:] + 1) % 256
    torch.testing.assert_close(model(tokens)[:, :12], model(changed)[:, :12])
    outputs = model(tokens, mode='predict')
    metric = BitsPerChar()
    metric.process({}, outputs)
    nll = torch.nn.functional.cross_entropy(model(tokens)[0], tokens[0, 1:])
    assert math.isclose(metric.compute_metrics(metric.results)['bpc'], nll.item() / math.log(2),
                        rel_tol=1e-5)


def test_runner_training_lowers_bpc(tmp_path):
    make = load_make_toy_text()
    data_file = tmp_path / 'toy.txt'
    data_file.write_bytes(make.make_text(40_000).encode())
    cfg = Config.fromfile(ROOT / 'configs/ls_transformer/ls-char-lm_toy-text.py')
    cfg.work_dir = str(tmp_path / 'work')
    cfg.model.update(embed_dims=32, depth=1, num_heads=2, window_size=16, segment_size=8,
                     max_len=64)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.update(data_file=str(data_file), seq_len=64, stride=64)
        loader.batch_size = 8
    cfg.train_cfg.update(max_iters=40, val_interval=40)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.checkpoint.interval = 1000
    runner = Runner.from_cfg(cfg)
    before = runner.val()['bpc']
    runner.train()
    after = runner.val()['bpc']
    assert before > 7.0  # ~ log2(256) at initialisation
    assert after < before - 2.0
