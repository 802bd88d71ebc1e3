"""Method registry and the automatic choice (`auto`), which follows Evidently's default.

Evidently's rule (legacy `_get_default_stattest`), with n_unique counted over
reference and current together:

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

from detectors.binned import hellinger, jensenshannon, kl_div, psi, tvd
from detectors.categorical.chisquare import chisquare, g_test
from detectors.categorical.z import z_test
from detectors.errors import UnknownMethodError
from detectors.numeric.ks import ks
from detectors.numeric.tests import anderson, cramer_von_mises, energy, mannwhitney, t_test
from detectors.numeric.wasserstein import wasserstein
from detectors.profile import CategoricalProfile, ColumnProfile, NumericProfile
from detectors.report import ColumnKind

MethodFunction = Callable[[Any, Any], tuple[float, float | None]]


@dataclass(frozen=True, slots=True)
class Method:
    """A drift method: its function, whether it yields a p-value, its default threshold."""

    name: str
    function: MethodFunction
    p_value: bool
    default_threshold: float
    kinds: frozenset[ColumnKind]


_BOTH: frozenset[ColumnKind] = frozenset({"numeric", "categorical"})
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("ks", ks, True, 0.05, frozenset({"numeric"})),
        Method("wasserstein", wasserstein, False, 0.1, frozenset({"numeric"})),
        Method("chisquare", chisquare, True, 0.05, _BOTH),
        Method("z", z_test, True, 0.05, _BOTH),
        Method("jensenshannon", jensenshannon, False, 0.1, _BOTH),
        Method("psi", psi, False, 0.1, _BOTH),
        Method("kl_div", kl_div, False, 0.1, _BOTH),
        Method("hellinger", hellinger, False, 0.1, _BOTH),
        Method("anderson", anderson, True, 0.05, frozenset({"numeric"})),
        Method("cramer_von_mises", cramer_von_mises, True, 0.05, frozenset({"numeric"})),
        Method("energy", energy, False, 0.1, frozenset({"numeric"})),
        Method("mannwhitney", mannwhitney, True, 0.05, frozenset({"numeric"})),
        Method("t_test", t_test, True, 0.05, frozenset({"numeric"})),
        Method("g_test", g_test, True, 0.05, frozenset({"categorical"})),
        Method("tvd", tvd, False, 0.1, frozenset({"categorical"})),
    )
}


def method(name: str, kind: ColumnKind) -> Method:
    """The method called `name`, checked to apply to `kind` columns."""
    found = METHODS.get(name)
    if found is None or kind not in found.kinds:
        valid = sorted(n for n, m in METHODS.items() if kind in m.kinds)
        raise UnknownMethodError(f"unknown {kind} drift method {name!r}; use one of {valid}")
    return found


def _n_unique(reference: ColumnProfile, current: Any) -> int:
    if isinstance(reference, NumericProfile):
        return int(np.unique(np.concatenate([reference.values, current])).size)
    return len(set(reference.categories) | {str(v) for v in np.unique(current)})


def auto_method(reference: ColumnProfile, current: Any) -> str:
    """Evidently's default method for this column (see the module docstring)."""
    n_unique = _n_unique(reference, current)
    if reference.n <= 1000:
        if isinstance(reference, CategoricalProfile) or n_unique <= 5:
            return "chisquare" if n_unique > 2 else "z"
        return "ks"
    if isinstance(reference, CategoricalProfile) or n_unique <= 5:
        return "jensenshannon"
    return "wasserstein"
