"""State-dict checks that name every mismatch, so a wrong checkpoint fails loudly."""
import torch
from mmengine.runner.checkpoint import _load_checkpoint

CONVERT_HINT = ('Convert it first (tools/model_converters/segformer_weights.py or '
                'panoptic_segformer_weights.py), or use the config that matches the checkpoint.')


def raise_on_mismatch(expected, state, source, target, hint=CONVERT_HINT):
    """Raise ``KeyError`` listing the missing, unexpected and mis-shaped keys of ``state``
    against ``expected`` (both state dicts). ``source`` names the file, ``target`` the model,
    ``hint`` says how to fix it."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}'
                    for k in set(expected) & set(state)
                    if torch.is_tensor(state[k]) and expected[k].shape != state[k].shape)
    lines = [f'  {title} ({len(items)}): ' + ', '.join(items[:20]) +
             (' ...' if len(items) > 20 else '')
             for title, items in (('missing keys', missing), ('unexpected keys', unexpected),
                                  ('shape mismatches', shapes)) if items]
    if lines:
        raise KeyError('\n'.join([
            f'{source} does not match {target}:', *lines, f'  {hint}']))


def checkpoint_state_dict(checkpoint, filename):
    """The model state dict a checkpoint holds, without DDP's ``module.`` prefixes."""
    if not isinstance(checkpoint, dict):
        raise TypeError(f'{filename} holds a {type(checkpoint).__name__}, not a checkpoint '
                        '(a dict with a state_dict, as tools/train.py saves)')
    state = checkpoint.get('state_dict', checkpoint)
    return {k.removeprefix('module.'): v for k, v in state.items()}


def check_checkpoint_matches(module, filename):
    """Raise, naming the keys, if the checkpoint file does not fit ``module`` exactly.

    Returns the checkpoint (read once) so that callers can load it without reading it again.
    """
    checkpoint = _load_checkpoint(filename, map_location='cpu')
    raise_on_mismatch(module.state_dict(), checkpoint_state_dict(checkpoint, filename), filename,
                      type(module).__name__)
    return checkpoint


def load_matching_checkpoint(module, filename):
    """Load ``filename`` into ``module`` only if its keys and shapes match exactly (the check
    tools/test.py and tools/infer.py share); returns the checkpoint dict."""
    checkpoint = check_checkpoint_matches(module, filename)
    module.load_state_dict(checkpoint_state_dict(checkpoint, filename), strict=True)
    return checkpoint
