"""Evaluate a model on its test set under image corruptions (Cityscapes-C, SegFormer Sec. 4.4;
ImageNet-C for classifiers); the command line is tools/analysis_tools/robustness_eval.py.

For every (corruption, severity) pair the test pipeline gets an ``ImageCorruption`` transform right
after image loading, so whole and slide inference, TTA and any dataset work unchanged. The Runner
(model, checkpoint) is built once; each pair gets a fresh test loop with its own dataloader and
evaluator. Results are appended to ``WORK_DIR/robustness/results.json`` after every pair, so a
crashed run resumes without recomputing finished pairs; then ``table.csv``, ``table.md`` and
``plot.png`` are written. Segmentation configs (default_scope 'mmseg') report mIoU; Panoptic
SegFormer configs (default_scope 'mmdet') report PQ; classification configs (default_scope
'mmpretrain') report top-1, with the corruption applied to the test crop (as ImageNet-C corrupts
the 224x224 centre crop) and the ImageNet-C corruption set by default. ``--baseline`` adds the
corruption errors CE and their mean mCE relative to another model's results (ImageNet-C, Hendrycks
& Dietterich 2019). Under a launcher only rank 0 writes files.
"""
import copy
import csv
import json
import os
import os.path as osp
import sys

SCOPE_METRIC = {'mmseg': 'mIoU', 'mmdet': 'PQ', 'mmpretrain': 'top1'}
SCOPE_CORRUPTIONS = {'mmpretrain': 'imagenet-c'}  # others: 'paper'
CLEAN = 'clean'
RESULTS_FILE = 'results.json'


def resolve_corruptions(items):
    """Expand set and family names into corruption names (order kept, duplicates dropped)."""
    from mmseg_ext.datasets.transforms.corruption import (
        ALL_CORRUPTIONS,
        CORRUPTION_FAMILIES,
        IMAGENET_C_CORRUPTIONS,
        PAPER_CORRUPTIONS,
    )
    sets = {'paper': PAPER_CORRUPTIONS, 'imagenet-c': IMAGENET_C_CORRUPTIONS,
            'all': ALL_CORRUPTIONS, **CORRUPTION_FAMILIES}
    names = []
    for item in items:
        for name in sets.get(item, (item, )):
            if name not in ALL_CORRUPTIONS:
                raise ValueError(f'unknown corruption or set {name!r}')
            if name not in names:
                names.append(name)
    return names


def evaluation_pairs(corruptions, severities):
    """(corruption, severity) pairs to evaluate; severity 0 is one ('clean', 0) pair."""
    pairs = [(CLEAN, 0)] if 0 in severities else []
    return pairs + [(c, s) for c in corruptions for s in sorted(set(severities)) if s > 0]


def _insert_in_pipeline(pipeline, transform, before_pack):
    from mmseg_ext.checks.config_walk import type_name
    for i, step in enumerate(pipeline):
        if before_pack and type_name(step) == 'PackInputs':
            pipeline.insert(i, transform)
            return
        if not before_pack and type_name(step).startswith('LoadImage'):
            pipeline.insert(i + 1, transform)
            return
    raise ValueError('no PackInputs transform in the test pipeline to put the corruption before'
                     if before_pack else
                     'no LoadImage* transform in the test pipeline to put the corruption after')


def _insert_in_dataset(dataset, transform, before_pack):
    if 'pipeline' in dataset:
        _insert_in_pipeline(dataset['pipeline'], transform, before_pack)
    elif 'datasets' in dataset:  # ConcatDataset
        for sub in dataset['datasets']:
            _insert_in_dataset(sub, transform, before_pack)
    elif 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset, ...
        _insert_in_dataset(dataset['dataset'], transform, before_pack)
    else:
        raise ValueError('test dataset config has no pipeline')


def corrupted_dataloader_cfg(dataloader_cfg, corruption, severity, seed, before_pack=False):
    """A copy of the test dataloader config whose pipeline corrupts each image after loading, or,
    with ``before_pack`` (classification), the final test crop right before ``PackInputs``."""
    cfg = copy.deepcopy(dataloader_cfg)
    if corruption != CLEAN:
        transform = dict(type='ImageCorruption', corruption=corruption, severity=severity,
                         seed=seed)
        _insert_in_dataset(cfg['dataset'], transform, before_pack)
    return cfg


def pair_key(corruption, severity):
    return f'{corruption}/{severity}'


def load_results(path, header):
    """Finished pairs from an earlier run; refuse to mix in another checkpoint, seed or scope.

    The config path is recorded but not compared: the same model may be evaluated through a
    copy of its config (e.g. the one a training run saves in its work_dir).
    """
    if not osp.exists(path):
        return dict(header, results={})
    with open(path) as f:
        data = json.load(f)
    for key, value in header.items():
        if key == 'config':
            continue
        if data.get(key) != value:
            raise ValueError(f'{path} was written with {key}={data.get(key)!r}, this run has '
                             f'{value!r}: use another --work-dir')
    return data


def save_json(path, data):
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def pick_metric(metrics, name):
    """The value of ``name`` in an evaluator's output, whose keys may carry a 'prefix/'."""
    for key, value in metrics.items():
        if key.split('/')[-1] == name:
            return float(value)
    raise KeyError(f'metric {name!r} not among {sorted(metrics)}')


def run_pairs(pairs, evaluate, results_path, data, write=True):
    """Evaluate the pairs not yet in ``data`` and save after each one.

    ``evaluate(corruption, severity)`` returns the evaluator's metric dict.
    """
    for corruption, severity in pairs:
        key = pair_key(corruption, severity)
        if key in data['results']:
            continue
        metrics = evaluate(corruption, severity)
        data['results'][key] = {k: _plain(v) for k, v in metrics.items()}
        if write:
            save_json(results_path, data)
    return data


def _plain(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


# ---- table and plot ----

def build_table(data, corruptions, severities, metric, baseline=None):
    """Rows: clean, every corruption, mean over corruptions. Columns: severities, mean, drop.

    ``drop`` is the relative drop of the mean over severities against clean, in percent. With
    ``baseline`` (another model's results) each corruption row also gets its CE and relative
    CE, and the mean row the mCE and relative mCE (:func:`corruption_errors`).
    """
    from mmseg_ext.datasets.transforms.corruption import corruption_family
    sevs = sorted(s for s in set(severities) if s > 0)
    results = data['results']

    def value(c, s):
        entry = results.get(pair_key(c, s))
        return None if entry is None else pick_metric(entry, metric)

    clean = value(CLEAN, 0)
    rows = []
    for c in corruptions:
        per_sev = [value(c, s) for s in sevs]
        rows.append(dict(name=c, family=corruption_family(c), values=per_sev))
    columns = list(zip(*[r['values'] for r in rows])) if rows else [[] for _ in sevs]
    rows.append(dict(name='mean', family='', values=[_mean(col) for col in columns]))
    for row in rows:
        row['mean'] = _mean(row['values'])
        row['drop'] = (None if clean in (None, 0) or row['mean'] is None else
                       100.0 * (clean - row['mean']) / clean)
    table = dict(metric=metric, clean=clean, severities=sevs, rows=rows)
    if baseline is not None:
        errors = corruption_errors(data, baseline, corruptions, sevs, metric)
        for row in rows[:-1]:
            row['ce'], row['rel_ce'] = errors['ce'][row['name']], errors['rel_ce'][row['name']]
        rows[-1]['ce'], rows[-1]['rel_ce'] = errors['mce'], errors['rel_mce']
        table['baseline'] = True
    return table


def corruption_errors(data, baseline, corruptions, severities, metric):
    """ImageNet-C's corruption errors of a model f against a baseline b, in percent.

    With the error ``E = 100 - metric`` (top-1 error for top-1 accuracy):
    ``CE_c = sum_s E^f_{s,c} / sum_s E^b_{s,c}``, ``mCE = mean_c CE_c``, and the relative
    ``rCE_c = sum_s (E^f_{s,c} - E^f_clean) / sum_s (E^b_{s,c} - E^b_clean)``, ``rmCE``
    likewise (Hendrycks & Dietterich, ICLR 2019, Sec. 3; there b is AlexNet).
    """
    def error(results, corruption, severity, who):
        entry = results['results'].get(pair_key(corruption, severity))
        if entry is None:
            raise KeyError(f'the {who} results have no {pair_key(corruption, severity)}: run the '
                           'baseline with the same --corruptions and --severities (and 0)')
        return 100.0 - pick_metric(entry, metric)

    ce, rel_ce = {}, {}
    clean_f, clean_b = error(data, CLEAN, 0, 'model'), error(baseline, CLEAN, 0, 'baseline')
    for c in corruptions:
        e_f = [error(data, c, s, 'model') for s in severities]
        e_b = [error(baseline, c, s, 'baseline') for s in severities]
        ce[c] = 100.0 * sum(e_f) / sum(e_b) if sum(e_b) else None
        gap_b = sum(e_b) - len(e_b) * clean_b
        rel_ce[c] = 100.0 * (sum(e_f) - len(e_f) * clean_f) / gap_b if gap_b else None
    return dict(ce=ce, rel_ce=rel_ce, mce=_mean(ce.values()), rel_mce=_mean(rel_ce.values()))


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _fmt(value):
    return '' if value is None else f'{value:.2f}'


def table_lines(table):
    extra = ['CE %', 'rel. CE %'] if table.get('baseline') else []
    header = (['corruption', 'family'] + [f'severity {s}' for s in table['severities']] +
              ['mean', 'rel. drop %'] + extra)
    lines = [[CLEAN, '', *[''] * len(table['severities']), _fmt(table['clean']), '',
              *[''] * len(extra)]]
    for row in table['rows']:
        name = 'mean (mCE)' if extra and row['name'] == 'mean' else row['name']
        errors = [_fmt(row['ce']), _fmt(row['rel_ce'])] if extra else []
        lines.append([name, row['family'], *map(_fmt, row['values']), _fmt(row['mean']),
                      _fmt(row['drop']), *errors])
    return header, lines


def write_table(table, out_dir):
    header, lines = table_lines(table)
    with open(osp.join(out_dir, 'table.csv'), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(lines)
    note = (' CE: corruption error against the baseline (ImageNet-C); the mean row holds the mCE.'
            if table.get('baseline') else '')
    md = [f'{table["metric"]} per corruption and severity (clean = severity 0).{note}', '',
          '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    md += ['| ' + ' | '.join(line) + ' |' for line in lines]
    with open(osp.join(out_dir, 'table.md'), 'w') as f:
        f.write('\n'.join(md) + '\n')


def plot_table(table, path, title=''):
    """One subplot per family, one line per corruption; severity 0 is the shared clean point.

    Per-family subplots keep each corruption visible (family averages would hide, e.g., a blur
    that hurts far more than the others) while the four panels compare the families.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    families = []
    for row in table['rows'][:-1]:
        if row['family'] not in families:
            families.append(row['family'])
    fig, axes = plt.subplots(1, max(len(families), 1), figsize=(3.6 * max(len(families), 1), 3.4),
                             sharey=True, squeeze=False)
    for ax, family in zip(axes[0], families):
        for row in table['rows'][:-1]:
            if row['family'] != family:
                continue
            xs, ys = [], []
            if table['clean'] is not None:
                xs, ys = [0], [table['clean']]
            for s, v in zip(table['severities'], row['values']):
                if v is not None:
                    xs.append(s)
                    ys.append(v)
            ax.plot(xs, ys, marker='o', markersize=3, label=row['name'].replace('_', ' '))
        ax.set_title(family)
        ax.set_xlabel('severity (0 = clean)')
        ax.set_xticks(range(0, 6))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(table['metric'])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- runner ----

def build_runner(config, checkpoint, work_dir=None, cfg_options=None, launcher='none'):
    """The Runner with the checkpoint to load; CPU torchrun/slurm work (mmseg_ext.apis)."""
    from mmseg_ext.apis import build_runner as build
    from mmseg_ext.apis import load_config
    cfg = load_config(config, cfg_options)
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(config))[0])
    cfg.load_from = checkpoint
    cfg.resume = False
    return cfg, build(cfg, launcher, mode='test')


def overall_progress(num_pairs):
    """A hook showing one progress bar with ETA over the test batches of all ``num_pairs``
    (corruption, severity) pairs still to evaluate."""
    from mmengine.hooks import Hook
    from mmengine.utils import ProgressBar

    class OverallProgress(Hook):
        bar = None

        def before_test_epoch(self, runner):
            if self.bar is None:  # every pair's loop has the same number of batches
                self.bar = ProgressBar(num_pairs * len(runner.test_loop.dataloader),
                                       file=sys.stdout)

        def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            self.bar.update()

    return OverallProgress()


def make_evaluator(runner, cfg, seed):
    """``evaluate(corruption, severity)`` on the runner's model with a fresh test loop.
    Classifiers (mmpretrain) get the corruption on the final test crop."""
    from mmengine.registry import LOOPS
    before_pack = cfg.get('default_scope') == 'mmpretrain'

    def evaluate(corruption, severity):
        loader = corrupted_dataloader_cfg(cfg.test_dataloader, corruption, severity, seed,
                                          before_pack)
        loop_cfg = copy.deepcopy(cfg.get('test_cfg') or dict())
        loop_cfg.setdefault('type', 'TestLoop')
        loop = LOOPS.build(loop_cfg, default_args=dict(
            runner=runner, dataloader=loader, evaluator=copy.deepcopy(cfg.test_evaluator)))
        runner._test_loop = loop  # hooks read runner.test_loop; mmengine has no setter
        runner.logger.info(f'robustness: {corruption} severity {severity}')
        return loop.run()

    return evaluate


def evaluate_robustness(config, checkpoint, corruptions=None, severities=(0, 1, 2, 3, 4, 5),
                        work_dir=None, seed=0, metric=None, baseline=None, cfg_options=None,
                        launcher='none'):
    """Evaluate every (corruption, severity) pair not yet in ``WORK_DIR/robustness/results.json``,
    then write the table and the plot (rank 0). ``corruptions``: names, families or sets
    (default by scope); ``baseline``: another model's results.json, adds CE and mCE."""
    from mmengine.dist import broadcast_object_list, get_rank
    cfg, runner = build_runner(config, checkpoint, work_dir, cfg_options, launcher)
    scope = cfg.get('default_scope', 'mmseg')
    corruptions = resolve_corruptions(corruptions or [SCOPE_CORRUPTIONS.get(scope, 'paper')])
    pairs = evaluation_pairs(corruptions, severities)
    metric = metric or SCOPE_METRIC[scope]
    baseline_path, baseline = baseline, None
    if baseline_path:
        with open(baseline_path) as f:
            baseline = json.load(f)
    out_dir = osp.join(cfg.work_dir, 'robustness')
    results_path = osp.join(out_dir, RESULTS_FILE)
    is_main = get_rank() == 0
    header = dict(config=config, checkpoint=osp.abspath(checkpoint), seed=seed,
                  scope=scope)
    shared = [load_results(results_path, header) if is_main else None]
    broadcast_object_list(shared)  # every rank must skip the same pairs
    data = shared[0]
    if is_main:
        os.makedirs(out_dir, exist_ok=True)
        runner.register_hook(overall_progress(
            sum(pair_key(*pair) not in data['results'] for pair in pairs)))
    runner.call_hook('before_run')
    runner.load_or_resume()
    data = run_pairs(pairs, make_evaluator(runner, cfg, seed), results_path, data,
                     write=is_main)
    runner.call_hook('after_run')
    if is_main:
        table = build_table(data, corruptions, severities, metric, baseline)
        write_table(table, out_dir)
        plot_table(table, osp.join(out_dir, 'plot.png'),
                   title=f'{osp.basename(config)}: {metric} under corruptions')
        if baseline is not None:
            mean = table['rows'][-1]
            runner.logger.info(f'mCE {_fmt(mean["ce"])} %, relative mCE {_fmt(mean["rel_ce"])} % '
                               f'(baseline: {baseline_path})')
        runner.logger.info(f'robustness results in {out_dir}')
