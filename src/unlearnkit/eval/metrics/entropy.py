"""Token entropy of a generation (Yuan et al. 2025, Sec. 5): low values flag repetitive output."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def token_entropy(tokens: Sequence[int | str]) -> float:
    """Normalized unigram entropy of a token sequence.

    TE = -sum_v f_v log2 f_v / log2(n), with f_v = count(v) / n over the n tokens of the generation
    (tokenized by the evaluated model's tokenizer). In [0, 1]: 1 when every token is distinct,
    0 when one token repeats. Defined as 0 when n <= 1 (an empty or one-token generation).
    """
    n = len(tokens)
    if n <= 1:
        return 0.0
    entropy = 0.0
    for count in Counter(tokens).values():
        f = count / n
        entropy -= f * math.log2(f)
    return entropy / math.log2(n)
