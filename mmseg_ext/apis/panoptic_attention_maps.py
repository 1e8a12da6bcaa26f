"""Write Panoptic SegFormer mask-decoder attention maps (the masks each attention-to-mask stage
predicts, paper Fig. 4 / Sec. 3.4) for chosen queries as PNG overlays (the logic of
tools/analysis_tools/panoptic_attention_maps.py).

Query tokens: ``t<k>`` is the k-th best thing (query, class) pair of the location decoder,
``s<k>`` the stuff query of stuff class k, ``s:<name>`` the stuff query of that class. Without
``--queries`` the three best things and every stuff class are written. One PNG per query and
mask-decoder stage: ``<token>_layer<j>.png`` (the last stage is the final mask).
"""
from pathlib import Path

import numpy as np


def _test_pipeline(cfg):
    """The test pipeline without annotation loading."""
    from mmengine.dataset import Compose
    steps = [t for t in cfg.test_dataloader.dataset.pipeline
             if not t['type'].startswith(('LoadPanopticAnnotations', 'LoadAnnotations'))]
    return Compose(steps)


def _record_stage_masks(decoder, store):
    """Forward hooks keeping the mask of every attention-to-mask stage of ``decoder``."""
    stages = [layer.cross_attn for layer in decoder.layers] + [decoder.mask_head]
    return [stage.register_forward_hook(
        lambda _m, _i, out, j=j: store.__setitem__(j, out[1].detach().cpu()))
        for j, stage in enumerate(stages)]


def resolve(tokens, stuff_classes, num_things_kept):
    """Tokens -> list of (name, 'thing' | 'stuff', index)."""
    chosen = []
    for token in tokens:
        if token.startswith('s:'):
            chosen.append((token, 'stuff', list(stuff_classes).index(token[2:])))
        elif token[0] in 'ts' and token[1:].isdigit():
            kind, index = ('thing' if token[0] == 't' else 'stuff'), int(token[1:])
            limit = num_things_kept if kind == 'thing' else len(stuff_classes)
            if index >= limit:
                raise ValueError(f'{token}: only {limit} {kind} queries')
            chosen.append((token, kind, index))
        else:
            raise ValueError(f'bad query token {token!r}')
    return chosen


def overlay(image, heat, alpha):
    import cv2
    heat = cv2.resize(heat, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    heat = (255 * (heat - heat.min()) / max(float(heat.max() - heat.min()), 1e-6))
    colour = cv2.applyColorMap(heat.astype(np.uint8), cv2.COLORMAP_JET)
    return (alpha * colour + (1 - alpha) * image).astype(np.uint8)


def write_attention_maps(config, checkpoint, img, queries, out_dir, device='cpu', alpha=0.5):
    """Run the model on ``img`` and write ``<token>_layer<j>.png`` for every query token
    (None: the three best things and every stuff class) and mask stage; returns the count."""
    import cv2
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    from mmseg_ext.utils import load_matching_checkpoint
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if cfg.get('custom_imports'):
        import importlib
        for module in cfg.custom_imports['imports']:
            importlib.import_module(module)
    model = MODELS.build(cfg.model)
    load_matching_checkpoint(model, checkpoint)
    model.to(device).eval()
    head = model.bbox_head

    thing_store, stuff_store = {}, {}
    hooks = _record_stage_masks(head.thing_mask_decoder, thing_store) + \
        _record_stage_masks(head.stuff_mask_decoder, stuff_store)
    data = pseudo_collate([_test_pipeline(cfg)(dict(img_path=img, img_id=0))])
    with torch.no_grad():
        result = model.test_step(data)[0]
    for hook in hooks:
        hook.remove()

    stuff_classes = cfg.get('metainfo', {}).get('stuff_classes') or \
        [str(i) for i in range(head.num_stuff_classes)]
    num_things_kept = thing_store[0].shape[1]
    tokens = queries or [f't{k}' for k in range(min(3, num_things_kept))] + \
        [f's{k}' for k in range(len(stuff_classes))]
    meta = result.metainfo
    image = cv2.imread(img)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    img_h, img_w = meta['img_shape']
    pad_h, pad_w = meta['batch_input_shape']
    written = 0
    for name, kind, index in resolve(tokens, stuff_classes, num_things_kept):
        store = thing_store if kind == 'thing' else stuff_store
        for j in sorted(store):
            mask = store[j][0, index].numpy()
            h, w = mask.shape  # crop the padding: the map covers the padded input
            mask = mask[:int(np.ceil(h * img_h / pad_h)), :int(np.ceil(w * img_w / pad_w))]
            cv2.imwrite(str(out_dir / f'{name.replace(":", "_")}_layer{j}.png'),
                        overlay(image, mask.astype(np.float32), alpha))
            written += 1
    print(f'wrote {written} attention maps to {out_dir}')
    return written
