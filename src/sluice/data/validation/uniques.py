"""Uniqueness over all chunks: one 64-bit hash per row in numpy, duplicates found at the end.

Per-chunk checks cannot see a value repeated in two chunks (or two partitions),
so each unique column, unique key and ``no_duplicate_rows`` keeps the hashes of
its rows (8 bytes a row) and sorts them once all data has been read. Example
rows are found in a second pass over the data, only when there are duplicates.
Two different values share a 64-bit hash with odds of about n²/2⁶⁵ (3·10⁻⁴ for
10⁸ rows), so a reported count may, that rarely, include a collision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]


def row_hashes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One uint64 per row of ``frame[columns]`` (equal values give equal hashes)."""
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]
    from pandas.api import types  # type: ignore[import-untyped, unused-ignore]

    if len(columns) == 1:
        series = frame[columns[0]]
        if types.is_integer_dtype(series.dtype):
            # An integer is its own perfect hash (nulls are masked by the caller).
            hashes: np.ndarray = series.to_numpy(dtype=np.int64, na_value=0).view(np.uint64)
            return hashes
        hashes = pd.util.hash_pandas_object(series, index=False).to_numpy()
        return hashes
    hashes = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
    return hashes


@dataclass
class DuplicateFinder:
    """Collects row hashes of ``columns`` chunk by chunk; then counts duplicated rows."""

    check: str  # "unique" or "no_duplicate_rows"
    column: str  # the column, or "<dataset>" for keys and whole rows
    columns: list[str]
    skip_nulls: bool  # a column's unique check ignores missing values (as SQL does)
    parts: list[np.ndarray] = field(default_factory=list)

    def add(self, frame: pd.DataFrame) -> None:
        hashes = row_hashes(frame, self.columns)
        if self.skip_nulls:
            present = frame[self.columns[0]].notna().to_numpy()
            if not present.all():
                hashes = hashes[present]
        self.parts.append(hashes)

    def duplicates(self) -> tuple[int, np.ndarray]:
        """(rows whose value occurs more than once, the distinct duplicated hashes)."""
        import numpy as np

        if not self.parts:
            return 0, np.empty(0, dtype=np.uint64)
        # Copy part by part, freeing each as it is copied: peak memory is the hashes
        # plus one chunk's, not twice the hashes. The sort below is in place.
        hashes = np.empty(sum(len(p) for p in self.parts), dtype=np.uint64)
        at = 0
        self.parts.reverse()
        while self.parts:
            part = self.parts.pop()
            hashes[at:at + len(part)] = part
            at += len(part)
            del part
        hashes.sort()
        same = hashes[1:] == hashes[:-1]
        if not same.any():
            return 0, np.empty(0, dtype=np.uint64)
        repeated = np.unique(hashes[1:][same])
        # Every member of a repeated group counts: pairs found + one first of each group.
        return int(same.sum()) + len(repeated), repeated

    def matching(self, frame: pd.DataFrame, repeated: np.ndarray) -> np.ndarray:
        """Mask of the rows of ``frame`` whose hash is one of ``repeated``."""
        import numpy as np

        mask = np.isin(row_hashes(frame, self.columns), repeated)
        if self.skip_nulls:
            mask &= frame[self.columns[0]].notna().to_numpy()
        return mask
