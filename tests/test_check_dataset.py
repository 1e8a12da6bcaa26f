"""tools/misc/check_dataset.py on clean built-in data and on copies with one planted problem
each: it must find every one, say where, and exit non-zero on errors."""
import shutil

import numpy as np
import pytest
from PIL import Image, ImageOps

from mmseg_ext.checks.dataset_scan import check_dataset
from tests.test_custom_dataset import custom_config, make_data

CLASSES = "('background', 'sky', 'grass')"


@pytest.fixture(scope='module')
def clean(tmp_path_factory):
    """background / sky / grass in the custom layout, 4 train + 2 val images of 32x32."""
    return make_data(tmp_path_factory.mktemp('clean'), ('background', 'sky', 'grass'))


def check(tmp_path, capsys, root, splits=('train', 'val'), fix_suggestions=False,
          cfg_options=None, **block):
    """tools/misc/check_dataset.py CONFIG [--split ...] [--fix-suggestions] [--cfg-options ...]."""
    block = dict(dict(data_root=repr(str(root)), classes=CLASSES), **block)
    code = check_dataset(custom_config(tmp_path, **block), list(splits), fix_suggestions,
                         cfg_options)
    out, err = capsys.readouterr()
    return code, out, err


def broken(clean, tmp_path):
    root = tmp_path / 'data'
    shutil.copytree(clean, root)
    return root


def first(root, kind='ann', split='train'):
    return sorted((root / kind / split).iterdir())[0]


def test_clean_data_passes(tmp_path, capsys, clean):
    code, out, err = check(tmp_path, capsys, clean, splits=['train', 'val'])
    assert code == 0, out
    assert 'ETA' in err  # progress bar
    assert '== train_dataloader.dataset (BaseSegDataset)' in out
    assert 'images: 4 under' in out and 'skipped for their suffix: 0' in out
    assert 'masks: 4 under' in out and 'image modes: RGB 4' in out and 'mask modes: L 4' in out
    assert 'class 0 (background)' in out and 'ignored' in out  # label histogram
    assert 'classes present (% of labelled pixels, suggested weight' in out
    assert 'class_weight=[' in out
    assert '0 error(s): the data set fits the config' in out


def test_files_skipped_for_their_suffix(tmp_path, capsys, clean):
    root = broken(clean, tmp_path)
    Image.new('RGB', (32, 32)).save(root / 'img/train/extra.png')
    code, out, _ = check(tmp_path, capsys, root, fix_suggestions=True)
    assert code == 0
    assert ("WARNING: train_dataloader.dataset: 1 image files under" in out and
            "skipped: extra.png" in out and 'fix: set img_suffix' in out)


def test_no_images_with_the_suffix(tmp_path, capsys, clean):
    code, out, _ = check(tmp_path, capsys, clean, img_suffix="'.png'")
    assert code == 1
    assert ("ERROR: train_dataloader.dataset: no images ending in img_suffix='.png'" in out
            and "set train_dataloader.dataset.img_suffix='.jpg'" in out)


def test_image_without_mask(tmp_path, capsys, clean):
    root = broken(clean, tmp_path)
    mask = first(root)
    mask.unlink()
    code, out, _ = check(tmp_path, capsys, root)
    assert code == 1 and '1 of 4 images have no mask' in out and str(mask) in out


@pytest.mark.parametrize('kind', ['img', 'ann'])
def test_unreadable_file(tmp_path, capsys, clean, kind):
    root = broken(clean, tmp_path)
    path = first(root, kind)
    path.write_bytes(path.read_bytes()[:60])  # a truncated copy
    code, out, _ = check(tmp_path, capsys, root, fix_suggestions=True)
    assert code == 1 and f'ERROR: cannot read {path}' in out and 'fix: replace the file' in out


def test_size_mismatch_names_both_files(tmp_path, capsys, clean):
    root = broken(clean, tmp_path)
    mask = first(root)
    Image.fromarray(np.array(Image.open(mask))[:20]).save(mask)
    code, out, _ = check(tmp_path, capsys, root)
    image = first(root, 'img')
    assert code == 1 and f'ERROR: {mask} is 20x32 but its image {image} is 32x32' in out


def test_grey_and_rgba_images_are_reported(tmp_path, capsys, clean):
    root = broken(clean, tmp_path)
    for i, image in enumerate(sorted((root / 'img/train').iterdir())):
        Image.open(image).convert({0: 'L', 1: 'RGBA'}.get(i, 'RGB')).save(
            image.with_suffix('.png'))
        image.unlink()
    code, out, _ = check(tmp_path, capsys, root, splits=['train'], img_suffix="'.png'")
    assert code == 0
    assert 'L 1' in out and 'RGBA 1' in out and 'RGB 2' in out
    assert 'NOTE: images that are not RGB: 1 grey (L), 1 RGBA (RGBA)' in out


def test_colour_masks(tmp_path, capsys, clean):
    root = broken(clean, tmp_path)
    mask = first(root)
    Image.open(mask).convert('RGB').save(mask)
    code, out, _ = check(tmp_path, capsys, root)
    assert code == 1 and 'ERROR: 1 masks are colour images' in out and str(mask) in out


def test_label_values_beyond_the_classes(tmp_path, capsys, clean):
    root = broken(clean, tmp_path)
    masks = sorted((root / 'ann/train').iterdir())[:2]
    for mask in masks:
        seg = np.array(Image.open(mask))
        seg[:2, :2] = 7
        Image.fromarray(seg).save(mask)
    code, out, _ = check(tmp_path, capsys, root, fix_suggestions=True)
    assert code == 1
    assert f'ERROR: value 7 >= num_classes=3 in 2 files: {masks[0]}, {masks[1]}' in out
    assert 'label 7: OUT OF RANGE' in out and 'fix: add the missing classes' in out


def test_zero_with_reduce_zero_label(tmp_path, capsys, clean):
    """Masks with a class at 0 read by a config that ignores 0 (reduce_zero_label=True): said
    plainly, with the share of pixels lost."""
    code, out, _ = check(tmp_path, capsys, clean, classes="('sky', 'grass')",
                         palette='[[0, 0, 0], [1, 1, 1]]', reduce_zero_label='True')
    assert code == 0
    assert 'reduce_zero_label=True ignores it' in out
    share = float(out.split('NOTE: 0 appears in ')[1].split(' %')[0])
    assert 10 < share < 100


def test_binary_masks_saved_as_0_255(tmp_path, capsys):
    root = make_data(tmp_path / 'data', ('background', 'grass'))
    for mask in (tmp_path / 'data').glob('ann/*/*.png'):
        seg = np.array(Image.open(mask))
        Image.fromarray(np.where(seg == 1, 255, seg).astype(np.uint8)).save(mask)
    code, out, _ = check(tmp_path, capsys, root, classes="('background', 'grass')",
                         palette='[[0, 0, 0], [1, 1, 1]]')
    assert code == 1 and 'masks hold only 0 and 255 and 255 is ignore_index' in out


def test_sixteen_bit_masks(tmp_path, capsys, clean):
    root = broken(clean, tmp_path)
    mask = first(root)
    seg = np.array(Image.open(mask)).astype(np.uint16)
    seg[0, 0] = 257
    Image.fromarray(seg).save(mask)
    code, out, _ = check(tmp_path, capsys, root)
    assert code == 1 and 'mask values 257 are above 255 (16-bit masks' in out


def test_head_and_dataset_disagree(tmp_path, capsys, clean):
    path = custom_config(tmp_path, data_root=repr(str(clean)), classes=CLASSES)
    code = check_dataset(path, ['train', 'val'], cfg_options={'model.decode_head.num_classes': 5})
    out, _ = capsys.readouterr()
    assert code == 1 and 'ERROR: model.decode_head.num_classes = 5 but' in out


def exif_photos(root, masks_in, orientation=6, split='train', count=2):
    """Turn the first ``count`` images of ``split`` into phone photos: the pixels stored turned
    as a camera stores them, with the EXIF ``orientation`` that turns them back (PIL's
    ``exif_transpose``, the reference); the masks in 'display' or 'stored' order."""
    stored_op = {6: Image.Transpose.ROTATE_90, 3: Image.Transpose.ROTATE_180}[orientation]
    images = sorted((root / 'img' / split).iterdir())[:count]
    for image in images:
        display = Image.open(image)
        display.load()
        exif = Image.Exif()
        exif[0x0112] = orientation
        display.transpose(stored_op).save(image, exif=exif, quality=95)
        assert ImageOps.exif_transpose(Image.open(image)).size == display.size
        if masks_in == 'stored':
            mask = root / 'ann' / split / (image.stem + '.png')
            Image.open(mask).transpose(stored_op).save(mask)
    return images


@pytest.fixture(scope='module')
def wide(tmp_path_factory):
    """The clean data with non-square (24 x 40) images."""
    return make_data(tmp_path_factory.mktemp('wide'), ('background', 'sky', 'grass'),
                     size=(24, 40))


@pytest.mark.parametrize('data,orientation', [('clean', 6), ('wide', 6), ('wide', 3)])
def test_exif_photos_with_masks_in_display_order_pass(tmp_path, capsys, request, data,
                                                      orientation):
    """Masks drawn on the photo as viewers show it are right for mmcv's loader (it applies the
    tag): no error (on main, PIL's stored sizes made non-square ones false size errors)."""
    root = broken(request.getfixturevalue(data), tmp_path)
    exif_photos(root, 'display', orientation)
    code, out, _ = check(tmp_path, capsys, root, splits=['train'])
    assert code == 0, out
    assert "color_type='color'): EXIF orientation applied" in out
    assert ('NOTE: 2 images carry an EXIF orientation tag; their masks are in display order: '
            '2, in stored order: 0, cannot tell: 0') in out


@pytest.mark.parametrize('data,orientation', [('clean', 6), ('wide', 6), ('wide', 3)])
def test_exif_photos_with_masks_in_stored_order_are_errors(tmp_path, capsys, request, data,
                                                           orientation):
    """Masks in the file's pixel order of a photo that the loader turns: misaligned labels
    (square on main: 0 errors; non-square: a size error in training whose hint listed
    nothing). Named with the fix."""
    root = broken(request.getfixturevalue(data), tmp_path)
    images = exif_photos(root, 'stored', orientation)
    code, out, _ = check(tmp_path, capsys, root, splits=['train'], fix_suggestions=True)
    assert code == 1
    assert ('ERROR: 2 masks follow their EXIF-rotated image in stored pixel order, but the '
            'images are loaded in display order') in out
    assert f'(image {images[0]}, orientation {orientation})' in out
    assert 'fix: rotate these masks into display order' in out and 'strip the' in out


def test_exif_rule_follows_the_config(tmp_path, capsys, wide):
    """A config that ignores the tag (color_type='color_ignore_orientation') wants masks in
    stored order: display-order ones are the error then."""
    root = broken(wide, tmp_path)
    exif_photos(root, 'display')
    options = {'train_dataloader.dataset.pipeline.0.color_type': 'color_ignore_orientation'}
    code, out, _ = check(tmp_path, capsys, root, splits=['train'], cfg_options=options)
    assert code == 1 and "EXIF orientation ignored: images in stored order" in out
    assert 'masks follow their EXIF-rotated image in display pixel order' in out


def test_size_mismatch_of_an_exif_photo_gives_its_size_as_loaded(tmp_path, capsys, wide):
    """A mask that fits neither order of its photo: the error gives the image's size as the
    loader returns it (24 x 40 after the tag), which is what ValidateSegLabels compares."""
    root = broken(wide, tmp_path)
    image = exif_photos(root, 'display', count=1)[0]
    mask = root / 'ann/train' / (image.stem + '.png')
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(mask)
    code, out, _ = check(tmp_path, capsys, root, splits=['train'])
    assert code == 1 and f'ERROR: {mask} is 20x20 but its image {image} is 24x40' in out
