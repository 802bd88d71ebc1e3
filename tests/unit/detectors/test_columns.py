"""Category counts: the identity-grouped path equals pandas' value_counts on every input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors.columns import category_counts


def _by_pandas(values: pd.Series) -> dict[str, int]:
    merged: dict[str, int] = {}
    for key, count in values.value_counts(dropna=True, sort=False).items():
        merged[str(key)] = merged.get(str(key), 0) + int(count)
    return merged


def _counted(values: pd.Series) -> dict[str, int]:
    names, counts = category_counts(values)
    assert list(names) == sorted(names)
    return dict(zip(names, counts.tolist(), strict=True))


def test_shared_string_objects_count_as_pandas(rng: np.random.Generator) -> None:
    # One object per distinct string, as pyarrow and pandas' CSV reader store them.
    names = np.array(["DE", "FR", "US", "PL"], dtype=object)
    values = pd.Series(names[rng.integers(0, 4, 50_000)])
    assert _counted(values) == _by_pandas(values)


def test_equal_strings_in_distinct_objects_merge(rng: np.random.Generator) -> None:
    # Strings built one by one (decoded events): equal values, distinct objects.
    values = pd.Series(["".join(["c", str(i)]) for i in rng.integers(0, 5, 20_000)], dtype=object)
    assert len({id(v) for v in values}) > 5
    assert _counted(values) == _by_pandas(values)


def test_missing_values_are_dropped(rng: np.random.Generator) -> None:
    pool = np.array(["a", "b", None, float("nan"), pd.NA, np.nan], dtype=object)
    values = pd.Series(pool[rng.integers(0, pool.size, 10_000)])
    assert _counted(values) == _by_pandas(values)
    assert set(_counted(values)) == {"a", "b"}


@pytest.mark.parametrize(
    "values",
    [
        [1, 1.0, True, "1", "a"] * 300,  # pandas' equality merges 1, 1.0 and True
        [b"x", "x", b"y"] * 300,
        [np.str_("a"), "a", "b"] * 300,
    ],
)
def test_other_objects_follow_pandas(values: list[object]) -> None:
    series = pd.Series(values, dtype=object)
    assert _counted(series) == _by_pandas(series)


def test_high_cardinality_and_non_contiguous_columns(rng: np.random.Generator) -> None:
    ids = pd.Series([f"user-{i}" for i in rng.integers(0, 30_000, 40_000)], dtype=object)
    assert _counted(ids) == _by_pandas(ids)
    frame = pd.DataFrame({"a": np.array(["x", "y"], dtype=object)[rng.integers(0, 2, 999)],
                          "b": np.array(["p", "q"], dtype=object)[rng.integers(0, 2, 999)]})
    strided = pd.Series(frame.to_numpy()[::3, 1])
    assert _counted(strided) == _by_pandas(strided)


def test_empty_and_all_missing() -> None:
    assert category_counts(pd.Series([], dtype=object))[0] == ()
    assert category_counts(pd.Series([None, float("nan")] * 100, dtype=object))[0] == ()


def test_profile_mean_is_the_mean_even_when_the_sum_overflows() -> None:
    from fractions import Fraction

    from detectors.profile import NumericProfile

    values = [1.7e308, 1.6e308, 1.5e308, -1e307, 3.0]
    profile = NumericProfile.fit(values)
    exact = float(sum(Fraction(v) for v in values) / len(values))
    assert profile.mean == pytest.approx(exact, rel=1e-12)
    assert profile.center == profile.mean
    # The t-test reads the fitted mean: it equals scipy's on values that do not overflow.
    ordinary = NumericProfile.fit([1.0, 2.0, 4.0])
    assert ordinary.mean == pytest.approx(7 / 3, rel=1e-15)
