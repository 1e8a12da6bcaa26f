"""ListOps (Nangia & Bowman, 2018) as released in Long Range Arena: syntax, value, tokens, samples.

An expression is a digit ``0-9`` or an operator applied to two or more expressions:
``MIN``, ``MAX``, ``MED`` (median, rounded down as ``int(numpy.median)``) and ``SM`` (sum mod 10).
The LRA release (``basic_{train,val,test}.tsv``) writes ``[OP a1 ... ak ]`` as left-nested pairs,
each pair in parentheses: ``[MAX 2 9 ]`` is ``( ( ( [MAX 2 ) 9 ) ] )``. The parentheses carry no
information; ``[OP`` opens and ``]`` closes an application.

Tokens as the LRA input pipeline (which the official Transformer-LS code uses) makes them: only the
alphanumeric runs, so ``[MAX`` -> ``MAX`` and the brackets and parentheses are dropped (this is the
release's known quirk; ``keep_brackets=True`` keeps ``]`` as a token, which makes the nesting
recoverable). Ids: 0 padding, digits 1-10, operators 11-14, ``]`` 15.
"""
import random
import re

OPERATORS = ('MIN', 'MAX', 'MED', 'SM')
VOCAB = tuple('0123456789') + OPERATORS + (']',)
TOKEN_IDS = {token: i + 1 for i, token in enumerate(VOCAB)}  # 0 is padding
NUM_CLASSES = 10


def apply_operator(op: str, args: list[int]) -> int:
    """Value of ``[op *args ]``."""
    if op == 'MIN':
        return min(args)
    if op == 'MAX':
        return max(args)
    if op == 'SM':
        return sum(args) % 10
    if op == 'MED':
        s, k = sorted(args), len(args)
        return s[k // 2] if k % 2 else (s[k // 2 - 1] + s[k // 2]) // 2
    raise ValueError(f'unknown ListOps operator {op!r}; expected one of {OPERATORS}')


def evaluate(source: str) -> int:
    """Value of an expression in the release syntax; ``ValueError`` on a malformed one."""
    stack, value = [], None
    for token in source.split():
        if token in '()':
            continue
        if token.startswith('['):
            stack.append((token[1:], []))
        elif token == ']':
            if not stack:
                raise ValueError('unbalanced "]"')
            op, args = stack.pop()
            if len(args) < 2:
                raise ValueError(f'[{op} has {len(args)} argument(s), needs at least 2')
            result = apply_operator(op, args)
            if stack:
                stack[-1][1].append(result)
            elif value is not None:
                raise ValueError('more than one expression')
            else:
                value = result
        elif token.isdigit() and len(token) == 1:
            if not stack:
                raise ValueError(f'digit {token} outside any operator')
            stack[-1][1].append(int(token))
        else:
            raise ValueError(f'unexpected token {token!r}')
    if stack or value is None:
        raise ValueError('incomplete expression' if stack else 'no expression')
    return value


def tokenize(source: str, keep_brackets: bool = False) -> list[int]:
    """Token ids of a release-syntax expression (see the module docstring)."""
    tokens = re.findall(r'\w+|\]' if keep_brackets else r'\w+', source)
    try:
        return [TOKEN_IDS[t] for t in tokens]
    except KeyError as err:
        raise ValueError(f'unknown ListOps token {err.args[0]!r}; the vocabulary is '
                         f'{" ".join(VOCAB[:-1])}') from None


def to_source(expr) -> str:
    """Release syntax of ``expr``: an int, or ``(op, [sub-expressions])``."""
    if isinstance(expr, int):
        return str(expr)
    op, args = expr
    text = f'[{op}'
    for arg in args:
        text = f'( {text} {to_source(arg)} )'
    return f'( {text} ] )'


def random_expression(rng: random.Random, max_depth: int, max_args: int,
                      op_prob: float = 0.25, depth: int = 1):
    """A random tree as the LRA generator draws them; returns ``(expr, length)``.

    Below ``max_depth`` a node is an operator with probability ``op_prob`` (2..``max_args``
    arguments, uniform operator), else a uniform digit. ``length`` counts digits, operators and
    closing brackets, the quantity the release bounds (500 < length < 2000 for ``basic``).
    """
    if depth >= max_depth or rng.random() >= op_prob:
        return rng.randrange(10), 1
    args, length = [], 2
    for _ in range(rng.randint(2, max_args)):
        arg, arg_length = random_expression(rng, max_depth, max_args, op_prob, depth + 1)
        args.append(arg)
        length += arg_length
    return (rng.choice(OPERATORS), args), length
