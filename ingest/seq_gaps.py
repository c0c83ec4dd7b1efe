"""Per-device sequence-gap bookkeeping: which `seq` numbers have never arrived."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

Gap = tuple[int, int]  # inclusive range of missing seq numbers
_SEQ_MAX = 2**63 - 1  # seq is a PostgreSQL bigint


def advance(
    max_seq: int | None, gaps: Iterable[Gap], seqs: Iterable[int]
) -> tuple[int | None, list[Gap]]:
    """Fold newly stored seqs into (highest seq, open gaps); returns the new pair.

    A seq above the highest opens a gap for the numbers skipped; a late seq inside an open
    gap closes that part of it; anything else (a repeat, or a counter reset below the
    highest) changes nothing.
    """
    open_gaps = sorted(gaps)
    for seq in sorted(set(seqs)):
        if max_seq is None:
            max_seq = seq
        elif seq > max_seq:
            if seq > max_seq + 1:
                open_gaps.append((max_seq + 1, seq - 1))
            max_seq = seq
        else:
            # The only gap that can hold seq is the last one starting at or before it.
            index = bisect_right(open_gaps, (seq, _SEQ_MAX)) - 1
            if index < 0 or open_gaps[index][1] < seq:
                continue
            start, end = open_gaps.pop(index)
            pieces = [(start, seq - 1)] if start <= seq - 1 else []
            if seq + 1 <= end:
                pieces.append((seq + 1, end))
            open_gaps[index:index] = pieces
    return max_seq, open_gaps
