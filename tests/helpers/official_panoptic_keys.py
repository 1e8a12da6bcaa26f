"""The state-dict layout of official Panoptic SegFormer checkpoints, written out by hand from the
official code (zhiqi-li/Panoptic-SegFormer on mmdet 2.x / mmcv 1.x) and its configs
(configs/panformer/base.py and the r50 / r101 / pvtb5 / swinl configs): key -> shape.

Sources, per part:
- ResNet: mmdet 2.x ``ResNet`` (Bottleneck: conv1/bn1, conv2/bn2, conv3/bn3, downsample.0/1).
- PVTv2-B5: easymd/models/backbones/pvt_v2.py (``patch_embed{s}``, ``block{s}.{j}`` with
  ``attn.q``, ``attn.kv``, ``attn.sr`` + ``attn.norm`` where sr > 1, ``mlp.dwconv.dwconv``,
  ``norm{s}``); embed dims 64/128/320/512, depths 3/6/40/3, sr 8/4/2/1, MLP ratio 4.
- Swin-L: easymd/models/backbones/swin.py (``patch_embed``, ``layers.{i}.blocks.{j}`` with the
  relative position table and index, ``layers.{i}.downsample``, ``norm{i}`` per output);
  C 192, depths 2/2/18/2, heads 6/12/24/48, window 7.
- Neck: mmdet 2.x ``ChannelMapper`` (ConvModule: ``conv`` without bias, ``gn``) + one extra
  3x3 stride-2 conv on C5.
- ``bbox_head.transformer``: easymd ``Deformable_Transformer`` (``level_embeds``,
  ``reference_points``) with mmcv 1.x ``BaseTransformerLayer``s: ``attentions.{k}``,
  ``ffns.0.layers.{0.0,1}``, ``norms.{k}``.
- ``bbox_head``: easymd ``PanformerHead._init_layers`` (``cls_branches``, ``reg_branches``
  (Linear, ReLU, Linear, ReLU, Linear), ``query_embedding``, ``stuff_query``, ``reg_branches2``,
  ``cls_thing_branches``, ``cls_stuff_branches``) and easymd/models/panformer/mask_head.py
  (``MaskHead.blocks.{j}``: ``attn`` with q/k/v/proj/linear_l1-3/linear, ``head_norm1``,
  ``head_norm2``, ``mlp.fc1/fc2``, stuff blocks also ``self_attention.qkv/proj`` and ``norm3``;
  ``attnen``: q/k/linear_l1-3/linear). All linear layers have biases (``qkv_bias=True``).
"""
BUFFERS = ('running_mean', 'running_var', 'num_batches_tracked', 'relative_position_index')


def _linear(prefix, out, inp, bias=True):
    return {f'{prefix}.weight': (out, inp), **({f'{prefix}.bias': (out,)} if bias else {})}


def _norm(prefix, c):
    return {f'{prefix}.weight': (c,), f'{prefix}.bias': (c,)}


def _bn(prefix, c):
    return {**_norm(prefix, c), f'{prefix}.running_mean': (c,), f'{prefix}.running_var': (c,),
            f'{prefix}.num_batches_tracked': ()}


def resnet(depth):
    """mmdet 2.x ResNet-50 / 101 (``style='pytorch'``) -> (keys, C3-C5 channels)."""
    keys = {'backbone.conv1.weight': (64, 3, 7, 7), **_bn('backbone.bn1', 64)}
    inplanes = 64
    for s, blocks in enumerate({50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]):
        planes = 64 * 2 ** s
        for b in range(blocks):
            p = f'backbone.layer{s + 1}.{b}'
            keys.update({f'{p}.conv1.weight': (planes, inplanes, 1, 1),
                         f'{p}.conv2.weight': (planes, planes, 3, 3),
                         f'{p}.conv3.weight': (4 * planes, planes, 1, 1)})
            keys.update({**_bn(f'{p}.bn1', planes), **_bn(f'{p}.bn2', planes),
                         **_bn(f'{p}.bn3', 4 * planes)})
            if b == 0:
                keys[f'{p}.downsample.0.weight'] = (4 * planes, inplanes, 1, 1)
                keys.update(_bn(f'{p}.downsample.1', 4 * planes))
            inplanes = 4 * planes
    return keys, (512, 1024, 2048)


def pvt_v2_b5():
    keys, c_in = {}, 3
    for s, (c, depth, sr) in enumerate(zip((64, 128, 320, 512), (3, 6, 40, 3), (8, 4, 2, 1)), 1):
        k = 7 if s == 1 else 3
        keys.update({f'backbone.patch_embed{s}.proj.weight': (c, c_in, k, k),
                     f'backbone.patch_embed{s}.proj.bias': (c,),
                     **_norm(f'backbone.patch_embed{s}.norm', c)})
        for j in range(depth):
            p = f'backbone.block{s}.{j}'
            keys.update({**_norm(f'{p}.norm1', c), **_linear(f'{p}.attn.q', c, c),
                         **_linear(f'{p}.attn.kv', 2 * c, c), **_linear(f'{p}.attn.proj', c, c)})
            if sr > 1:
                keys.update({f'{p}.attn.sr.weight': (c, c, sr, sr), f'{p}.attn.sr.bias': (c,),
                             **_norm(f'{p}.attn.norm', c)})
            keys.update({**_norm(f'{p}.norm2', c), **_linear(f'{p}.mlp.fc1', 4 * c, c),
                         f'{p}.mlp.dwconv.dwconv.weight': (4 * c, 1, 3, 3),
                         f'{p}.mlp.dwconv.dwconv.bias': (4 * c,),
                         **_linear(f'{p}.mlp.fc2', c, 4 * c)})
        keys.update(_norm(f'backbone.norm{s}', c))
        c_in = c
    return keys, (128, 320, 512)


def swin_l():
    c0, window = 192, 7
    keys = {'backbone.patch_embed.proj.weight': (c0, 3, 4, 4),
            'backbone.patch_embed.proj.bias': (c0,), **_norm('backbone.patch_embed.norm', c0)}
    for i, (depth, heads) in enumerate(zip((2, 2, 18, 2), (6, 12, 24, 48))):
        c = c0 * 2 ** i
        for j in range(depth):
            p = f'backbone.layers.{i}.blocks.{j}'
            keys.update({**_norm(f'{p}.norm1', c),
                         f'{p}.attn.relative_position_bias_table': ((2 * window - 1) ** 2, heads),
                         f'{p}.attn.relative_position_index': (window ** 2, window ** 2),
                         **_linear(f'{p}.attn.qkv', 3 * c, c), **_linear(f'{p}.attn.proj', c, c),
                         **_norm(f'{p}.norm2', c), **_linear(f'{p}.mlp.fc1', 4 * c, c),
                         **_linear(f'{p}.mlp.fc2', c, 4 * c)})
        if i < 3:
            keys.update({f'backbone.layers.{i}.downsample.reduction.weight': (2 * c, 4 * c),
                         **_norm(f'backbone.layers.{i}.downsample.norm', 4 * c)})
    for i in (1, 2, 3):
        keys.update(_norm(f'backbone.norm{i}', c0 * 2 ** i))
    return keys, (384, 768, 1536)


def neck_and_head(in_channels, c=256, heads=8, levels=4, points=4, ffn=1024, layers=6,
                  queries=300, things=80, stuff=53, thing_blocks=4, stuff_blocks=6):
    keys = {}
    for i, c_in in enumerate(in_channels):
        keys.update({f'neck.convs.{i}.conv.weight': (c, c_in, 1, 1),
                     **_norm(f'neck.convs.{i}.gn', c)})
    keys.update({'neck.extra_convs.0.conv.weight': (c, in_channels[-1], 3, 3),
                 **_norm('neck.extra_convs.0.gn', c)})

    def deformable(p):
        return {**_linear(f'{p}.sampling_offsets', heads * levels * points * 2, c),
                **_linear(f'{p}.attention_weights', heads * levels * points, c),
                **_linear(f'{p}.value_proj', c, c), **_linear(f'{p}.output_proj', c, c)}

    def ffn_norms(p, num_norms):
        out = {**_linear(f'{p}.ffns.0.layers.0.0', ffn, c),
               **_linear(f'{p}.ffns.0.layers.1', c, ffn)}
        for k in range(num_norms):
            out.update(_norm(f'{p}.norms.{k}', c))
        return out

    t = 'bbox_head.transformer'
    keys.update({f'{t}.level_embeds': (levels, c), **_linear(f'{t}.reference_points', 2, c)})
    for i in range(layers):
        keys.update({**deformable(f'{t}.encoder.layers.{i}.attentions.0'),
                     **ffn_norms(f'{t}.encoder.layers.{i}', 2)})
        p = f'{t}.decoder.layers.{i}'
        keys.update({f'{p}.attentions.0.attn.in_proj_weight': (3 * c, c),
                     f'{p}.attentions.0.attn.in_proj_bias': (3 * c,),
                     **_linear(f'{p}.attentions.0.attn.out_proj', c, c),
                     **deformable(f'{p}.attentions.1'), **ffn_norms(p, 3)})

    def box_mlp(p):
        return {**_linear(f'{p}.0', c, c), **_linear(f'{p}.2', c, c), **_linear(f'{p}.4', 4, c)}

    h = 'bbox_head'
    for i in range(layers):
        keys.update({**_linear(f'{h}.cls_branches.{i}', things, c),
                     **box_mlp(f'{h}.reg_branches.{i}')})
    keys.update({f'{h}.query_embedding.weight': (queries, 2 * c),
                 f'{h}.stuff_query.weight': (stuff, 2 * c)})
    for j in range(thing_blocks):
        keys.update({**box_mlp(f'{h}.reg_branches2.{j}'),
                     **_linear(f'{h}.cls_thing_branches.{j}', things, c)})
    for j in range(stuff_blocks):
        keys.update(_linear(f'{h}.cls_stuff_branches.{j}', 1, c))

    def attention(p, with_value):
        out = {**_linear(f'{p}.q', c, c), **_linear(f'{p}.k', c, c)}
        if with_value:
            out.update({**_linear(f'{p}.v', c, c), **_linear(f'{p}.proj', c, c)})
        for lvl in (1, 2, 3):
            out.update(_linear(f'{p}.linear_l{lvl}.0', heads, heads))
        out.update(_linear(f'{p}.linear.0', 1, 3 * heads))
        return out

    for name, blocks, self_attn in (('things_mask_head', thing_blocks, False),
                                    ('stuff_mask_head', stuff_blocks, True)):
        for j in range(blocks):
            p = f'{h}.{name}.blocks.{j}'
            keys.update({**attention(f'{p}.attn', True), **_norm(f'{p}.head_norm1', c),
                         **_norm(f'{p}.head_norm2', c), **_linear(f'{p}.mlp.fc1', 4 * c, c),
                         **_linear(f'{p}.mlp.fc2', c, 4 * c)})
            if self_attn:
                keys.update({**_linear(f'{p}.self_attention.qkv', 3 * c, c),
                             **_linear(f'{p}.self_attention.proj', c, c),
                             **_norm(f'{p}.norm3', c)})
        keys.update(attention(f'{h}.{name}.attnen', False))
    return keys


BACKBONES = {'r50': lambda: resnet(50), 'r101': lambda: resnet(101), 'pvtv2-b5': pvt_v2_b5,
             'swin-l': swin_l}


def official_layout(backbone: str) -> dict[str, tuple]:
    """Every key of an official checkpoint with the given backbone, with its shape."""
    keys, channels = BACKBONES[backbone]()
    return {**keys, **neck_and_head(channels)}


def num_params(layout: dict[str, tuple]) -> int:
    """Parameters (buffers excluded) of a layout."""
    total = 0
    for key, shape in layout.items():
        if not key.endswith(BUFFERS):
            n = 1
            for d in shape:
                n *= d
            total += n
    return total
