"""Side-by-side timing: several implementations called in turn, so that load from other
processes hits all of them alike; speed claims are ratios of these medians."""
import statistics
import time


def round_robin(fns, repeat, warmup=1, stat='median'):
    """Median (``stat='min'``: fastest) milliseconds per call of each ``fns[name]()``, calling
    them in turn: ``warmup`` untimed rounds, then ``repeat`` timed ones."""
    reduce = {'median': statistics.median, 'min': min}[stat]
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: 1000 * reduce(t) for name, t in times.items()}
