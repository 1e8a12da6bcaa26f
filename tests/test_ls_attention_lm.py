"""The causal LS character LM: enwik8 / text8 data layout, memory across blocks, the paper's
configs, and training end to end through the mmengine Runner."""
import math
import zipfile
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from mmengine.runner import Runner

from mmseg_ext.datasets.char_lm import CharLMDataset, read_corpus, split_corpus, write_splits
from mmseg_ext.evaluation.metrics import BitsPerChar
from mmseg_ext.models.lm import LSCharLM
from mmseg_ext.toy_data.text import make_text
from tests.conftest import run_tool

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / 'configs/ls_transformer'


def toy_text(size, seed=0):
    return make_text(size, seed).encode()


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    """The toy corpus split as the enwik8 layout by tools/misc/prepare_char_lm_data.py."""
    out = tmp_path_factory.mktemp('toy_text')
    (out / 'toy_text').write_bytes(toy_text(30_000))
    proc = run_tool('tools/misc/prepare_char_lm_data.py', str(out / 'toy_text'), '--corpus',
                    'enwik8', '--valid-size', '3000', '--test-size', '2000', '--out', str(out))
    assert 'valid.raw: 3,000 bytes' in proc.stdout and 'unigram baseline' in proc.stdout
    return out


# ------------------------------------------------------------------------------------ data
def test_standard_split_and_clear_errors(tmp_path):
    data = bytes(range(97, 123)) * 10 + b' ' * 40  # 300 text8 characters
    splits = split_corpus(data, 'text8', valid_size=50, test_size=30)
    assert [len(splits[k]) for k in ('train', 'valid', 'test')] == [220, 50, 30]
    assert b''.join(splits[k] for k in ('train', 'valid', 'test')) == data
    with pytest.raises(ValueError, match=r'corpus.raw: 300 bytes, but the enwik8 file has '
                                         r'100,000,000'):
        split_corpus(data, 'enwik8', 'corpus.raw')
    with pytest.raises(ValueError, match=r"t8: byte b'X' at offset 3 is not a text8"):
        split_corpus(b'abcX' * 100, 'text8', 't8', valid_size=10, test_size=10)
    archive = tmp_path / 'enwik8.zip'
    with zipfile.ZipFile(archive, 'w') as f:
        f.writestr('enwik8', data)
    assert read_corpus(str(archive)) == data
    write_splits(splits, str(tmp_path / 'out'))
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == [
        'test.raw', 'train.raw', 'valid.raw']
    with pytest.raises(FileNotFoundError, match=r'missing/valid.raw not found: prepare'):
        CharLMDataset(str(tmp_path / 'missing'), 'valid')
    (tmp_path / 'tiny').mkdir()
    (tmp_path / 'tiny' / 'test.raw').write_bytes(b'ab')
    with pytest.raises(ValueError, match=r'tiny/test.raw has 2 bytes: too few for 4 streams'):
        CharLMDataset(str(tmp_path / 'tiny'), 'test', batch_size=4)


@pytest.mark.parametrize('streams', [1, 3])
def test_streams_cover_the_split_in_order(toy_root, streams):
    data = (toy_root / 'valid.raw').read_bytes()
    ds = CharLMDataset(str(toy_root), 'valid', seq_len=100, batch_size=streams)
    per_stream = (len(data) - 1) // streams
    assert len(ds) == math.ceil(per_stream / 100) * streams
    for s in range(streams):
        items = [ds[i] for i in range(s, len(ds), streams)]
        assert [it['first'] for it in items] == [True] + [False] * (len(items) - 1)
        assert all(it['stream'] == s for it in items)
        inputs = b''.join(bytes(it['inputs'][:it['num_targets']].tolist()) for it in items)
        targets = b''.join(bytes(it['inputs'][1:it['num_targets'] + 1].tolist()) for it in items)
        start = s * per_stream
        assert inputs == data[start:start + per_stream]
        assert targets == data[start + 1:start + per_stream + 1]
    assert sum(it['num_targets'] for it in map(ds.__getitem__, range(len(ds)))) == \
        per_stream * streams  # one stream: every byte but the first is a target


# ----------------------------------------------------------------------------------- model
def tiny_lm(**kwargs):
    torch.manual_seed(0)
    cfg = dict(embed_dims=16, depth=2, num_heads=1, ffn_dims=32, window_size=4, segment_size=4,
               dp_rank=1, mem_len=8, rel_pos=True)
    return LSCharLM(**dict(cfg, **kwargs)).eval()


def test_memory_carries_the_previous_block():
    """Two blocks with the memory carried == one pass over both, for everything the window and
    the compressed segments of the memory see (one head: official memory compression is then
    the in-block one; memory as long as a block, so no extra zero segments)."""
    model = tiny_lm()
    tokens = torch.randint(0, 256, (2, 16))
    zeros = [torch.zeros(2, 8, 16) for _ in model.layers]
    joint, _ = model.log_probs(tokens, zeros)
    first, memory = model.log_probs(tokens[:, :8], zeros)
    second, _ = model.log_probs(tokens[:, 8:], memory)
    torch.testing.assert_close(first, joint[:, :8])
    # the joint pass also sees the 8 zero memory tokens compressed; the blockwise one has
    # replaced them by the first block: compare with a model without the long branch
    model = tiny_lm(dp_rank=0)
    joint, _ = model.log_probs(tokens, zeros)
    first, memory = model.log_probs(tokens[:, :8], zeros)
    torch.testing.assert_close(model.log_probs(tokens[:, 8:], memory)[0], joint[:, 8:])


def test_streams_keep_their_memory_and_restart_it():
    model = tiny_lm()
    tokens = torch.randint(0, 256, (2, 17))
    inputs = [tokens[:, :9], tokens[:, 8:]]  # two blocks of 8 targets
    stream = torch.tensor([0, 1])
    flags = [torch.tensor([True, True]), torch.tensor([False, True])]
    out = [model(x, torch.tensor([8, 8]), f, stream) for x, f in zip(inputs, flags)]
    zeros = [torch.zeros(2, 8, 16) for _ in model.layers]
    expect, memory = model.log_probs(tokens[:, :8], zeros)
    torch.testing.assert_close(out[0], expect)
    carried = model.log_probs(tokens[:, 8:16], memory)[0]
    restarted = model.log_probs(tokens[:, 8:16], zeros)[0]
    torch.testing.assert_close(out[1][0], carried[0])  # stream 0 continues
    torch.testing.assert_close(out[1][1], restarted[1])  # stream 1 starts again
    assert not torch.allclose(carried[1], restarted[1])
    with pytest.raises(ValueError, match=r'streams \[0, 0\]: the dataset\'s batch_size'):
        model(inputs[0], stream=torch.tensor([0, 0]))


def test_predictions_are_causal_and_metric_is_bits():
    model = tiny_lm(num_heads=2)
    tokens = torch.randint(0, 256, (1, 21))
    changed = tokens.clone()
    changed[0, 12:] = (changed[0, 12:] + 1) % 256
    torch.testing.assert_close(model(tokens)[:, :12], model(changed)[:, :12])
    num = torch.tensor([15])  # the last 5 targets are padding
    metric = BitsPerChar()
    metric.process({}, model(tokens, num, mode='predict'))
    nll = torch.nn.functional.nll_loss(model(tokens)[0, :15], tokens[0, 1:16])
    assert math.isclose(metric.compute_metrics(metric.results)['bpc'], nll.item() / math.log(2),
                        rel_tol=1e-5)


@pytest.mark.parametrize('config,params', [('ls-lm-12l_8xb4-430k_enwik8.py', 44e6),
                                           ('ls-lm-12l_text8-test.py', 44e6),
                                           ('ls-lm-30l_enwik8-test.py', 110e6)])
def test_paper_configs_match_the_paper(config, params):
    cfg = Config.fromfile(CONFIGS / config)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - params) / params < 0.02, count
    attn = model.layers[0].attn  # official hyper-parameters (launch scripts)
    assert (attn.window_size, attn.segment_size, attn.dp_rank, attn.num_heads,
            attn.embed_dims, attn.rel_pos) == (512, 16, 1, 8, 512, True)
    assert cfg.test_dataloader.dataset.seq_len == 256 and cfg.test_dataloader.batch_size == 1
    if config.endswith('-test.py'):
        assert (cfg.model.mem_len, cfg.model.eval_mem_len) == (8192, 32768)


def test_runner_training_lowers_bpc(toy_root, tmp_path):
    cfg = Config.fromfile(CONFIGS / 'ls-char-lm_toy-text.py')
    cfg.work_dir = str(tmp_path / 'work')
    cfg.model.update(embed_dims=32, num_heads=2, ffn_dims=64, window_size=16, segment_size=8,
                     mem_len=32)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.update(data_root=str(toy_root), seq_len=64)
    cfg.train_dataloader.update(batch_size=8)
    cfg.train_dataloader.dataset.batch_size = 8
    cfg.train_cfg.update(max_iters=120, val_interval=120)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1000)  # no save_best:
    # runner.val() runs before training here
    runner = Runner.from_cfg(cfg)
    before = runner.val()['bpc']
    runner.train()
    after = runner.val()['bpc']
    assert before > 7.0  # ~ log2(256) at initialisation
    assert after < 4.0  # the unigram baseline of this text is 4.3 bits/char
