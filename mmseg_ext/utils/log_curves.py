"""Learning curves from the json logs mmengine writes (``WORK_DIR/<time>/vis_data/<time>.json``
or ``scalars.json``: one dict of scalars per logged step)."""
import json

#: Keys that training and validation lines share; validation's are read as ``val/<key>``.
TIMING_KEYS = ('time', 'data_time')


def load_scalars(path: str) -> dict[str, tuple[list[float], list[float]]]:
    """``{key: (steps, values)}`` of every scalar in a json log. A step is the line's ``step``:
    the iteration for training lines and iteration-based validation, the epoch for epoch-based
    validation; validation's ``time`` and ``data_time`` become ``val/time``, ``val/data_time``.
    Lines that are not JSON objects (a log cut by a crash) are an error naming the
    file and line."""
    curves = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f'{path}, line {number}: not a JSON log line ({error})') from None
            step = record.get('step', record.get('iter'))
            training = 'iter' in record  # validation lines have no iteration count
            for key, value in record.items():
                if key in ('step', 'iter', 'epoch') or not isinstance(value, (int, float)):
                    continue
                if not training and key in TIMING_KEYS:
                    key = f'val/{key}'
                steps, values = curves.setdefault(key, ([], []))
                steps.append(step)
                values.append(float(value))
    return curves


def select_curves(logs: dict[str, dict], keys: list[str]) -> dict[str, dict[str, tuple]]:
    """``{key: {log: (steps, values)}}`` for ``keys`` from ``{log: load_scalars(log)}``; a key
    that a log lacks is an error listing what that log has."""
    for path, curves in logs.items():
        missing = [key for key in keys if key not in curves]
        if missing:
            raise KeyError(f'{path} has no {", ".join(missing)}; it has: '
                           f'{", ".join(sorted(curves))}')
    return {key: {path: curves[key] for path, curves in logs.items()} for key in keys}
