"""Column-parallel map over threads.

numpy's sorts and binary searches release the GIL, so columns can be fitted and
tested on several cores with threads; results keep the input order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Below this many columns the pool costs more than it saves.
_MIN_COLUMNS = 4


def column_map(function: Callable[[T], R], items: Iterable[T], *, workers: int | None = None
               ) -> list[R]:
    """`[function(item) for item in items]`, on up to `workers` threads (default: cores).

    Examples:
        >>> column_map(abs, [-1, 2, -3, 4, -5])
        [1, 2, 3, 4, 5]
    """
    work = list(items)
    count = workers if workers is not None else min(os.cpu_count() or 1, 8)
    if count <= 1 or len(work) < _MIN_COLUMNS:
        return [function(item) for item in work]
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="driftline-detect") as pool:
        return list(pool.map(function, work))
