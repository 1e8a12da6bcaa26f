"""State-dict checks that name every mismatch, so a wrong checkpoint fails loudly."""
import torch
from mmengine.runner.checkpoint import _load_checkpoint


def state_dict_mismatch(expected, state):
    """Lines describing missing, unexpected and mis-shaped keys of ``state`` (empty if none)."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}'
                    for k in set(expected) & set(state)
                    if torch.is_tensor(state[k]) and expected[k].shape != state[k].shape)
    lines = []
    for title, items in (('missing keys', missing), ('unexpected keys', unexpected),
                         ('shape mismatches', shapes)):
        if items:
            lines.append(f'  {title} ({len(items)}): ' + ', '.join(items[:20]) +
                         (' ...' if len(items) > 20 else ''))
    return lines


def _raise(lines, source, module):
    raise KeyError('\n'.join([
        f'{source} does not match {type(module).__name__}:', *lines,
        '  Convert it first (tools/model_converters/segformer_weights.py or '
        'panoptic_segformer_weights.py), or use the config that matches the checkpoint.']))


def load_state_dict_strict(module, state, source):
    """Load ``state`` into ``module``; raise naming every mismatch. ``source`` names the file."""
    lines = state_dict_mismatch(module.state_dict(), state)
    if lines:
        _raise(lines, source, module)
    module.load_state_dict(state)


def check_checkpoint_matches(module, filename):
    """Raise, naming the keys, if the checkpoint file does not fit ``module`` exactly."""
    checkpoint = _load_checkpoint(filename, map_location='cpu')
    state = checkpoint.get('state_dict', checkpoint)
    state = {k.removeprefix('module.'): v for k, v in state.items()}
    lines = state_dict_mismatch(module.state_dict(), state)
    if lines:
        _raise(lines, filename, module)
