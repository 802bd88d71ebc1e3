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
from typing import Any, Literal

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
MethodFamily = Literal["p_value", "distance"]


@dataclass(frozen=True, slots=True)
class Method:
    """A drift method: its function, whether it yields a p-value, its default threshold.

    `kinds` are the column kinds the function runs on; `selectable` those a user may
    choose it for. The count tests (chi-square, z, Fisher, G, TVD) run on numeric
    columns with few distinct values, where `auto` picks them as Evidently does, but on
    a continuous column every value is its own category and the p-value is meaningless
    (chi-square gave p = 3e-93 on two samples of one distribution): they are selectable
    for categorical columns only. `evidently` is the name of the same test in Evidently
    (None if it has none); default thresholds are Evidently's, so that verdicts agree.
    """

    name: str
    function: MethodFunction
    p_value: bool
    default_threshold: float
    kinds: frozenset[ColumnKind]
    evidently: str | None
    selectable: frozenset[ColumnKind] | None = None

    @property
    def family(self) -> MethodFamily:
        """`p_value` (drift when p < threshold) or `distance` (drift when statistic >= it)."""
        return "p_value" if self.p_value else "distance"

    @property
    def choosable(self) -> frozenset[ColumnKind]:
        """Column kinds a user may choose this method for."""
        return self.kinds if self.selectable is None else self.selectable


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
        Method("chisquare", chisquare, True, 0.05, _BOTH, "chisquare", _CAT),
        Method("z", z_test, True, 0.05, _BOTH, "z", _CAT),
        Method("fisher_exact", fisher_exact, True, 0.1, _BOTH, "fisher_exact", _CAT),
        Method("g_test", g_test, True, 0.1, _BOTH, "g_test", _CAT),
        Method("tvd", tvd, True, 0.1, _BOTH, "TVD", _CAT),
        Method("jensenshannon", jensenshannon, False, 0.1, _BOTH, "jensenshannon"),
        Method("psi", psi, False, 0.1, _BOTH, "psi"),
        Method("kl_div", kl_div, False, 0.1, _BOTH, "kl_div"),
        Method("hellinger", hellinger, False, 0.1, _BOTH, "hellinger"),
    )
}


def methods_for(kind: ColumnKind) -> list[str]:
    """Names of the methods a user may choose for `kind` columns, sorted.

    This is the one list of methods: the configuration, the CLI and
    docs/drift-methods.md take theirs from here (a test keeps them equal).

    Examples:
        >>> methods_for("categorical")[:3]
        ['chisquare', 'fisher_exact', 'g_test']
        >>> "chisquare" in methods_for("numeric")
        False
    """
    return sorted(name for name, m in METHODS.items() if kind in m.choosable)


def method(name: str, kind: ColumnKind) -> Method:
    """The method called `name`, checked to be a valid choice for `kind` columns.

    Raises:
        UnknownMethodError: naming the bad method, why, and listing the valid ones.
    """
    found = METHODS.get(name)
    if found is None:
        raise UnknownMethodError(
            f"unknown drift method {name!r}; for {kind} columns use auto or one of "
            f"{', '.join(methods_for(kind))}"
        )
    if kind not in found.choosable:
        reason = (
            "it compares category counts, and on a continuous column every value is a "
            "category of its own (declare the column categorical if its values are codes)"
            if kind == "numeric" and "numeric" in found.kinds
            else f"it does not apply to {kind} columns"
        )
        raise UnknownMethodError(
            f"drift method {name!r} cannot be used for {kind} columns: {reason}; use auto "
            f"or one of {', '.join(methods_for(kind))}"
        )
    return found


def method_family(name: str) -> MethodFamily:
    """The family of the method called `name` (KeyError-free: unknown names raise).

    Examples:
        >>> method_family("ks"), method_family("wasserstein")
        ('p_value', 'distance')
    """
    found = METHODS.get(name)
    if found is None:
        raise UnknownMethodError(f"unknown drift method {name!r}")
    return found.family


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
