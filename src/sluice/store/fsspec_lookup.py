"""Where a store on fsspec keeps things, and which objects it holds: the keys and the
batched existence checks of :class:`sluice.store.fsspec.FsspecStore` (which adds the
transfers, the run cache and the clean-up of unfinished uploads).

Existence checks cost in proportion to what is asked, never trusting anything
but the keys themselves (a folder's manifest on the remote proves nothing about
its files): one HEAD per object where a prefix holds one of the digests asked
for, a LIST of each two-hex-digit prefix that holds more, and one listing of
everything when that takes fewer requests. Answers are cached for the session,
and nothing else is: no remote index and no local record of an earlier push.
Either would only say what was there when it was written; a person, a lifecycle
rule or a future ``sluice gc`` can delete objects since, and the pins would then
name objects the store lacks with nothing to notice it. So a push always costs
at least one listing of what it asks about (or a HEAD per lone object), and a gc
has no index to invalidate. Whoever adds such an index must make it carry a
generation that every deleter bumps first, and treat a missing or damaged one as
empty.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from sluice.store.fsspec_errors import store_errors
from sluice.store.layered import parallel, transfer_workers
from sluice.store.s3list import PREFIXES, s3_keys
from sluice.util.credentials import mask
from sluice.util.safepath import check_digest

LIST_PAGE = 1000  # keys per LIST response (S3, GCS and Azure alike)


class FsspecLookup:
    """The keys of a store on an fsspec filesystem ``fs`` under ``prefix`` (``bucket/path``),
    and which objects it holds."""

    def __init__(self, fs: Any, prefix: str, url: str, *, workers: int | None = None) -> None:
        self.fs = fs
        self.prefix = prefix.rstrip("/")
        self.url = mask(url)
        self.workers = workers or transfer_workers()
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        # Object stores publish a key atomically when its upload completes; a
        # filesystem does not, so there uploads go to tmp/ and are renamed.
        self.rename_publish = bool({"file", "local"} & set(protocols))
        self.is_s3 = bool({"s3", "s3a"} & set(protocols))
        self._lock = threading.Lock()
        self._listed: dict[str, set[str]] = {}  # two-hex prefix -> digests present
        self._known: dict[str, bool] = {}  # digest -> present, from single HEADs
        self._keys_per_prefix: int | None = None

    # ------------------------------------------------------------------ keys

    def object_key(self, digest: str) -> str:
        check_digest(digest)  # digests come from records: never let one name a key
        return f"{self.prefix}/objects/{digest[:2]}/{digest[2:]}"

    def run_key(self, fingerprint: str) -> str:
        return f"{self.prefix}/runs/{fingerprint[:2]}/{fingerprint[2:]}.json"

    # ------------------------------------------------------------------ existence

    def has(self, digest: str) -> bool:
        return not self.missing([digest])

    def missing(self, digests: Iterable[str]) -> list[str]:
        """Those of ``digests`` the store lacks, with as few requests as possible."""
        wanted = [check_digest(d) for d in dict.fromkeys(digests)]  # as LocalStore does
        groups: dict[str, list[str]] = defaultdict(list)
        for digest in wanted:
            if self._present(digest) is None:
                groups[digest[:2]].append(digest)
        if groups:
            self._look_up(groups)
        return [d for d in wanted if not self._present(d)]

    def _present(self, digest: str) -> bool | None:
        with self._lock:
            listed = self._listed.get(digest[:2])
            if listed is not None:
                return digest in listed
            return self._known.get(digest)

    def _look_up(self, groups: dict[str, list[str]]) -> None:
        prefixes = sorted(groups, key=lambda p: -len(groups[p]))
        if self._keys_per_prefix is None:
            # List the busiest prefix first: it answers for its digests and tells
            # how many keys a prefix holds, to choose between LIST and HEAD.
            self._list_prefix(prefixes.pop(0))
        if not prefixes:
            return
        per_prefix = self._keys_per_prefix or 0
        pages = max(1, math.ceil(per_prefix / LIST_PAGE))
        # A prefix's LIST answers for all its digests; a HEAD for one. List only where
        # that saves requests: a lone digest in a prefix is one HEAD, not one LIST.
        to_list = [p for p in prefixes if len(groups[p]) > pages]
        to_head = [d for p in prefixes if p not in to_list for d in groups[p]]
        whole_pages = max(1, math.ceil(per_prefix * PREFIXES / LIST_PAGE))
        if len(to_list) * pages > whole_pages:
            self._list_all()
            to_head = []
        else:
            parallel(self._list_prefix, to_list, workers=self.workers)
        parallel(self._head, to_head, workers=self.workers)

    def _names(self, entries: Iterable[Any]) -> Iterator[str]:
        for entry in entries:
            info = entry if isinstance(entry, dict) else {"name": entry, "type": "file"}
            if info.get("type", "file") == "file":
                yield str(info["name"]).rstrip("/")

    def _list(self, folder: str) -> list[str]:
        """Names of the files under ``folder`` (recursively), one request per page."""
        with store_errors(self, "listing objects"):
            try:
                if self.is_s3:
                    return list(s3_keys(self.fs.call_s3, folder, LIST_PAGE))
                # fsspec's generic calls: one LIST per page on GCS and Azure too.
                self.fs.invalidate_cache(folder)
                return list(self._names(self.fs.find(folder, detail=True).values()))
            except FileNotFoundError:
                return []

    def _list_prefix(self, two: str) -> None:
        names = self._list(f"{self.prefix}/objects/{two}")
        found = {two + name.rsplit("/", 1)[-1] for name in names}
        with self._lock:
            self._listed[two] = found
            if self._keys_per_prefix is None:
                self._keys_per_prefix = len(found)

    def _list_all(self) -> None:
        # One listing, page after page. Tried: ranges of about a page listed in
        # parallel (StartAfter) were 1.3x slower against moto (each request costs
        # the server a scan of the bucket); on real S3 they may win (see
        # benchmarks/README.md, issue 15).
        listed: dict[str, set[str]] = {f"{i:02x}": set() for i in range(PREFIXES)}
        for name in self._list(f"{self.prefix}/objects"):
            two, rest = name.rsplit("/", 2)[-2:]
            listed.setdefault(two, set()).add(two + rest)
        with self._lock:
            self._listed.update(listed)

    def _head(self, digest: str) -> None:
        with store_errors(self, "looking up an object"):
            try:
                key = self.object_key(digest)
                if self.is_s3:
                    # HEAD alone: s3fs's info() also LISTs a missing key's "folder".
                    bucket, _, name = key.partition("/")
                    self.fs.call_s3("head_object", Bucket=bucket, Key=name)
                else:
                    self.fs.info(key)
                found = True
            except FileNotFoundError:
                found = False
        with self._lock:
            self._known[digest] = found

    def _remember(self, digest: str) -> None:
        with self._lock:
            listed = self._listed.get(digest[:2])
            if listed is not None:
                listed.add(digest)
            else:
                self._known[digest] = True
