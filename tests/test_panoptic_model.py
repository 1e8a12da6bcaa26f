"""Panoptic SegFormer end to end on tiny toy COCO-panoptic data: losses, inference outputs,
a two-iteration Runner training and the PQ-100 oracle through CocoPanopticMetric."""
import copy
import math
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmcv.ops')
from mmdet.evaluation.functional import INSTANCE_OFFSET  # noqa: E402
from mmdet.registry import DATASETS, METRICS, MODELS  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmseg_ext  # noqa: E402,F401
from mmseg_ext.toy_data import images as toy_data  # noqa: E402
from tests.helpers.panoptic import shrink_panoptic_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOY_CONFIG = REPO / 'configs/panoptic_segformer/panoptic-segformer_r18_toy-coco-panoptic.py'


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_coco_panoptic')
    toy_data.GENERATORS['coco-panoptic'](root, num_train=4, num_val=2, size=(64, 80), seed=0)
    return root


def tiny_config(root) -> Config:
    """The toy config shrunk further: width 32, 20 queries, one layer per stage."""
    cfg = shrink_panoptic_model(Config.fromfile(str(TOY_CONFIG)))
    root = str(root) + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = root
        cfg[loader].batch_size = 2
    cfg.train_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs')]
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator][0].update(ann_file=root + 'annotations/panoptic_val2017.json',
                                 seg_prefix=root + 'annotations/panoptic_val2017/')
        cfg[evaluator][1].update(ann_file=root + 'annotations/instances_val2017.json')
    return cfg


def _batch(cfg, split='train', n=2):
    loader = cfg.train_dataloader if split == 'train' else cfg.val_dataloader
    dataset = DATASETS.build(loader.dataset)
    return pseudo_collate([dataset[i] for i in range(n)]), dataset


@pytest.fixture(scope='module')
def model_and_cfg(toy_root):
    init_default_scope('mmdet')
    cfg = tiny_config(toy_root)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model, cfg


def test_loss_terms_and_gradients(model_and_cfg):
    model, cfg = model_and_cfg
    model.train()
    data, _ = _batch(cfg)
    data = model.data_preprocessor(data, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    expected = {'loss_cls', 'loss_bbox', 'loss_iou', 'd0.loss_cls', 'd0.loss_iou',
                'loss_mask_things', 'd0.loss_mask_things', 'loss_mask_stuff',
                'd0.loss_mask_stuff', 'd1.loss_mask_stuff', 'd0.loss_cls_stuff',
                'd1.loss_cls_stuff'}
    assert expected <= set(losses)
    assert 'd1.loss_cls' not in losses  # location decoder has 2 layers: d0 + final
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['loss_mask_things'] > 0 and losses['loss_mask_stuff'] > 0
    # the Dice loss (weight 2) of a prediction is at most 2 x the thing/stuff ratio
    assert losses['loss_mask_things'] + losses['loss_mask_stuff'] <= 2.0 + 1e-4
    sum(losses.values()).backward()
    head = model.bbox_head
    for param in (head.stuff_query.weight, head.thing_mask_decoder.mask_head.fuse[0].weight,
                  head.stuff_cls_branches[0].weight, model.query_embedding.weight,
                  model.encoder.layers[0].self_attn.sampling_offsets.weight,
                  model.backbone.conv1.weight):
        assert param.grad is not None and param.grad.abs().sum() > 0
    model.zero_grad()


def test_predict_outputs(model_and_cfg):
    model, cfg = model_and_cfg
    model.eval()
    data, _ = _batch(cfg, 'val')
    with torch.no_grad():
        results = model.test_step(data)
    assert len(results) == 2
    num_classes = 9
    for sample in results:
        h, w = sample.ori_shape
        pan = sample.pred_panoptic_seg.sem_seg
        assert pan.shape == (1, h, w)
        labels = pan % INSTANCE_OFFSET
        assert ((labels >= 0) & (labels <= num_classes)).all()
        things = pan[(labels < 5) & (labels >= 0)]
        assert (things // INSTANCE_OFFSET >= 1).all()  # things carry an instance id
        inst = sample.pred_instances
        assert len(inst) == 10
        assert inst.masks.shape == (10, h, w) and inst.masks.dtype == torch.bool
        assert inst.bboxes.shape == (10, 4) and (inst.labels < 5).all()
        assert (inst.scores[:-1] >= inst.scores[1:]).all()


def test_two_iteration_training_with_runner(toy_root, tmp_path):
    cfg = tiny_config(toy_root)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=100)
    cfg.param_scheduler = []
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=2, by_epoch=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.pop('visualization')
    cfg.log_processor = dict(by_epoch=False)
    runner = Runner.from_cfg(cfg)
    before = copy.deepcopy(runner.model.bbox_head.stuff_query.weight.detach())
    runner.train()
    assert runner.iter == 2
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(loss) and loss > 0
    assert not torch.equal(before, runner.model.bbox_head.stuff_query.weight.detach())
    assert (tmp_path / 'iter_2.pth').exists()


def test_oracle_through_post_processing_gives_pq_100(model_and_cfg, toy_root):
    """Ground-truth masks as perfect predictions go through the head's post-processing (resize,
    mask-wise merging, instance outputs) and the metrics: PQ 100 and box / mask AP 100."""
    from mmdet.structures.bbox import bbox_xyxy_to_cxcywh

    model, cfg = model_and_cfg
    head = model.bbox_head
    cfg = copy.deepcopy(cfg)
    cfg.val_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
        dict(type='PackDetInputs',
             meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    metrics = [METRICS.build(c) for c in cfg.val_evaluator]
    for metric in metrics:
        metric.dataset_meta = dataset.metainfo
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        sample.set_metainfo(dict(batch_input_shape=sample.img_shape, scale_factor=(1.0, 1.0)))
        gt = sample.gt_instances
        h, w = sample.img_shape
        sem = sample.gt_sem_seg.sem_seg[0].long()
        stuff_ids = torch.arange(head.num_things_classes,
                                 head.num_things_classes + head.num_stuff_classes)
        stuff_masks = (sem[None] == stuff_ids[:, None, None]).float()
        instances, panoptic = head.post_process(
            gt.masks.to_tensor(dtype=torch.float, device='cpu'), gt.labels,
            torch.ones(len(gt)), bbox_xyxy_to_cxcywh(gt.bboxes.tensor / torch.tensor(
                [w, h, w, h])), stuff_masks, (stuff_masks.flatten(1).sum(1) > 0).float(),
            sample.metainfo)
        sample.pred_panoptic_seg, sample.pred_instances = panoptic, instances
        for metric in metrics:
            metric.process({}, [sample.to_dict()])
    pq = metrics[0].evaluate(len(dataset))
    assert pq['coco_panoptic/PQ'] == pytest.approx(100.0)
    assert pq['coco_panoptic/PQ_th'] == pytest.approx(100.0)
    assert pq['coco_panoptic/PQ_st'] == pytest.approx(100.0)
    ap = metrics[1].evaluate(len(dataset))
    assert ap['coco/segm_mAP'] == pytest.approx(1.0)
    assert ap['coco/bbox_mAP'] == pytest.approx(1.0)


def test_attention_map_tool_writes_pngs(model_and_cfg, toy_root, tmp_path):
    """tools/analysis_tools/panoptic_attention_maps.py: one PNG per query and mask stage."""
    from mmseg_ext.apis import panoptic_attention_maps
    from tools.analysis_tools import panoptic_attention_maps as tool

    model, _ = model_and_cfg
    cfg_file, ckpt = tmp_path / 'cfg.py', tmp_path / 'model.pth'
    tiny_config(toy_root).dump(str(cfg_file))  # building the model edits its config dict
    torch.save({'state_dict': model.state_dict()}, ckpt)
    img = sorted((toy_root / 'val2017').glob('*.jpg'))[0]
    out = tmp_path / 'maps'
    tool.main([str(cfg_file), str(ckpt), str(img), '--queries', 't0', 't3', 's:road',
               '--out-dir', str(out)])
    written = sorted(p.name for p in out.glob('*.png'))
    # tiny config: 1 thing block + final stage, 2 stuff blocks + final stage
    assert written == ['s_road_layer0.png', 's_road_layer1.png', 's_road_layer2.png',
                       't0_layer0.png', 't0_layer1.png', 't3_layer0.png', 't3_layer1.png']
    with pytest.raises(ValueError):
        panoptic_attention_maps.resolve(['t99'], ['road'], 10)
