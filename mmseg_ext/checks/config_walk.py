"""A config's data splits and the datasets in them, as the checks walk them."""

# The data splits of a config: split name -> its dataloader key.
SPLITS = {'train': 'train_dataloader', 'val': 'val_dataloader', 'test': 'test_dataloader'}


def leaf_datasets(dataset_cfg, key):
    """(key, config) of every dataset inside wrappers (RepeatDataset, ConcatDataset, ...)."""
    if 'datasets' in dataset_cfg:
        for i, sub in enumerate(dataset_cfg['datasets']):
            yield from leaf_datasets(sub, f'{key}.datasets[{i}]')
    elif 'dataset' in dataset_cfg:
        yield from leaf_datasets(dataset_cfg['dataset'], f'{key}.dataset')
    else:
        yield key, dataset_cfg


def split_datasets(cfg, splits):
    """(key, config) of every dataset of ``cfg``'s ``splits`` (keys of :data:`SPLITS`) that
    has a dataloader with a dataset."""
    for split in splits:
        loader = cfg.get(SPLITS[split])
        if loader and 'dataset' in loader:
            yield from leaf_datasets(loader['dataset'], f'{SPLITS[split]}.dataset')


def type_name(step):
    """The class name of a pipeline step or hook config (``type`` a string or a class)."""
    kind = step.get('type', '') if isinstance(step, dict) else type(step).__name__
    return (kind if isinstance(kind, str) else kind.__name__).split('.')[-1]


def short_list(items, limit=8):
    """``items`` joined for a message, cut after ``limit`` with the total."""
    items = [str(i) for i in items]
    return ', '.join(items[:limit]) + (f', ... ({len(items)} in all)' if len(items) > limit else '')
