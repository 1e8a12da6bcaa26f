"""ImageNet classification through mmpretrain: ViL-LS and CvT*-LS sizes against the LS paper,
the official ViL-LS checkpoint layout, the toy ImageNet data, learning through the tools, MiT
pre-training feeding segmentation, and the errors for bad input."""
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmseg_ext.toy_data.images import IMAGENET_CLASSES, make_imagenet
from tests.conftest import REPO, run_tool

LS = 'configs/ls_transformer'
CVT_TOY = f'{LS}/cvt-ls-13_toy-in1k.py'
VIL_TOY = f'{LS}/vil-ls-small_toy-in1k.py'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def build_classifier(config, **backbone):
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.backbone.update(backbone)
    return MODELS.build(cfg.model)


# ---- sizes: parameters within 1 %, FLOPs at 224 within 3 % of the LS paper (Table 6) ----

PAPER = {  # config: (params M, GFLOPs at 224, how the paper's tool counted)
    'vil-ls-medium_in1k.py': (39.8, 8.7, 'all'),
    'vil-ls-base_in1k.py': (55.8, 13.4, 'all'),
    'cvt-ls-13_in1k.py': (20.3, 4.9, 'no LS products'),
    'cvt-ls-21_in1k.py': (32.1, 7.9, 'no LS products'),
}


@pytest.mark.parametrize('config', sorted(PAPER))
def test_params_and_flops_match_paper(config):
    """ViL-LS: every product of activations counted (LS windows, compression, full attention).
    CvT*-LS: as the official CvT counter, which hooks layers and CvT's own attention but has no
    hook for LS attention, so the products inside LSAttention2d are not counted."""
    from mmseg_ext.models.layers import LSAttention2d
    from mmseg_ext.utils.flops import count_flops
    params, flops, counting = PAPER[config]
    model = build_classifier(f'{LS}/{config}').eval()

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x, mode='tensor')

    skip = (LSAttention2d, ) if counting == 'no LS products' else ()
    with torch.no_grad():
        macs, n = count_flops(Logits(), (torch.randn(1, 3, 224, 224), ), skip_products_in=skip)
    assert abs(n / 1e6 - params) / params < 0.01, n
    assert abs(macs / 1e9 - flops) / flops < 0.03, macs


# ---- ViL-LS against the official code's definitions (written out from msvit.py) ----

def test_full_attention_rel_pos_bias_is_the_official_one():
    """Official ``Attention(rpe=True)``: local-local bias = table[(dy + H - 1) * (2W - 1) +
    dx + W - 1] with d = query - key; global query -> local keys: g2l[0]; local query -> global
    keys: g2l[1]; global-global: g2g."""
    from mmseg_ext.models.backbones.vil_ls import RelPosSelfAttention
    h, w, g, heads = 3, 4, 2, 2
    attn = RelPosSelfAttention(8, heads, (h, w), g)
    bias = attn.attn_bias((h, w))
    table, g2l, g2g = attn.rel_pos_table, attn.g2l, attn.g2g
    assert bias.shape == (heads, g + h * w, g + h * w)
    for qi in range(h * w):
        for ki in range(h * w):
            dy, dx = qi // w - ki // w, qi % w - ki % w
            row = (dy + h - 1) * (2 * w - 1) + dx + w - 1
            assert torch.equal(bias[:, g + qi, g + ki], table[row])
    for a in range(g):
        assert torch.equal(bias[:, a, g:], g2l[0, :, a, None].expand(-1, h * w))
        assert torch.equal(bias[:, g:, a], g2l[1, :, a, None].expand(-1, h * w))
        for b in range(g):
            assert torch.equal(bias[:, a, b], g2g[:, a, b])


def official_vil_ls_keys(depths, size=224, window=7, rank=8, classes=1000):
    """The official MsViT state dict of an LS arch string ``l1,h3,d96,n?,s1,g1,p4,f7,a0,r8_...``
    (msvit.py, layers/transformer_ls.py, layers/full_attention.py), as {key: shape}."""
    dims, heads, patches = (96, 192, 384, 768), (3, 3, 6, 12), (4, 2, 2, 2)
    nglo, ls = (1, 1, 1, 0), (True, True, False, False)
    p = window // 2
    keys, side, cin = {}, size, 3
    for i in range(4):
        c, h, side = dims[i], heads[i], side // patches[i]
        s = f'layer{i + 1}'
        keys[f'{s}.0.proj.weight'] = (c, cin, patches[i], patches[i])
        keys[f'{s}.0.proj.bias'] = keys[f'{s}.0.norm_embed.weight'] = (c, )
        keys[f'{s}.0.norm_embed.bias'] = (c, )
        if nglo[i]:
            keys[f'{s}.0.cls_token'] = (1, nglo[i], c)
        for j in range(depths[i]):
            a, m = f'{s}.{2 * j + 1}', f'{s}.{2 * j + 2}'
            keys.update({f'{a}.norm.weight': (c, ), f'{a}.norm.bias': (c, ),
                         f'{a}.attn.qkv.weight': (3 * c, c), f'{a}.attn.qkv.bias': (3 * c, ),
                         f'{a}.attn.proj.weight': (c, c), f'{a}.attn.proj.bias': (c, )})
            if ls[i]:
                keys.update({
                    f'{a}.attn.to_dynamic_projection.weight': (h * rank, c),
                    f'{a}.attn.to_dynamic_projection.bias': (h * rank, ),
                    f'{a}.attn.dual_ln_dp.weight': (c, ), f'{a}.attn.dual_ln_dp.bias': (c, ),
                    f'{a}.attn.dual_ln_full.weight': (c, ),
                    f'{a}.attn.dual_ln_full.bias': (c, ),
                    f'{a}.attn.local_relative_position_bias_table':
                        (2 * (window + p - 1) * (2 * p + window + 1) + 1, h),
                    f'{a}.attn.relative_position_index': (window ** 2, (window + 2 * p) ** 2)})
            else:
                keys[f'{a}.attn.local_relative_position_bias_table'] = ((2 * side - 1) ** 2, h)
                keys[f'{a}.attn.relative_position_index'] = (side ** 2, side ** 2)
                if nglo[i]:
                    keys[f'{a}.attn.g2l_relative_position_bias'] = (2, h, nglo[i])
                    keys[f'{a}.attn.g2g_relative_position_bias'] = (h, nglo[i], nglo[i])
            keys.update({f'{m}.norm.weight': (c, ), f'{m}.norm.bias': (c, ),
                         f'{m}.mlp.fc1.weight': (4 * c, c), f'{m}.mlp.fc1.bias': (4 * c, ),
                         f'{m}.mlp.fc2.weight': (c, 4 * c), f'{m}.mlp.fc2.bias': (c, )})
        cin = c
    keys.update({'norm.weight': (768, ), 'norm.bias': (768, ), 'head.weight': (classes, 768),
                 'head.bias': (classes, )})
    return keys


def test_official_vil_ls_checkpoint_loads_with_no_missing_or_unexpected_keys():
    from mmseg_ext.models.backbones.vil_ls import convert_official_vil_ls
    torch.manual_seed(0)
    official = {f'module.{k}': (torch.randint(0, 9, shape) if k.endswith('index') else
                                torch.randn(shape))
                for k, shape in official_vil_ls_keys((1, 2, 8, 1)).items()}
    model = build_classifier(f'{LS}/vil-ls-small_in1k.py')
    converted = convert_official_vil_ls(official)
    result = model.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    state = model.state_dict()
    for ours, theirs in (
            ('backbone.stages.0.patch_embed.global_tokens', 'layer1.0.cls_token'),
            ('backbone.stages.1.patch_embed.norm.bias', 'layer2.0.norm_embed.bias'),
            ('backbone.stages.1.blocks.1.norm1.weight', 'layer2.3.norm.weight'),
            ('backbone.stages.1.blocks.1.attn.dual_ln.long.weight',
             'layer2.3.attn.dual_ln_dp.weight'),
            ('backbone.stages.1.blocks.1.attn.dynamic_proj.proj.weight',
             'layer2.3.attn.to_dynamic_projection.weight'),
            ('backbone.stages.2.blocks.7.mlp.fc2.weight', 'layer3.16.mlp.fc2.weight'),
            ('backbone.stages.2.blocks.7.norm2.bias', 'layer3.16.norm.bias'),
            ('backbone.stages.2.blocks.3.attn.g2l', 'layer3.7.attn.g2l_relative_position_bias'),
            ('backbone.stages.3.blocks.0.attn.rel_pos_table',
             'layer4.1.attn.local_relative_position_bias_table'),
            ('backbone.norm.weight', 'norm.weight'), ('head.fc.bias', 'head.bias')):
        assert torch.equal(state[ours], official[f'module.{theirs}']), ours
    with pytest.raises(KeyError, match='layer1.0.x_pos_embed'):  # absolute position embedding
        convert_official_vil_ls({**official, 'layer1.0.x_pos_embed': torch.zeros(1, 56, 48)})


def test_corruption_errors_follow_imagenet_c():
    """CE_c = sum_s E_sc / sum_s E^b_sc; rCE_c = sum_s (E_sc - E_clean) / sum_s (E^b_sc -
    E^b_clean); mCE, rmCE = means over corruptions (Hendrycks & Dietterich 2019)."""
    from mmseg_ext.robustness import corruption_eval as rob

    def results(top1):
        return dict(results={key: {'accuracy/top1': v} for key, v in top1.items()})

    model = results({'clean/0': 90, 'fog/1': 80, 'fog/2': 70, 'snow/1': 60, 'snow/2': 50})
    base = results({'clean/0': 60, 'fog/1': 50, 'fog/2': 30, 'snow/1': 40, 'snow/2': 20})
    errors = rob.corruption_errors(model, base, ['fog', 'snow'], [1, 2], 'top1')
    assert errors['ce'] == pytest.approx({'fog': 100 * 50 / 120, 'snow': 100 * 90 / 140})
    assert errors['rel_ce'] == pytest.approx({'fog': 100 * 30 / 40, 'snow': 100 * 70 / 60})
    assert errors['mce'] == pytest.approx((50 / 120 + 90 / 140) / 2 * 100)
    with pytest.raises(KeyError, match='baseline results have no snow/2'):
        del base['results']['snow/2']
        rob.corruption_errors(model, base, ['fog', 'snow'], [1, 2], 'top1')


def test_backbones_resolve_in_every_scope_and_shadow_nothing():
    from mmdet.registry import MODELS as DET
    from mmengine.registry import MODELS as ROOT
    from mmpretrain.registry import MODELS as PRETRAIN
    from mmseg.registry import MODELS as SEG
    names = ('MiT', 'ViLLS', 'CvTLS', 'LSAttention2d')
    for registry in (SEG, DET, PRETRAIN):
        assert not set(names) & set(registry.module_dict), registry.scope
        assert all(registry.get(name) is ROOT.get(name) for name in names)


# ---- errors ----

def test_unknown_arch_and_wrong_input_size():
    from mmseg_ext.models.backbones import CvTLS, ViLLS
    with pytest.raises(KeyError, match="'huge'.*base.*medium.*small"):
        ViLLS(arch='huge')
    with pytest.raises(KeyError, match="'17'.*13.*21"):
        CvTLS(arch='17')
    with pytest.raises(KeyError, match='depths, embed_dims, num_heads, 3 entries'):
        CvTLS(arch=dict(depths=(1, 1), embed_dims=(8, 16), num_heads=(1, 1)))
    model = CvTLS(arch='13', img_size=32, window_size=4)
    with pytest.raises(ValueError, match='built for 32x32 inputs.*got 48x48.*crop'):
        model(torch.zeros(1, 3, 48, 48))


@pytest.fixture(scope='module')
def toy_in(tmp_path_factory):
    """Toy ImageNet: 10 classes, 200 train / 50 val images of 32x32."""
    out = str(tmp_path_factory.mktemp('toy_imagenet'))
    make_imagenet(out, num_train=200, num_val=50, size=(32, 32), seed=0)
    return out


def test_missing_class_folder_is_named(toy_in, tmp_path):
    import shutil

    from mmseg_ext.apis import build_runner, load_config
    root = tmp_path / 'imagenet'
    shutil.copytree(toy_in, root)
    shutil.rmtree(root / 'train' / 'n01443537')
    cfg = load_config(osp.join(REPO, CVT_TOY))
    for loader in LOADERS:
        cfg[loader].dataset.data_root = str(root)
    with pytest.raises(FileNotFoundError, match=r'train_dataloader.*1 class folder.*meta/train'
                                                r'\.txt.*n01443537'):
        build_runner(cfg)


def test_mmpretrain_config_without_mmpretrain_is_a_clear_error(monkeypatch):
    import sys

    from mmseg_ext.apis import load_config
    monkeypatch.setitem(sys.modules, 'mmpretrain', None)  # import fails as without torchvision
    with pytest.raises(RuntimeError, match='mmpretrain.*torchvision.*TORCH_SPEC'):
        load_config(osp.join(REPO, CVT_TOY))


# ---- toy data ----

def test_toy_imagenet_layout_loads_through_mmpretrain(toy_in):
    from mmpretrain.datasets import ImageNet
    lines = open(osp.join(toy_in, 'meta', 'train.txt')).read().splitlines()
    assert lines[:2] == ['n01440764/n01440764_1.JPEG 0', 'n01443537/n01443537_1.JPEG 1']
    val = open(osp.join(toy_in, 'meta', 'val.txt')).read().splitlines()
    assert val[0] == 'ILSVRC2012_val_00000001.JPEG 0' and len(val) == 50
    assert osp.isfile(osp.join(toy_in, 'val', 'ILSVRC2012_val_00000050.JPEG'))
    dataset = ImageNet(data_root=toy_in, split='train',
                       pipeline=[dict(type='LoadImageFromFile')])
    assert len(dataset) == 200
    sample = dataset[13]
    assert sample['gt_label'] == 3 and sample['img'].shape == (32, 32, 3)
    assert [n.split(',')[0] for n in dataset.metainfo['classes'][:10]] == [
        c.name for c in IMAGENET_CLASSES]


def test_toy_imagenet_is_deterministic(tmp_path):
    a, b = tmp_path / 'a', tmp_path / 'b'
    for out in (a, b):
        make_imagenet(str(out), num_train=3, num_val=2, size=(24, 24), seed=1)
    files = sorted(p.relative_to(a) for p in a.rglob('*.JPEG'))
    assert len(files) == 5
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


# ---- learning, through the tools ----

def _data_options(root):
    return [f'{loader}.dataset.data_root={root}' for loader in LOADERS] + [
        f'{loader}.num_workers=0' for loader in LOADERS]


def _top1(stdout):
    return float(re.findall(r'accuracy/top1: ([\d.]+)', stdout)[-1])


TINY = {  # the toy configs with narrow, shallow custom archs, to learn within the test budget
    CVT_TOY: dict(depths=(1, 1, 2), embed_dims=(32, 64, 128), num_heads=(1, 2, 4)),
    VIL_TOY: dict(depths=(1, 1, 2, 1), embed_dims=(32, 64, 128, 128), num_heads=(1, 2, 4, 4)),
}
EPOCHS = 15  # of 13 iterations (200 images, batch 16)
MIN_TOP1 = 30.0  # chance: 10 % on 10 classes; P(>= 15 of 50 right by chance) ~ 1e-4


def tiny_config(tmp_path, config):
    path = tmp_path / f'tiny_{osp.basename(config)}'
    path.write_text(f"_base_ = {osp.join(REPO, config)!r}\n"
                    f"model = dict(backbone=dict(arch=dict(_delete_=True, **{TINY[config]!r})),\n"
                    f"             head=dict(in_channels={TINY[config]['embed_dims'][-1]}))\n")
    return str(path)


@pytest.fixture(scope='module')
def cvt_toy_run(toy_in, tmp_path_factory):
    """A narrow CvT*-LS trained on the toy set for 15 epochs through tools/train.py."""
    tmp = tmp_path_factory.mktemp('cvt_toy')
    config, work = tiny_config(tmp, CVT_TOY), str(tmp / 'work')
    run_tool('tools/train.py', config, '--work-dir', work, '--cfg-options',
             *_data_options(toy_in), f'train_cfg.max_epochs={EPOCHS}',
             f'train_cfg.val_interval={EPOCHS}', f'param_scheduler.1.end={EPOCHS}',
             f'default_hooks.checkpoint.interval={EPOCHS}')
    return config, work, osp.join(work, f'epoch_{EPOCHS}.pth')


def test_toy_cvt_ls_beats_chance_through_train_and_test_tools(cvt_toy_run, toy_in):
    config, work, ckpt = cvt_toy_run
    proc = run_tool('tools/test.py', config, ckpt, '--work-dir', work,
                    '--out', osp.join(work, 'preds.pkl'), '--cfg-options',
                    *_data_options(toy_in))
    assert _top1(proc.stdout + proc.stderr) >= MIN_TOP1
    assert osp.getsize(osp.join(work, 'preds.pkl')) > 0


def test_robustness_eval_on_toy_classifier_with_mce(cvt_toy_run, toy_in, tmp_path):
    """robustness_eval.py takes the mmpretrain config: top-1 per corruption and severity, and
    CE / mCE against a baseline model (here the same network untrained)."""
    import json

    from mmpretrain.registry import MODELS

    from tools.analysis_tools import robustness_eval as rob
    config, _, ckpt = cvt_toy_run
    init_default_scope('mmpretrain')
    untrained = str(tmp_path / 'untrained.pth')
    torch.manual_seed(0)
    torch.save({'state_dict': MODELS.build(Config.fromfile(config).model).state_dict()},
               untrained)
    data = [f'{loader}.dataset.data_root={toy_in}' for loader in LOADERS] + [
        'test_dataloader.num_workers=0']
    common = ['--corruptions', 'gaussian_noise', 'contrast', '--severities', '0', '2', '5',
              '--cfg-options', *data]
    rob.main([config, untrained, '--work-dir', str(tmp_path / 'base'), *common])
    baseline = str(tmp_path / 'base' / 'robustness' / 'results.json')
    rob.main([config, ckpt, '--work-dir', str(tmp_path / 'model'), '--baseline', baseline,
              *common])
    out = tmp_path / 'model' / 'robustness'
    results = json.loads((out / 'results.json').read_text())['results']
    assert set(results) == {'clean/0', 'gaussian_noise/2', 'gaussian_noise/5', 'contrast/2',
                            'contrast/5'}
    assert results['clean/0']['accuracy/top1'] >= MIN_TOP1
    rows = [line.split(',') for line in (out / 'table.csv').read_text().splitlines()]
    assert rows[0][-2:] == ['CE %', 'rel. CE %'] and rows[-1][0] == 'mean (mCE)'
    assert 0 < float(rows[-1][-2]) < 100, 'the trained model errs less than the untrained one'


def test_toy_vil_ls_beats_chance(toy_in, tmp_path):
    """A narrow ViL-LS on the toy set, in-process Runner (the tools are covered above)."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(tiny_config(tmp_path, VIL_TOY))
    cfg.work_dir = str(tmp_path / 'work')
    for loader in LOADERS:
        cfg[loader].dataset.data_root = toy_in
        cfg[loader].num_workers = 0
    cfg.train_cfg.update(max_epochs=EPOCHS, val_interval=EPOCHS)
    cfg.param_scheduler[1].end = EPOCHS
    cfg.default_hooks.checkpoint.interval = EPOCHS
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.test()['accuracy/top1'] >= MIN_TOP1


# ---- MiT pre-training feeds the segmentation configs ----

def test_mit_pretraining_checkpoint_initialises_segmentation(toy_in, toy_ade20k, tmp_path):
    from mmengine.runner import Runner
    cfg = Config.fromfile(osp.join(REPO, 'configs/segformer/mit-b0_toy-in1k.py'))
    cfg.work_dir = str(tmp_path / 'pre')
    for loader in LOADERS:
        cfg[loader].dataset.data_root = toy_in
        cfg[loader].num_workers = 0
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.default_hooks.checkpoint.interval = 1
    Runner.from_cfg(cfg).train()
    ckpt = osp.join(cfg.work_dir, 'epoch_1.pth')

    seg = 'configs/segformer/mit-b0_toy-ade20k_toy-in1k-pre.py'
    root = toy_ade20k
    proc = run_tool('tools/train.py', seg, '--work-dir', str(tmp_path / 'seg'), '--cfg-options',
                    f'model.backbone.init_cfg.checkpoint={ckpt}', 'train_cfg.max_iters=2',
                    'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
                    *[f'{loader}.dataset.data_root={root}' for loader in LOADERS],
                    *[f'{loader}.num_workers=0' for loader in LOADERS],
                    'train_dataloader.persistent_workers=False',
                    'val_dataloader.persistent_workers=False',
                    'test_dataloader.persistent_workers=False')
    assert f'MiT: loaded {ckpt}' in proc.stdout + proc.stderr
    assert 'mIoU' in proc.stdout + proc.stderr

    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    seg_cfg = Config.fromfile(osp.join(REPO, seg))
    seg_cfg.model.backbone.init_cfg.checkpoint = ckpt
    model = MODELS.build(seg_cfg.model)
    model.init_weights()
    classifier = torch.load(ckpt, map_location='cpu')['state_dict']
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, classifier[f'backbone.{key}']), key
