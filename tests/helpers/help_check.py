"""Run a tool with --help and report, as JSON on stderr, how long it took, which heavy packages
it imported and which options lack help text (tests/test_fail_early.py)."""
import argparse
import json
import runpy
import sys
import time

HEAVY = ('torch', 'mmcv', 'mmseg', 'mmdet', 'mmpretrain', 'transformers', 'mmseg_ext', 'cv2')


def main():
    parsers = []
    parse_args = argparse.ArgumentParser.parse_args

    def capture(self, *args, **kwargs):
        parsers.append(self)
        return parse_args(self, *args, **kwargs)

    argparse.ArgumentParser.parse_args = capture
    tool = sys.argv[1]
    sys.argv = [tool, '--help']
    start = time.perf_counter()
    try:
        runpy.run_module(tool[:-3].replace('/', '.'), run_name='__main__')
    except SystemExit:
        pass
    report = dict(
        seconds=time.perf_counter() - start,
        parsers=len(parsers),
        heavy=sorted(m for m in sys.modules if m in HEAVY),
        no_help=[a.option_strings or [a.dest] for p in parsers for a in p._actions
                 if a.help is None and not isinstance(a, argparse._HelpAction)])
    print(json.dumps(report), file=sys.stderr)


if __name__ == '__main__':
    main()
