"""Read every image and mask of a segmentation dataset and report what would go wrong in
training or testing: unreadable files, image / mask size mismatches, masks of EXIF-rotated
photos in the other pixel order than the config loads the image in, image and mask modes, and
the label values against the config's classes, ``ignore_index`` and ``reduce_zero_label``.
Images are measured as the dataset's ``LoadImageFromFile`` loads them
(:mod:`mmseg_ext.datasets.image_io`).
:func:`check_dataset` (``tools/misc/check_dataset.py``) prints it; the config-level checks come
first (:mod:`mmseg_ext.checks.seg_data`).
"""
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..datasets.image_io import SWAPS_SIDES, ImageRule, exif_orientation, image_rule, mask_order
from .config_walk import short_list
from .seg_data import DatasetCheck, check_seg_datasets

GREY_OR_ALPHA = {'L': 'grey', 'LA': 'grey + alpha', 'RGBA': 'RGBA', 'I;16': '16-bit grey',
                 'I': '32-bit grey', 'P': 'palette', '1': 'black and white', 'CMYK': 'CMYK'}


@dataclass
class Finding:
    level: str  # 'error' (exit non-zero), 'warning' or 'note'
    message: str
    fix: str = ''


@dataclass
class DatasetScan:
    """What reading every file of one dataset found."""

    check: DatasetCheck
    rule: ImageRule = field(default_factory=ImageRule)  # how LoadImageFromFile reads images
    unreadable: list = field(default_factory=list)  # (path, reason)
    size_mismatches: list = field(default_factory=list)  # (mask, mask HxW, image, image HxW)
    exif: list = field(default_factory=list)  # (image, orientation, mask, 'display'/'stored'/None)
    colour_masks: list = field(default_factory=list)
    image_modes: Counter = field(default_factory=Counter)
    mask_modes: Counter = field(default_factory=Counter)
    pixels: Counter = field(default_factory=Counter)  # raw label value -> pixels
    files: dict = field(default_factory=lambda: defaultdict(list))  # raw value -> mask files


def scan_dataset(check, on_sample=None):
    """Read every image and mask of ``check.samples``; ``on_sample()`` after each pair."""
    scan = DatasetScan(check, rule=image_rule(check.pipeline))
    for sample in check.samples:
        img_path, seg_path = sample['img_path'], sample.get('seg_map_path')
        img_hw = stored_grey = None
        try:
            with Image.open(img_path) as image:
                image.load()  # decodes fully: a truncated file fails here
                scan.image_modes[image.mode] += 1
                img_hw = (image.height, image.width)
                orientation = exif_orientation(image)
                if orientation != 1:
                    stored_grey = np.asarray(image.convert('L'))
                    if scan.rule.applies_exif and orientation in SWAPS_SIDES:
                        img_hw = img_hw[::-1]  # the shape LoadImageFromFile gives
        except Exception as error:  # noqa: BLE001  (any decoder error means unreadable)
            scan.unreadable.append((img_path, f'{type(error).__name__}: {error}'))
        if seg_path:
            try:
                with Image.open(seg_path) as mask:
                    mask.load()
                    scan.mask_modes[mask.mode] += 1
                    seg = np.asarray(mask)
            except Exception as error:  # noqa: BLE001
                scan.unreadable.append((seg_path, f'{type(error).__name__}: {error}'))
                seg = None
            if seg is not None:
                if seg.ndim == 3:
                    scan.colour_masks.append(seg_path)
                else:
                    order = None
                    if stored_grey is not None:
                        order = mask_order(stored_grey, orientation, seg)
                        scan.exif.append((img_path, orientation, seg_path, order))
                    if img_hw is not None and seg.shape != img_hw and order is None:
                        scan.size_mismatches.append((seg_path, seg.shape, img_path, img_hw))
                    values, counts = np.unique(seg, return_counts=True)
                    for value, count in zip(values.tolist(), counts.tolist()):
                        scan.pixels[value] += count
                        scan.files[value].append(seg_path)
        if on_sample is not None:
            on_sample()
    return scan


def train_label(raw, reduce_zero_label, label_map):
    """The label a raw mask value becomes in mmseg's LoadAnnotations (uint8 cast,
    reduce_zero_label, then the dataset's label_map)."""
    value = raw % 256
    if reduce_zero_label:
        value = 255 if value in (0, 255) else value - 1
    return (label_map or {}).get(value, value)


def _hw(shape):
    return f'{shape[0]}x{shape[1]}'


def class_weights(fractions):
    """Median frequency balancing (Eigen & Fergus 2015): weight_c = median(f) / f_c over the
    classes that occur; classes that never occur get 0."""
    present = [f for f in fractions if f > 0]
    median = float(np.median(present)) if present else 0.
    return [median / f if f > 0 else 0. for f in fractions]


def findings(scan):
    """The problems and facts of ``scan`` as :class:`Finding` s, config-level ones first."""
    check = scan.check
    out = [Finding('error', e) for e in check.errors]
    out += [Finding('warning', w, 'set img_suffix to the images\' suffix, or move the files')
            if 'skipped' in w else Finding('warning', w) for w in check.warnings]
    for path, reason in scan.unreadable:
        out.append(Finding('error', f'cannot read {path}: {reason}',
                           'replace the file (an interrupted copy or download?) or remove the '
                           'pair'))
    for mask, mask_hw, image, image_hw in scan.size_mismatches:
        out.append(Finding('error', f'{mask} is {_hw(mask_hw)} but its image {image} is '
                           f'{_hw(image_hw)}',
                           'resize the mask to its image with nearest-neighbour interpolation, '
                           'or fix the pairing of names'))
    out += _exif_findings(scan)
    if scan.colour_masks:
        out.append(Finding('error', f'{len(scan.colour_masks)} masks are colour images: '
                           f'{short_list(scan.colour_masks, 3)}',
                           'convert colour-coded masks to label maps (one class index per '
                           'pixel, mode L or P)'))
    odd = {m: n for m, n in scan.image_modes.items() if m != 'RGB'}
    if odd:
        modes = ', '.join(f'{n} {GREY_OR_ALPHA.get(m, m)} ({m})' for m, n in odd.items())
        out.append(Finding('note', f'images that are not RGB: {modes}; mmcv reads them as '
                           '3-channel BGR (grey is repeated, alpha is dropped)'))
    out += _label_findings(scan)
    return out


def _exif_findings(scan):
    """Masks of photos with an EXIF orientation tag against the order images are loaded in."""
    if not scan.exif:
        return []
    expected = 'display' if scan.rule.applies_exif else 'stored'
    other = 'stored' if expected == 'display' else 'display'
    by_order = defaultdict(list)
    for image, orientation, mask, order in scan.exif:
        by_order[order].append((image, orientation, mask))
    out = [Finding('note', f'{len(scan.exif)} images carry an EXIF orientation tag; their masks '
                   f'are in display order: {len(by_order["display"])}, in stored order: '
                   f'{len(by_order["stored"])}, cannot tell: {len(by_order[None])}. '
                   f'The config reads images with {scan.rule.describe()}')]
    wrong = by_order[other]
    if wrong:
        files = [f'{mask} (image {image}, orientation {o})' for image, o, mask in wrong]
        fix = ('rotate these masks into display order (PIL: ImageOps.exif_transpose(image) turns '
               'the image; the same Image.transpose on the mask turns it alike), or strip the '
               'orientation tag from these images (e.g. exiftool -Orientation= FILE) so that '
               'they are read as stored, like their masks' if scan.rule.applies_exif else
               'rotate these masks back to the stored order of their images, or let '
               "LoadImageFromFile apply the tag (color_type='color')")
        out.append(Finding('error', f'{len(wrong)} masks follow their EXIF-rotated image in '
                           f'{other} pixel order, but the images are loaded in {expected} '
                           f'order: their labels would be misaligned: {short_list(files, 3)}',
                           fix))
    if by_order[None]:
        files = [f'{mask} (image {image}, orientation {o})' for image, o, mask in by_order[None]]
        out.append(Finding('warning', f'cannot tell whether the masks of {len(files)} '
                           'EXIF-rotated images are in display or stored order (their label '
                           f'boundaries follow neither clearly): {short_list(files, 3)}',
                           'look at them with tools/analysis_tools/browse_dataset.py'))
    return out


def _label_findings(scan):
    dataset, classes = scan.check.dataset, scan.check.classes
    num_classes = len(classes)
    ignore, rzl = dataset.ignore_index, dataset.reduce_zero_label
    total = sum(scan.pixels.values())
    out = []
    if not total:
        return out
    wide = sorted(v for v in scan.pixels if v > 255)
    if wide:
        out.append(Finding('error', f'mask values {short_list(wide, 5)} are above 255 (16-bit '
                           f'masks, e.g. {scan.files[wide[0]][0]}): mmseg reads masks as uint8, '
                           'so they wrap around modulo 256',
                           'renumber the classes to 0..254 and save 8-bit masks'))
    if rzl and scan.pixels.get(0):
        share = 100 * scan.pixels[0] / total
        out.append(Finding('note', f'0 appears in {share:.1f} % of pixels and '
                           'reduce_zero_label=True ignores it (right if 0 means "unlabelled")',
                           'if 0 is a class, set reduce_zero_label=False and put that class '
                           'first in the classes'))
    effective = Counter()
    for raw, count in scan.pixels.items():
        effective[train_label(raw, rzl, dataset.label_map)] += count
    if num_classes:
        bad = sorted(raw for raw in scan.pixels
                     if train_label(raw, rzl, dataset.label_map) not in (*range(num_classes),
                                                                          ignore))
        for raw in bad:
            files = sorted(set(scan.files[raw]))
            after = train_label(raw, rzl, dataset.label_map)
            note = f' (label {after} after reduce_zero_label)' if after != raw else ''
            out.append(Finding('error', f'value {raw}{note} >= num_classes={num_classes} in '
                               f'{len(files)} files: {short_list(files, 3)}',
                               f'add the missing classes to metainfo.classes (num_classes '
                               f'follows), mark the value as ignore ({ignore}), or fix the '
                               'masks'))
        absent = [i for i in range(num_classes) if not effective.get(i)]
        only_0_255 = set(scan.pixels) <= {0, 255} and num_classes == 2 and not rzl
        if only_0_255 and ignore == 255:
            out.append(Finding('error', 'the masks hold only 0 and 255 and 255 is ignore_index, '
                               'so class 1 never appears: binary masks saved as 0/255?',
                               'divide the masks by 255 (0/1), or set another ignore_index'))
        elif absent:
            names = [f'{i} ({classes[i]})' if classes else str(i) for i in absent]
            out.append(Finding('warning', f'classes that never appear: {short_list(names)}'))
    return out


def class_frequencies(scan):
    """(class names, pixel fraction of each class among labelled pixels, suggested weights)."""
    dataset = scan.check.dataset
    classes = scan.check.classes
    counts = np.zeros(len(classes))
    for raw, count in scan.pixels.items():
        label = train_label(raw, dataset.reduce_zero_label, dataset.label_map)
        if 0 <= label < len(classes):
            counts[label] += count
    fractions = counts / max(counts.sum(), 1)
    return list(classes), fractions.tolist(), class_weights(fractions.tolist())


def label_table(scan):
    """Rows (raw value, pixel %, files, what it becomes) of the label-value histogram."""
    dataset, classes = scan.check.dataset, scan.check.classes
    total = max(sum(scan.pixels.values()), 1)
    rows = []
    for raw in sorted(scan.pixels):
        label = train_label(raw, dataset.reduce_zero_label, dataset.label_map)
        if label == dataset.ignore_index:
            meaning = 'ignored'
        elif 0 <= label < len(classes):
            meaning = f'class {label} ({classes[label]})'
        else:
            meaning = f'label {label}: OUT OF RANGE'
        rows.append((raw, 100 * scan.pixels[raw] / total, len(set(scan.files[raw])), meaning))
    return rows


def print_scan(scan, fix_suggestions):
    """Print the report of one dataset; returns the number of errors."""
    check = scan.check
    dataset = check.dataset
    print(f'\n== {check.key} ({type(dataset).__name__})')
    print(f'images: {len(check.samples)} under {dataset.data_prefix.get("img_path")} '
          f'(img_suffix {dataset.img_suffix!r}); skipped for their suffix: {len(check.skipped)}')
    masks = sum(bool(s.get('seg_map_path')) for s in check.samples)
    print(f'masks: {masks} under {dataset.data_prefix.get("seg_map_path")} '
          f'(seg_map_suffix {dataset.seg_map_suffix!r})')
    print(f'image loading: {scan.rule.describe()}')
    print('image modes: ' + (', '.join(f'{m} {n}' for m, n in scan.image_modes.items()) or '-'))
    print('mask modes: ' + (', '.join(f'{m} {n}' for m, n in scan.mask_modes.items()) or '-'))
    if scan.pixels:
        print(f'label values (classes: {len(check.classes)}, ignore_index: '
              f'{dataset.ignore_index}, reduce_zero_label: {dataset.reduce_zero_label}):')
        print(f'  {"value":>6} {"pixels %":>9} {"files":>6}  becomes')
        for raw, share, files, meaning in label_table(scan):
            print(f'  {raw:>6} {share:>9.2f} {files:>6}  {meaning}')
        names, fractions, weights = class_frequencies(scan)
        training = check.key.startswith('train')
        print('classes present (% of labelled pixels' +
              (', suggested weight by median frequency balancing):' if training else '):'))
        for i, (name, share, weight) in enumerate(zip(names, fractions, weights)):
            if share:
                print(f'  {i:>6} {name:<20} {100 * share:>6.2f}' +
                      (f' {weight:>7.3f}' if training else ''))
        if training and names:
            print(f'class_weight=[{", ".join(f"{w:.3f}" for w in weights)}]')
            if fix_suggestions:
                print('  use: model.decode_head.loss_decode.class_weight=[...] (only if rare '
                      'classes are learnt badly)')
    errors = 0
    for finding in findings(scan):
        errors += finding.level == 'error'
        print(f'{finding.level.upper()}: {finding.message}')
        if fix_suggestions and finding.fix:
            print(f'  fix: {finding.fix}')
    return errors


def check_dataset(config, splits, fix_suggestions=False, cfg_options=None):
    """Check the segmentation datasets of ``config``'s ``splits``, read every file and print the
    report; returns the exit status: 1 if anything would break or silently spoil training or
    testing."""
    from mmengine.utils import ProgressBar

    from ..apis import load_config
    cfg = load_config(config, cfg_options)
    checks = check_seg_datasets(cfg, splits)
    if not checks:
        print(f'{config}: no segmentation dataset in the splits {splits}')
        return 1
    progress = ProgressBar(sum(len(c.samples) for c in checks), file=sys.stderr)
    scans = [scan_dataset(check, progress.update) for check in checks]
    print(file=sys.stderr)
    errors = sum(print_scan(scan, fix_suggestions) for scan in scans)
    print(f'\n{errors} error(s)' + ('' if errors else ': the data set fits the config'))
    return 1 if errors else 0
