"""Method registry and the automatic choice (`auto`), which follows Evidently's default.

Evidently's rule (legacy `_get_default_stattest`), with n_unique counted over the
non-missing, finite values of reference and current together:

| reference rows | numeric column                                | categorical column        |
| -------------- | --------------------------------------------- | ------------------------- |
| <= 1000        | ks; chisquare if n_unique <= 5 (z if <= 2)    | chisquare (z if <= 2)     |
| > 1000         | wasserstein; jensenshannon if n_unique <= 5   | jensenshannon             |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.categorical.chisquare import chisquare, g_test
from detectors.categorical.tvd import tvd
from detectors.categorical.z import fisher_exact, z_test
from detectors.columns import NumericWindow, Window
from detectors.distances import hellinger, jensenshannon, kl_div, psi
from detectors.errors import UnknownMethodError
from detectors.numeric.ks import ks
from detectors.numeric.mmd import mmd
from detectors.numeric.rank_tests import anderson, cramer_von_mises, energy, mannwhitney, t_test
from detectors.numeric.wasserstein import wasserstein
from detectors.profile import ColumnProfile, NumericProfile
from detectors.report import ColumnKind

MethodFunction = Callable[[Any, Any], tuple[float | None, float | None]]


@dataclass(frozen=True, slots=True)
class Method:
    """A drift method: its function, whether it yields a p-value, its default threshold.

    `evidently` is the name of the same test in Evidently (None if it has none);
    default thresholds are Evidently's, so that verdicts agree.
    """

    name: str
    function: MethodFunction
    p_value: bool
    default_threshold: float
    kinds: frozenset[ColumnKind]
    evidently: str | None


_NUM: frozenset[ColumnKind] = frozenset({"numeric"})
_CAT: frozenset[ColumnKind] = frozenset({"categorical"})
_BOTH: frozenset[ColumnKind] = _NUM | _CAT
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("ks", ks, True, 0.05, _NUM, "ks"),
        Method("wasserstein", wasserstein, False, 0.1, _NUM, "wasserstein"),
        Method("anderson", anderson, True, 0.1, _NUM, "anderson"),
        Method("cramer_von_mises", cramer_von_mises, True, 0.1, _NUM, "cramer_von_mises"),
        Method("energy", energy, False, 0.1, _NUM, "ed"),
        Method("mannwhitney", mannwhitney, True, 0.05, _NUM, "mannw"),
        Method("t_test", t_test, True, 0.05, _NUM, "t_test"),
        Method("mmd", mmd, True, 0.1, _NUM, "empirical_mmd"),
        Method("chisquare", chisquare, True, 0.05, _BOTH, "chisquare"),
        Method("z", z_test, True, 0.05, _BOTH, "z"),
        Method("fisher_exact", fisher_exact, True, 0.1, _BOTH, "fisher_exact"),
        Method("g_test", g_test, True, 0.1, _BOTH, "g_test"),
        Method("tvd", tvd, True, 0.1, _BOTH, "TVD"),
        Method("jensenshannon", jensenshannon, False, 0.1, _BOTH, "jensenshannon"),
        Method("psi", psi, False, 0.1, _BOTH, "psi"),
        Method("kl_div", kl_div, False, 0.1, _BOTH, "kl_div"),
        Method("hellinger", hellinger, False, 0.1, _BOTH, "hellinger"),
    )
}


def methods_for(kind: ColumnKind) -> list[str]:
    """Names of the methods that apply to `kind` columns, sorted.

    Examples:
        >>> methods_for("categorical")[:3]
        ['chisquare', 'fisher_exact', 'g_test']
    """
    return sorted(name for name, m in METHODS.items() if kind in m.kinds)


def method(name: str, kind: ColumnKind) -> Method:
    """The method called `name`, checked to apply to `kind` columns.

    Raises:
        UnknownMethodError: naming the bad method and listing the valid ones.
    """
    found = METHODS.get(name)
    if found is None or kind not in found.kinds:
        raise UnknownMethodError(
            f"unknown drift method {name!r} for {kind} columns; "
            f"use auto or one of {methods_for(kind)}"
        )
    return found


def union_unique(reference: ColumnProfile, current: Window, *, at_most: int) -> int:
    """Distinct values of reference and current together, exact up to `at_most` + 1."""
    if reference.n_unique > at_most:
        return reference.n_unique
    if isinstance(reference, NumericProfile):
        values = current.sorted if isinstance(current, NumericWindow) else np.zeros(0)
        levels, _counts = NumericWindow(values).levels()
        return int(np.union1d(reference.levels, levels).size)
    names = getattr(current, "categories", ())
    return len(set(reference.categories) | set(names))


def auto_method(reference: ColumnProfile, current: Window) -> str:
    """Evidently's default method for this column (see the module docstring).

    Examples:
        >>> from detectors.columns import NumericWindow
        >>> auto_method(NumericProfile.fit(np.arange(500.0)), NumericWindow.of([1.0, 2.0]))
        'ks'
        >>> auto_method(NumericProfile.fit(np.arange(5000.0)), NumericWindow.of([1.0, 2.0]))
        'wasserstein'
    """
    few = union_unique(reference, current, at_most=5) <= 5
    n_unique = union_unique(reference, current, at_most=2)
    categorical = not isinstance(reference, NumericProfile)
    if reference.n <= 1000:
        if categorical or few:
            return "chisquare" if n_unique > 2 else "z"
        return "ks"
    if categorical or few:
        return "jensenshannon"
    return "wasserstein"
