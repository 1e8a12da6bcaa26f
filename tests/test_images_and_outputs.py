"""Images and outputs users get wrong: phone photos (EXIF orientation) in infer.py, infer.py on
folders with bad files and on big images, Cityscapes results the official evaluation scores,
and the exporter's gate threshold and untrained-weights flag. check_dataset.py's EXIF cases are
in tests/test_check_dataset.py."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from tests.conftest import REPO, run_tool
from tests.test_deploy import random_checkpoint
from tools import infer
from tools.deployment import pytorch2onnx

B0_TOY = 'configs/segformer/mit-b0_toy-ade20k.py'
CITY_TOY = 'configs/segformer/mit-b0_toy-cityscapes.py'
EXPORT = 'tools/deployment/pytorch2onnx.py'


@pytest.fixture(scope='module')
def b0(tmp_path_factory):
    """A randomly initialised toy SegFormer-B0 (150 classes): checkpoint and model."""
    from mmseg_ext.apis import init_segmentor
    ckpt = random_checkpoint(B0_TOY, tmp_path_factory.mktemp('b0') / 'b0.pth')
    return ckpt, init_segmentor(osp.join(REPO, B0_TOY), ckpt)


def _phone_photo(path, size=(40, 80), orientation=6, seed=0):
    """A JPEG whose stored pixels are ``size`` (H, W) with an EXIF orientation tag."""
    rng = np.random.RandomState(seed)
    pixels = np.kron(rng.randint(0, 255, (size[0] // 8, size[1] // 8, 3)),
                     np.ones((8, 8, 1))).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    return path


def test_orientation_ops_match_pil(tmp_path):
    """to_display / to_stored against PIL's exif_transpose for all eight EXIF orientations;
    ImageRule().read (mmcv's default LoadImageFromFile) turns a photo as PIL does."""
    from mmseg_ext.datasets.image_io import ImageRule, to_display, to_stored
    stored = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    for orientation in range(1, 9):
        image = Image.fromarray(stored)
        exif = image.getexif()
        exif[0x0112] = orientation
        image.save(tmp_path / 'o.png', exif=exif)
        reference = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / 'o.png')))
        assert np.array_equal(to_display(stored, orientation), reference), orientation
        assert np.array_equal(to_stored(reference, orientation), stored), orientation
    photo = _phone_photo(tmp_path / 'phone.jpg')
    assert ImageRule().read(str(photo)).shape == (80, 40, 3)
    assert ImageRule(color_type='color_ignore_orientation').read(str(photo)).shape == (40, 80, 3)


def test_training_refuses_a_square_photo_whose_mask_is_in_stored_order(tmp_path):
    """ValidateSegLabels (in every pipeline with annotations): a mask that follows its tagged
    photo in stored order is refused by name; in display order it passes. Non-square: the size
    error says why and points to check_dataset.py, which lists the file
    (tests/test_check_dataset.py)."""
    from mmcv.transforms import LoadImageFromFile

    from mmseg_ext.datasets.transforms.validate_labels import ValidateSegLabels
    display = np.zeros((32, 32), np.uint8)  # a bar at the top and a disc at the lower left
    display[4:12, 3:29] = 1
    rows, cols = np.mgrid[:32, :32]
    display[(rows - 22) ** 2 + (cols - 10) ** 2 < 36] = 2
    rgb = np.stack([display * 80, 255 - display * 60, display * 30], -1).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / 'square.jpg'
    Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)
    loaded = LoadImageFromFile()(dict(img_path=str(path)))
    validate = ValidateSegLabels(num_classes=3)
    validate(dict(loaded, gt_seg_map=display, seg_map_path='display.png'))
    stored = np.rot90(display, 1).copy()  # as Image.ROTATE_90 stores it
    with pytest.raises(ValueError, match=r'stored.png follows its image .*square.jpg in stored '
                       r'pixel order: the image has EXIF orientation 6.*check_dataset.py'):
        validate(dict(loaded, gt_seg_map=stored, seg_map_path='stored.png'))
    wide = _phone_photo(tmp_path / 'wide.jpg')
    loaded = LoadImageFromFile()(dict(img_path=str(wide)))
    with pytest.raises(ValueError, match=r'is 40x80 \(HxW\) but its image .*wide.jpg is 80x40: '
                       r'the image has EXIF orientation 6.*lists every mismatch'):
        validate(dict(loaded, gt_seg_map=np.zeros((40, 80), np.uint8), seg_map_path='m.png'))


@pytest.mark.parametrize('shape', [(37, 91), (120, 64)])
def test_class_chunked_resize_and_argmax_equal_mmseg_inference(b0, shape):
    """segment(): labels equal to mmseg's inference_model (whole logits resized, argmax), with
    one class and seven classes resized at a time."""
    from mmseg.apis import inference_model

    from mmseg_ext.apis.inference import segment
    _, model = b0
    img = (np.random.RandomState(1).rand(*shape, 3) * 255).astype(np.uint8)
    reference = inference_model(model, img).pred_sem_seg.data[0].numpy()
    assert len(np.unique(reference)) > 10
    for classes in (1, 7):
        labels = segment(model, img, chunk_bytes=4 * shape[0] * shape[1] * classes)
        assert labels.dtype == np.uint8 and np.array_equal(labels, reference), classes


def test_resize_to_labels_never_holds_all_classes_at_image_size(monkeypatch):
    from mmseg_ext.apis import inference
    sizes, interpolate = [], torch.nn.functional.interpolate

    def recording(x, *args, **kwargs):
        out = interpolate(x, *args, **kwargs)
        sizes.append(out.shape)
        return out
    monkeypatch.setattr(torch.nn.functional, 'interpolate', recording)
    logits = torch.randn(1, 150, 8, 12, generator=torch.Generator().manual_seed(0))
    labels = inference.resize_to_labels(logits, (60, 90), False, chunk_bytes=4 * 60 * 90 * 16)
    assert max(s[1] for s in sizes) == 16 and len(sizes) == 10  # ceil(150 / 16) chunks
    reference = interpolate(logits, (60, 90), mode='bilinear', align_corners=False).argmax(1)[0]
    assert np.array_equal(labels, reference.numpy())


def test_infer_skips_bad_files_and_follows_the_photo_as_viewers_show_it(tmp_path, b0, capsys):
    """A folder with a corrupt JPEG, a truncated one and a phone photo (EXIF orientation 6):
    the bad files are reported with their reasons and skipped, the rest is written, exit 1;
    the photo's label map has the display orientation and the labels of its display pixels."""
    from mmseg.apis import inference_model
    ckpt, model = b0
    images = tmp_path / 'images'
    images.mkdir()
    photo = _phone_photo(images / 'b_phone.jpg')
    (images / 'a_corrupt.jpg').write_bytes(b'not a jpeg')
    (images / 'c_truncated.jpg').write_bytes(photo.read_bytes()[:300])
    _phone_photo(images / 'd_plain.jpg', orientation=1, seed=2)
    out = tmp_path / 'out'
    code = infer.main([osp.join(REPO, B0_TOY), ckpt, str(images),
                                        '--out-dir', str(out)])
    printed = capsys.readouterr().out
    assert code == 1
    assert f'skipped {images / "a_corrupt.jpg"}: UnidentifiedImageError' in printed
    assert f'skipped {images / "c_truncated.jpg"}: ' in printed
    assert 'wrote overlays and label maps of 2 of 4 images' in printed
    assert '2 image(s) failed:' in printed
    assert sorted(p.name for p in (out / 'label_maps').iterdir()) == ['b_phone.png',
                                                                      'd_plain.png']
    shown = ImageOps.exif_transpose(Image.open(photo))  # what a viewer shows: 40 wide, 80 high
    label = np.asarray(Image.open(out / 'label_maps/b_phone.png'))
    assert label.shape == (shown.height, shown.width) == (80, 40)
    assert Image.open(out / 'overlays/b_phone.png').size == shown.size
    reference = inference_model(model, np.asarray(shown)[..., ::-1].copy())
    assert np.mean(label == reference.pred_sem_seg.data[0].numpy()) > 0.99


def _perfect_predictions(root, split='val'):
    """mmseg data samples predicting each image's ground truth (train ids)."""
    samples = []
    for gt in sorted((root / 'gtFine' / split).rglob('*_gtFine_labelTrainIds.png')):
        image = str(gt).replace('gtFine', 'leftImg8bit').replace('_leftImg8bit_labelTrainIds',
                                                                 '_leftImg8bit')
        train_ids = torch.from_numpy(np.asarray(Image.open(gt)).astype(np.int64))
        samples.append(dict(img_path=image, pred_sem_seg=dict(data=train_ids[None])))
    assert samples and all(osp.isfile(s['img_path']) for s in samples)
    return samples


def test_cityscapes_out_scores_one_in_the_official_evaluation(tmp_path, toy_cityscapes):
    """What --out writes for Cityscapes (CityscapesLabelIdWriter), for a perfect prediction,
    scores 1.0 in the official evaluation, run through its wrapper command; the same train ids
    under the image names (mmseg's IoUMetric output on main) score far below. The confusion
    matrix reads the label-id maps back as train ids."""
    from mmseg_ext.compat.cityscapes import official_pixel_evaluation
    from mmseg_ext.evaluation import CityscapesLabelIdWriter, read_prediction
    samples = _perfect_predictions(toy_cityscapes)
    out = tmp_path / 'out'
    writer = CityscapesLabelIdWriter(output_dir=str(out))
    writer.process({}, samples)
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == len(samples) and all(n.endswith('_leftImg8bit_labelIds.png')
                                              for n in names)
    run_tool('tools/misc/cityscapes_eval.py', '--dataset', str(toy_cityscapes), '--results',
             str(out), '--export-dir', str(tmp_path / 'export'))
    result = json.loads((tmp_path / 'export/resultPixelLevelSemanticLabeling.json').read_text())
    assert result['averageScoreClasses'] == pytest.approx(1.0)
    assert result['averageScoreCategories'] == pytest.approx(1.0)
    train_ids = tmp_path / 'train_ids'
    train_ids.mkdir()
    for sample in samples:
        name = osp.basename(sample['img_path'])
        Image.fromarray(sample['pred_sem_seg']['data'][0].numpy().astype(np.uint8)).save(
            train_ids / name)
    wrong = official_pixel_evaluation(str(toy_cityscapes), str(train_ids),
                                      str(tmp_path / 'export2'))
    assert wrong['averageScoreClasses'] < 0.5
    for sample in samples:
        name = osp.splitext(osp.basename(sample['img_path']))[0]
        _, back = read_prediction(str(out), name)
        assert np.array_equal(back, sample['pred_sem_seg']['data'][0].numpy())


def test_test_tool_cityscapes_outputs(tmp_path, toy_cityscapes):
    """tools/test.py --out writes label-id maps (*_labelIds.png), --cityscapes-out keeps the
    CityscapesMetric results (added to a config without it) after the run."""
    ckpt = random_checkpoint(CITY_TOY, tmp_path / 'city.pth')
    out, kept = tmp_path / 'out', tmp_path / 'kept'
    loader = 'test_dataloader'
    proc = run_tool('tools/test.py', CITY_TOY, ckpt, '--out', str(out), '--cityscapes-out',
                    str(kept), '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                    f'{loader}.dataset.data_root={toy_cityscapes}', f'{loader}.num_workers=0',
                    f'{loader}.persistent_workers=False')
    assert 'averageScoreCategories' in proc.stdout + proc.stderr
    written = sorted(out.iterdir())
    assert len(written) == 2 and all(p.name.endswith('_leftImg8bit_labelIds.png')
                                     for p in written)
    from cityscapesscripts.helpers.labels import labels
    label_ids = {label.id for label in labels}
    assert set(np.unique(np.asarray(Image.open(written[0]))).tolist()) <= label_ids
    assert len(list(kept.glob('*.png'))) == 2


def test_exporter_needs_random_init_for_untrained_weights(tmp_path, capsys):
    tool = pytorch2onnx
    for checkpoint in ([''], [], [str(tmp_path / 'missing.pth')]):
        with pytest.raises(SystemExit):
            tool.parse_args([B0_TOY, *checkpoint, '--out', 'x.onnx'])
        assert '--random-init' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args([B0_TOY, '--random-init', '--verify-only', '--out', 'x.onnx'])
    with pytest.raises(SystemExit):
        tool.parse_args([B0_TOY, 'x.pth', '--random-init', '--out', 'x.onnx'])
    capsys.readouterr()
    onnx_file = str(tmp_path / 'random.onnx')
    code = tool.main([osp.join(REPO, B0_TOY), '--random-init', '--out', onnx_file, '--shape',
                      '64', '64', '--num-images', '1', '--min-agreement', '100',
                      '--cfg-options', f'test_dataloader.dataset.data_root={tmp_path / "no"}'])
    printed = capsys.readouterr().out
    assert code == 0 and 'randomly initialised (untrained) weights' in printed
    assert '(gate: >= 100 %)' in printed


def test_exporter_gate_threshold_is_set_by_min_agreement(tmp_path, b0):
    """An export with a flipped classifier fails the default gate (99.9 %) and passes
    --min-agreement 0."""
    import onnx
    from onnx import numpy_helper
    ckpt, _ = b0
    tool = pytorch2onnx
    onnx_file = str(tmp_path / 'b0.onnx')
    options = ['--shape', '64', '64', '--num-images', '1', '--cfg-options',
               f'test_dataloader.dataset.data_root={tmp_path / "no"}']
    assert tool.main([osp.join(REPO, B0_TOY), ckpt, '--out', onnx_file, *options]) == 0
    model = onnx.load(onnx_file)
    init = next(t for t in model.graph.initializer if t.name.endswith('conv_seg.weight'))
    init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
    onnx.save(model, onnx_file)
    verify = [osp.join(REPO, B0_TOY), ckpt, '--out', onnx_file, '--verify-only', *options]
    assert tool.main(verify) == 1
    assert tool.main([*verify, '--min-agreement', '0']) == 0
