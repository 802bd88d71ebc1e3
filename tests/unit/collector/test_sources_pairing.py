"""collector.sources.pairing: requests and responses paired in any order, with a bounded wait."""

from __future__ import annotations

import pytest

from collector.sources.base import Part
from collector.sources.pairing import OffsetBook, Pairer


def _part(key: str, role: str) -> Part:
    return Part(key, role, "v1", {}, "iris", None, None)  # type: ignore[arg-type]


def test_request_then_response_pairs() -> None:
    pairer = Pairer(timeout_seconds=10, max_pending=10)
    assert pairer.offer(_part("a", "request"), ("t", 0, 1), now=0).status == "waiting"
    offer = pairer.offer(_part("a", "response"), ("t", 0, 2), now=1)
    assert offer.status == "paired"
    assert offer.request is not None
    assert offer.request.position == ("t", 0, 1)
    assert offer.response is not None
    assert offer.response.position == ("t", 0, 2)
    assert len(pairer) == 0


def test_response_then_request_pairs() -> None:
    pairer = Pairer(timeout_seconds=10, max_pending=10)
    assert pairer.offer(_part("a", "response"), ("t", 1, 9), now=0).status == "waiting"
    offer = pairer.offer(_part("a", "request"), ("t", 0, 3), now=2)
    assert offer.status == "paired"
    assert offer.request is not None
    assert offer.request.part.role == "request"
    assert offer.response is not None
    assert offer.response.position == ("t", 1, 9)


def test_duplicates_while_waiting_and_after_pairing() -> None:
    pairer = Pairer(timeout_seconds=10, max_pending=10)
    pairer.offer(_part("a", "request"), ("t", 0, 1), now=0)
    assert pairer.offer(_part("a", "request"), ("t", 0, 2), now=0).status == "duplicate"
    assert pairer.offer(_part("a", "response"), ("t", 0, 3), now=0).status == "paired"
    assert pairer.offer(_part("a", "response"), ("t", 0, 4), now=0).status == "duplicate"
    assert pairer.offer(_part("a", "request"), ("t", 0, 5), now=0).status == "duplicate"
    assert len(pairer) == 0


def test_a_half_waits_at_most_the_timeout_and_its_late_partner_is_not_paired() -> None:
    pairer = Pairer(timeout_seconds=5, max_pending=10)
    pairer.offer(_part("a", "request"), ("t", 0, 1), now=0)
    pairer.offer(_part("b", "request"), ("t", 0, 2), now=3)
    assert pairer.expire(now=4.9) == []
    expired = pairer.expire(now=5.0)
    assert [h.part.key for h in expired] == ["a"]
    assert pairer.offer(_part("a", "response"), ("t", 0, 3), now=6).status == "duplicate"
    assert [h.part.key for h in pairer.expire(now=8.0)] == ["b"]
    assert len(pairer) == 0


def test_past_max_pending_the_oldest_is_given_up() -> None:
    pairer = Pairer(timeout_seconds=100, max_pending=2)
    for i, key in enumerate("abc"):
        pairer.offer(_part(key, "request"), ("t", 0, i), now=i)
    assert [h.part.key for h in pairer.expire(now=3)] == ["a"]
    assert len(pairer) == 2


def test_completed_keys_are_remembered_within_max_pending() -> None:
    pairer = Pairer(timeout_seconds=100, max_pending=2)
    for key in "abc":
        pairer.offer(_part(key, "request"), ("t", 0, 0), now=0)
        pairer.offer(_part(key, "response"), ("t", 0, 1), now=0)
    # "a" fell out of the bounded memory: a late duplicate of it waits (and expires) again.
    assert pairer.offer(_part("a", "request"), ("t", 0, 2), now=0).status == "waiting"
    assert pairer.offer(_part("c", "request"), ("t", 0, 3), now=0).status == "duplicate"


def test_drop_forgets_halves_of_revoked_partitions() -> None:
    pairer = Pairer(timeout_seconds=100, max_pending=10)
    pairer.offer(_part("a", "request"), ("t", 0, 1), now=0)
    pairer.offer(_part("b", "request"), ("t", 1, 1), now=0)
    dropped = pairer.drop(lambda position: position[1] == 1)
    assert [h.part.key for h in dropped] == ["b"]
    assert len(pairer) == 1


def test_feedback_does_not_pair() -> None:
    with pytest.raises(ValueError, match="only requests and responses"):
        Pairer(timeout_seconds=1, max_pending=1).offer(_part("a", "feedback"), ("t", 0, 0), now=0)


@pytest.mark.parametrize(("timeout", "pending"), [(0, 1), (1, 0)])
def test_pairer_rejects_bad_bounds(timeout: float, pending: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        Pairer(timeout_seconds=timeout, max_pending=pending)


def test_offset_book_commits_below_the_oldest_offset_in_use() -> None:
    book: OffsetBook[str] = OffsetBook()
    assert book.committable("p") is None
    for offset in range(5):
        book.hold("p", offset)
    book.hold("p", 1)  # offset 1 also waits for its partner
    for offset in range(5):
        book.release("p", offset)
    assert book.committable("p") == 1
    assert book.in_use() == 1
    book.release("p", 1)
    assert book.committable("p") == 5
    book.release("p", 3)  # releasing what is not held changes nothing
    assert book.committable("p") == 5


def test_offset_book_partitions_are_independent_and_forgettable() -> None:
    book: OffsetBook[str] = OffsetBook()
    book.hold("p0", 10)
    book.hold("p1", 4)
    book.release("p1", 4)
    assert (book.committable("p0"), book.committable("p1")) == (10, 5)
    book.forget("p0")
    assert book.partitions() == ["p1"]
    assert book.committable("p0") is None
