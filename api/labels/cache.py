"""Label downloads rendered once: an in-process cache of rendered label files, bounded
by bytes, keyed by everything the bytes depend on, with one render for identical
requests that arrive while it runs."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from api.labels.sheets import Label, LabelFormat

# Share of the bound kept for entries downloaded at least twice ("protected"); the rest
# holds first downloads on probation. A first download can only push out entries that
# were never downloaded again, so a stream of fresh batches (each downloaded once, as
# `POST /v1/labels` is followed by one GET) cannot flush the sheets people do re-download.
PROTECTED_SHARE = 0.8


class Outcome(StrEnum):
    """How a download was served: the `outcome` label of looptrack_label_downloads_total."""

    HIT = "hit"  # from the cache
    SHARED = "shared"  # waited for an identical render that was already running
    MISS = "miss"  # rendered (and kept, if it fits)


def download_key(
    batch_id: uuid.UUID, labels: Sequence[Label], fmt: LabelFormat, grid: tuple[int, int]
) -> bytes:
    """SHA-256 of everything a download's bytes depend on: the batch, the format, the
    sheet grid (PDF only), and each label's address, key, product name and deposit as
    read from the database for this request. A product renamed or a deposit changed
    gives another key, so the cache cannot serve stale labels; the caller checks access
    first, so it cannot serve them to another brand."""
    parts = [
        str(batch_id),
        fmt.value,
        list(grid) if fmt is LabelFormat.PDF else None,
        [(x.uri, x.item_class, x.serial, x.product, x.deposit, x.currency) for x in labels],
    ]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).digest()


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since the cache was made, and what it holds now (bytes of files)."""

    outcomes: dict[Outcome, int]
    evictions: int
    bytes: int
    entries: int
    max_bytes: int


@dataclass(slots=True)
class _Flight:
    """A render in progress that identical requests wait for."""

    done: threading.Event = field(default_factory=threading.Event)
    result: bytes | None = None
    error: BaseException | None = None


class LabelCache:
    """Rendered label files by download key, at most `max_bytes` of them (0: keep none).

    A segmented LRU: a new file goes on probation; a second download moves it to the
    protected segment (at most PROTECTED_SHARE of the bound, its least recently used
    going back on probation when full). Eviction takes probation's least recently used.
    A file larger than the probation share is not kept: it would evict everything else.
    Thread-safe: FastAPI runs the synchronous endpoints in a thread pool.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._protected_max = int(max_bytes * PROTECTED_SHARE)
        self.largest = max_bytes - self._protected_max  # bytes: bigger files are not kept
        self._probation: OrderedDict[bytes, bytes] = OrderedDict()
        self._protected: OrderedDict[bytes, bytes] = OrderedDict()
        self._probation_bytes = 0
        self._protected_bytes = 0
        self._flights: dict[bytes, _Flight] = {}
        self._outcomes = dict.fromkeys(Outcome, 0)
        self._evictions = 0
        self._lock = threading.Lock()

    def get_or_render(self, key: bytes, render: Callable[[], bytes]) -> tuple[bytes, Outcome]:
        """The file under `key`: from the cache, from an identical render already running
        (its result or its exception), or from `render()`, whose result is then kept."""
        with self._lock:
            found = self._lookup(key)
            if found is not None:
                self._outcomes[Outcome.HIT] += 1
                return found, Outcome.HIT
            flight = self._flights.get(key)
            leading = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
            self._outcomes[Outcome.MISS if leading else Outcome.SHARED] += 1
        if not leading:
            # The leader's render is bounded (a render slot within RENDER_WAIT_S, then the
            # render itself), and it always sets `done`.
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.result is not None
            return flight.result, Outcome.SHARED
        try:
            flight.result = render()
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
                if flight.result is not None:
                    self._keep(key, flight.result)
            flight.done.set()
        return flight.result, Outcome.MISS

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                outcomes=dict(self._outcomes),
                evictions=self._evictions,
                bytes=self._probation_bytes + self._protected_bytes,
                entries=len(self._probation) + len(self._protected),
                max_bytes=self.max_bytes,
            )

    def _lookup(self, key: bytes) -> bytes | None:
        found = self._protected.get(key)
        if found is not None:
            self._protected.move_to_end(key)
            return found
        found = self._probation.pop(key, None)
        if found is None:
            return None
        # Downloaded again: protected. Its overflow goes back on probation, as the most
        # recently used there; the total is unchanged, so nothing is evicted here.
        self._probation_bytes -= len(found)
        self._protected[key] = found
        self._protected_bytes += len(found)
        while self._protected_bytes > self._protected_max:
            old_key, old = self._protected.popitem(last=False)
            self._protected_bytes -= len(old)
            self._probation[old_key] = old
            self._probation_bytes += len(old)
        return found

    def _keep(self, key: bytes, data: bytes) -> None:
        if len(data) > self.largest or key in self._probation or key in self._protected:
            return
        self._probation[key] = data
        self._probation_bytes += len(data)
        # The protected segment is at most max_bytes - largest and the new file at most
        # largest, so evicting older probation entries always makes room.
        while self._probation_bytes + self._protected_bytes > self.max_bytes:
            _, old = self._probation.popitem(last=False)
            self._probation_bytes -= len(old)
            self._evictions += 1
