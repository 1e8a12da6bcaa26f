"""Long Range Arena on LSAttention1d: ListOps semantics, the release formats (generator -> dataset
round trip, errors naming file and line), the classifier (the official CLS read-out, padding
invariance, parameter counts), the configs (official recipe and one-cycle schedule) and a short
learning run through the Runner."""
import csv
import math
import os.path as osp
import re

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, PARAM_SCHEDULERS
from mmengine.runner import Runner

from mmseg_ext.datasets.lra import AANRetrievalDataset, IMDbDataset, ListOpsDataset, lra_collate
from mmseg_ext.evaluation.metrics import ClassificationAccuracy
from mmseg_ext.models.lra import LRAClassifier, LSEncoderBlock, attention_per_head
from mmseg_ext.toy_data import listops
from mmseg_ext.toy_data import lra as toy_data
from tests.conftest import REPO, run_tool

CONFIGS = osp.join(REPO, 'configs', 'ls_transformer')

# Evaluated by hand. MED of an even count is the mean of the middle two, rounded down.
HAND_EVALUATED = [
    ('( ( ( [MAX 2 ) 9 ) ] )', 9),
    ('( ( ( ( [MIN 7 ) 3 ) 5 ) ] )', 3),
    ('( ( ( ( ( [MED 4 ) 1 ) 9 ) 6 ) ] )', 5),  # 1 4 6 9 -> (4 + 6) / 2
    ('( ( ( [MED 2 ) 5 ) ] )', 3),  # 3.5 -> 3
    ('( ( ( ( [SM 9 ) 8 ) 7 ) ] )', 4),  # 24 mod 10
    ('( ( ( [MAX ( ( ( [MIN 4 ) 2 ) ] ) ) ( ( ( [SM 5 ) 6 ) ] ) ) ] )', 2),  # MAX(2, 1)
    # MED(9, 0, 8)
    ('( ( ( ( [MED ( ( ( ( [SM 3 ) 3 ) 3 ) ] ) ) 0 ) ( ( ( [MAX 1 ) 8 ) ] ) ) ] )', 8),
]


@pytest.mark.parametrize('source,value', HAND_EVALUATED)
def test_listops_value_of_hand_evaluated_expressions(source, value):
    assert listops.evaluate(source) == value


def test_listops_release_syntax_and_official_tokens():
    expr = ('MAX', [('MIN', [4, 2]), ('SM', [5, 6])])
    assert listops.to_source(expr) == HAND_EVALUATED[5][0]
    # ids: padding 0, digits 1-10, MIN MAX MED SM 11-14, ']' 15; the LRA pipeline keeps only
    # alphanumeric tokens, so brackets and parentheses vanish
    assert listops.tokenize('( ( ( [MAX 2 ) 9 ) ] )') == [12, 3, 10]
    assert listops.tokenize('( ( ( [MAX 2 ) 9 ) ] )', keep_brackets=True) == [12, 3, 10, 15]
    assert listops.tokenize(HAND_EVALUATED[5][0]) == [12, 11, 5, 3, 14, 6, 7]


@pytest.mark.parametrize('source', [
    '( ( [MAX 2 ) ] )',  # one argument
    '( ( ( [MAX 2 ) 9 )',  # not closed
    '( ( ( [ABS 2 ) 9 ) ] )',  # unknown operator
    '( ( ( [MAX 2 ) 9 ) ] ) ( ( ( [MIN 2 ) 9 ) ] )',  # two expressions
    '7 ]',
])
def test_listops_malformed_expression_raises(source):
    with pytest.raises(ValueError):
        listops.evaluate(source)


@pytest.fixture(scope='module')
def toy_release(tmp_path_factory):
    """What tools/misc/make_toy_lra.py writes: the three tasks in their release layouts."""
    out = tmp_path_factory.mktemp('toy_release')
    proc = run_tool('tools/misc/make_toy_lra.py', '--out', str(out), '--num-train', '32',
                    '--num-eval', '8', '--seed', '1')
    assert 'ListOps: wrote 32 train / 8 val / 8 test' in proc.stdout, proc.stdout
    return dict(listops=out / 'lra_release' / 'listops-1000', text=out / 'aclImdb',
                retrieval=out / 'lra_release' / 'tsv_data')


def test_listops_generator_round_trip(toy_release):
    root = toy_release['listops']
    assert (root / 'basic_train.tsv').read_bytes().startswith(b'Source\tTarget\r\n')
    sources = []
    for split, size in (('train', 32), ('val', 8), ('test', 8)):
        with open(root / f'basic_{split}.tsv', newline='') as f:
            rows = list(csv.reader(f, delimiter='\t'))
        assert rows[0] == ['Source', 'Target'] and len(rows) == size + 1
        assert all(listops.evaluate(source) == int(target) for source, target in rows[1:])
        data = ListOpsDataset(str(root), split)
        assert data.labels.tolist() == [int(target) for _, target in rows[1:]]
        for i, (source, _) in enumerate(rows[1:]):
            assert data[i]['inputs'].tolist() == listops.tokenize(source)
        sources += [source for source, _ in rows[1:]]
    assert len(set(sources)) == len(sources)  # no expression in two splits
    assert any(source.count('[') > 1 for source in sources)  # nested expressions too
    assert len(ListOpsDataset(str(root), 'val', max_length=3)[0]['inputs']) == 3


def test_imdb_generator_round_trip(toy_release):
    root = toy_release['text']
    data = IMDbDataset(str(root), 'test')
    assert sorted(data.labels.tolist()) == [0] * 4 + [1] * 4
    first_neg = sorted((root / 'test' / 'neg').glob('*.txt'))[0]
    index, rating = map(int, first_neg.stem.split('_'))
    assert 1 <= rating <= 4 and all(7 <= int(p.stem.split('_')[1]) <= 10
                                    for p in (root / 'test' / 'pos').glob('*.txt'))
    text = first_neg.read_bytes().strip()
    assert data[0]['label'] == 0 and data[0]['inputs'].tolist() == [b + 1 for b in text]
    assert len(IMDbDataset(str(root), 'test', max_length=7)[3]['inputs']) == 7


def test_aan_generator_round_trip(toy_release):
    root = toy_release['retrieval']
    lines = (root / 'new_aan_pairs.eval.tsv').read_bytes().splitlines()
    fields = lines[1].split(b'\t')
    assert len(lines) == 8 and len(fields) == 5 and fields[3].startswith(b"b'")
    data = AANRetrievalDataset(str(root), 'eval')
    assert data.labels.tolist() == [int(line.split(b'\t')[0]) for line in lines] == [0, 1] * 4
    pair = data[1]['inputs']
    length = max(len(fields[3]), len(fields[4]))
    assert pair.shape == (2, length) and data[1]['label'] == int(fields[0])
    for row, text in zip(pair.tolist(), fields[3:]):
        assert row == [b + 1 for b in text] + [0] * (length - len(text))
    assert AANRetrievalDataset(str(root), 'eval', max_length=5)[0]['inputs'].shape == (2, 5)


def test_generators_are_deterministic(tmp_path):
    for seed, out in ((0, 'a'), (0, 'b'), (1, 'c')):
        toy_data.make_listops(str(tmp_path / out), dict(train=5), seed=seed, max_depth=3,
                             max_args=3, min_length=2, max_length=30)
    read = [(tmp_path / out / 'basic_train.tsv').read_bytes() for out in 'abc']
    assert read[0] == read[1] != read[2]


LISTOPS_OK = 'Source\tTarget\n( ( ( [MAX 2 ) 9 ) ] )\t9\n'
AAN_OK = "1\tP1\tP2\tb'first'\tb'second'\n"


@pytest.mark.parametrize('dataset,content,error', [
    ('listops', LISTOPS_OK + '( ( ( [MAX 2 ) 9 ) ] )\t9\textra\n',
     r'basic_train.tsv:3: expected 2 tab-separated fields \(Source, Target\), got 3'),
    ('listops', LISTOPS_OK + '( ( ( [MAX 2 ) 9 ) ] )\n', r'basic_train.tsv:3: expected 2'),
    ('listops', LISTOPS_OK + '( ( ( [MIN 2 ) 9 ) ] )\t10\n',
     r"basic_train.tsv:3: Target '10' is not a class; expected an integer in 0..9"),
    ('listops', LISTOPS_OK + '( ( ( [MIN 2 ) 9 ) ] )\ttwo\n', r"basic_train.tsv:3: Target 'two'"),
    ('listops', LISTOPS_OK + '( ( ( [FIRST 2 ) 9 ) ] )\t2\n',
     r"basic_train.tsv:3: Source: unknown ListOps token 'FIRST'"),
    ('listops', LISTOPS_OK + '( )\t2\n', r'basic_train.tsv:3: empty Source'),
    ('listops', '', r'basic_train.tsv has no samples; expected a header line'),
    ('listops', 'Source\tTarget\r\n', r'basic_train.tsv has no samples'),
    ('listops', 'Input\tTarget\n1\t1\n', r"basic_train.tsv:1: the header \['Input', 'Target'\] "
     r"lacks the column\(s\) \['Source'\]"),
    ('aan', AAN_OK + "1\tP1\tP2\tb'first'\n",
     r'new_aan_pairs.train.tsv:2: expected 5 tab-separated fields \(label, id1, id2, text1, '
     r'text2\), got 4'),
    ('aan', AAN_OK + "2\tP1\tP2\tb'first'\tb'second'\n",
     r"new_aan_pairs.train.tsv:2: label '2' is not a class; expected an integer in 0..1"),
    ('aan', AAN_OK + "nan\tP1\tP2\tb'first'\tb'second'\n",
     r"new_aan_pairs.train.tsv:2: label 'nan'"),
    ('aan', AAN_OK + "0\tP1\tP2\t\tb'second'\n", r'new_aan_pairs.train.tsv:2: empty text1'),
    ('aan', '', r'new_aan_pairs.train.tsv has no samples; expected one line per pair'),
])
def test_bad_tsv_names_file_and_line(tmp_path, dataset, content, error):
    name = 'basic_train.tsv' if dataset == 'listops' else 'new_aan_pairs.train.tsv'
    (tmp_path / name).write_text(content)
    cls = ListOpsDataset if dataset == 'listops' else AANRetrievalDataset
    with pytest.raises(ValueError, match=re.escape(f'{tmp_path}/') + error):
        cls(str(tmp_path), 'train')


def test_imdb_strips_reviews_and_bad_layout_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=f'{tmp_path}/train/neg does not exist'):
        IMDbDataset(str(tmp_path), 'train')
    for name in ('neg', 'pos'):
        (tmp_path / 'train' / name).mkdir(parents=True)
    with pytest.raises(ValueError, match=f'{tmp_path}/train/neg has no .txt reviews'):
        IMDbDataset(str(tmp_path), 'train')
    (tmp_path / 'train' / 'neg' / '0_1.txt').write_text(' Dull.\n')
    (tmp_path / 'train' / 'pos' / '1_9.txt').write_text('Fine!')
    data = IMDbDataset(str(tmp_path), 'train')  # reviews are stripped, as tfds' imdb_reviews
    assert data[0]['inputs'].tolist() == [b + 1 for b in b'Dull.'] and data[1]['label'] == 1
    (tmp_path / 'train' / 'pos' / '1_9.txt').write_text(' \n')
    with pytest.raises(ValueError, match=f'{tmp_path}/train/pos/1_9.txt: empty review'):
        IMDbDataset(str(tmp_path), 'train')
    with pytest.raises(FileNotFoundError, match=f'{tmp_path}/basic_val.tsv does not exist'):
        ListOpsDataset(str(tmp_path), 'val')


def small_model(**kwargs):
    torch.manual_seed(0)
    cfg = dict(num_classes=5, vocab_size=20, max_len=64, embed_dims=16, depth=2, num_heads=2,
               mlp_dims=24, window_size=4, dp_rank=3, head_dims=12)
    return LRAClassifier(**{**cfg, **kwargs}).double().eval()


def random_tokens(lengths, pad_to, vocab=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, vocab, (len(lengths), pad_to), generator=g)
    for row, n in zip(tokens, lengths):
        row[n:] = 0
    return tokens


def test_attention_per_head_is_the_output_before_projection():
    block = small_model().blocks[0]
    x = torch.randn(2, 11, 16, dtype=torch.float64)
    pad = random_tokens([11, 7], 11) == 0
    torch.testing.assert_close(block.attn.proj(attention_per_head(block.attn, x, pad)),
                               block.attn(x, pad))
    cls = torch.randn(2, 1, 16, dtype=torch.float64)  # with the CLS as an extra long-range key
    torch.testing.assert_close(block.attn.proj(attention_per_head(block.attn, x, pad, cls)),
                               block.attn(x, pad, extra=cls))


def test_cls_readout_is_the_official_equation():
    """Official AttentionLS with cls_embed: per head, softmax over [q.k_cls, q.O_n] / sqrt(d) of
    [v_cls, O_n] (O = the head's token outputs, padded tokens excluded), then W_o, residual, MLP.
    The tokens' outputs O include their attention to the CLS key/value (checked against the
    dense official equations in test_ls_attention.py, test_1d_extra_keys_match_official_cls_embed).
    """
    block = small_model().blocks[-1]
    assert isinstance(block, LSEncoderBlock)
    x = torch.randn(2, 11, 16, dtype=torch.float64)
    cls = torch.randn(2, 1, 16, dtype=torch.float64)
    pad = random_tokens([11, 6], 11) == 0
    heads = attention_per_head(block.attn, block.norm1(x), pad, cls)
    # the tokens' W_q, W_k, W_v (rows 0-15, 16-31, 32-47 of the fused qkv) on the raw CLS
    w, bias = block.attn.qkv.weight, block.attn.qkv.bias
    q, k, v = (cls[:, 0] @ w[i:i + 16].T + bias[i:i + 16] for i in (0, 16, 32))
    out = torch.zeros(2, 1, 16, dtype=torch.float64)
    for b in range(2):
        valid = (~pad[b]).nonzero().flatten()
        for h in range(2):
            d = slice(8 * h, 8 * h + 8)
            keys = torch.cat([k[b, None, d], heads[b, valid, d]])
            values = torch.cat([v[b, None, d], heads[b, valid, d]])
            p = torch.softmax(keys @ q[b, d] / math.sqrt(8), dim=0)
            out[b, 0, d] = p @ values
    c = cls + block.attn.proj(out)
    expected = c + block.mlp(block.norm2(c))
    torch.testing.assert_close(block.forward_cls(x, pad, cls), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('kwargs', [dict(pool='cls'), dict(pool='mean'), dict(dual=True)])
def test_classifier_shapes_and_padding_invariance(kwargs):
    model = small_model(**kwargs)
    lengths = [13, 5, 9, 1]
    tokens = random_tokens(lengths, 13)
    if model.dual:
        tokens = torch.stack([tokens, random_tokens(lengths[::-1], 13, seed=1)], dim=1)
    logits = model(tokens)
    assert logits.shape == (4, 5)
    # more padding, and each sample alone at its own length, change nothing
    torch.testing.assert_close(model(F.pad(tokens, (0, 9))), logits)
    for i, n in enumerate(lengths):
        alone = tokens[i:i + 1, ..., :max(n, lengths[-1 - i]) if model.dual else n]
        torch.testing.assert_close(model(alone), logits[i:i + 1])
    labels = torch.tensor([0, 1, 2, 3])
    loss = model(tokens, labels, mode='loss')['loss']
    torch.testing.assert_close(loss, F.cross_entropy(logits, labels))
    preds = model(tokens, labels, mode='predict')
    assert [int(p['pred']) for p in preds] == logits.argmax(-1).tolist()


def test_retrieval_head_combines_both_embeddings_officially():
    model = small_model(dual=True)
    tokens = torch.stack([random_tokens([9, 4], 9), random_tokens([6, 9], 9, seed=2)], dim=1)
    x1, x2 = model.encode(tokens[:, 0]), model.encode(tokens[:, 1])
    torch.testing.assert_close(model(tokens),
                               model.head(torch.cat([x1, x2, x1 * x2, x1 - x2], dim=-1)))


def test_collate_and_accuracy():
    batch = lra_collate([dict(inputs=torch.tensor([3, 4, 5]), label=1),
                         dict(inputs=torch.tensor([7]), label=0)])
    assert batch['inputs'].tolist() == [[3, 4, 5], [7, 0, 0]] and batch['labels'].tolist() == [1, 0]
    pairs = lra_collate([dict(inputs=torch.ones(2, 4, dtype=torch.long), label=1),
                         dict(inputs=torch.ones(2, 2, dtype=torch.long), label=0)])
    assert pairs['inputs'].shape == (2, 2, 4) and pairs['inputs'][1, :, 2:].sum() == 0
    metric = ClassificationAccuracy()
    metric.process({}, [dict(pred=torch.tensor(p), label=torch.tensor(t))
                        for p, t in ((1, 1), (2, 0), (3, 3), (0, 0))])
    assert metric.compute_metrics(metric.results) == dict(accuracy=75.0)


# From the official code by hand (lra/model.py, model_wrapper.py, run_*.sh): per block 2 x 128
# (norm1/2) + 2 x 128 (dual_ln_s/l, LayerNorm over C) + 4 x 4160 (W_q/k/v/o) + 4160 (dconv_fc:
# 64 -> 2 heads x 32) + 8320 + 8256 (MLP); embeddings 512 x 64 + positions x 64; CLS 64; final LN
# 128; head 64 x 128 + 128 + 128 x classes + classes (Retrieval: 256 x 128 + 128 ...).
OFFICIAL_PARAMS = {'listops': 249418, 'text': 379458, 'retrieval': 404034}
OFFICIAL_RECIPE = {  # lr, weight decay, steps, warm-up, validation interval, dropout, seed
    'listops': (1e-4, 0., 5000, 1000, 50, 0., 1234),
    'text': (1e-4, 0.01, 20000, 8000, 500, 0., 1234),
    'retrieval': (1e-4, 0.01, 30000, 8000, 300, 0.1, 4096),
}


@pytest.mark.parametrize('task', sorted(OFFICIAL_RECIPE))
def test_config_is_the_official_recipe(task):
    cfg = Config.fromfile(osp.join(CONFIGS, f'ls-lra_{task}.py'))
    m = cfg.model
    assert (m.embed_dims, m.depth, m.num_heads, m.mlp_dims, m.window_size, m.dp_rank,
            m.head_dims, m.vocab_size, m.pool) == (64, 2, 2, 128, 8, 32, 128, 512, 'cls')
    lr, wd, steps, warmup, val_interval, drop, seed = OFFICIAL_RECIPE[task]
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay, opt.eps) == ('AdamW', lr, wd, 1e-6)
    assert (cfg.train_cfg.max_iters, cfg.train_cfg.val_interval) == (steps, val_interval)
    assert cfg.param_scheduler[0].pct_start * steps == warmup
    assert (m.drop, m.attn_drop, cfg.randomness.seed) == (drop, drop, seed)
    assert cfg.train_dataloader.batch_size == 32 and m.dual == (task == 'retrieval')
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS[task]


def test_schedule_is_torch_one_cycle():
    """lr and Adam's beta1 at every step equal torch's OneCycleLR (what run_tasks.py uses)."""
    cfg = Config.fromfile(osp.join(CONFIGS, 'ls-lra_listops.py'))
    ours = build_optim_wrapper(torch.nn.Linear(1, 1), cfg.optim_wrapper).optimizer
    schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=ours)) for s in cfg.param_scheduler]
    theirs = torch.optim.AdamW(torch.nn.Linear(1, 1).parameters(), lr=1e-4, eps=1e-6)
    reference = torch.optim.lr_scheduler.OneCycleLR(theirs, max_lr=1e-4, total_steps=5000,
                                                    pct_start=0.2, anneal_strategy='linear')
    for step in range(5000):
        a, b = ours.param_groups[0], theirs.param_groups[0]
        assert math.isclose(a['lr'], b['lr'], rel_tol=1e-9), step
        assert math.isclose(a['betas'][0], b['betas'][0], rel_tol=1e-9), step
        for scheduler in schedulers:
            scheduler.step()
        if step < 4999:
            reference.step()


MIN_GAIN = 15.0  # accuracy points over the majority class


def test_toy_listops_learns_through_the_runner(tmp_path):
    """A short run of the toy config on flat expressions (MIN/MAX/MED/SM of 2-4 digits) clearly
    beats always predicting the most frequent class."""
    sizes = dict(train=1500, val=200, test=200)
    labels = toy_data.make_listops(str(tmp_path / 'data'), sizes, seed=0, max_depth=2,
                                  max_args=4, min_length=2, max_length=10)
    majority = toy_data.majority_accuracy(labels['train'], labels['val'])
    cfg = Config.fromfile(osp.join(CONFIGS, 'ls-lra_toy-listops.py'))
    cfg.work_dir = str(tmp_path / 'work')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(tmp_path / 'data')
    iters = 200
    cfg.train_cfg.update(max_iters=iters, val_interval=iters)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = 50
    runner = Runner.from_cfg(cfg)
    runner.train()
    accuracy = runner.test()['accuracy']
    assert majority < 20 and accuracy > majority + MIN_GAIN, (accuracy, majority)


def test_tools_train_and_test_the_toy_listops_config(tmp_path, toy_release):
    config = osp.join(CONFIGS, 'ls-lra_toy-listops.py')
    work = str(tmp_path / 'work')
    roots = [f'{loader}.dataset.data_root={toy_release["listops"]}'
             for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    run_tool('tools/train.py', config, '--work-dir', work, '--cfg-options', *roots,
             'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
             'default_hooks.checkpoint.interval=4')
    proc = run_tool('tools/test.py', config, osp.join(work, 'best_accuracy_iter_4.pth'),
                    '--work-dir', work, '--cfg-options', *roots)
    assert 'Iter(test) [1/1]    accuracy:' in proc.stdout + proc.stderr


@pytest.mark.parametrize('task', ['text', 'retrieval'])
def test_text_and_retrieval_configs_run(tmp_path, toy_release, task):
    cfg = Config.fromfile(osp.join(CONFIGS, f'ls-lra_{task}.py'))
    cfg.work_dir = str(tmp_path)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(batch_size=4, num_workers=0, persistent_workers=False)
        cfg[loader].dataset.data_root = str(toy_release[task])
    cfg.train_cfg.update(max_iters=2, val_interval=2)
    cfg.default_hooks.checkpoint.interval = 2
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert 0 <= runner.test()['accuracy'] <= 100
