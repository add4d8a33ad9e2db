"""The content store and run cache on any fsspec filesystem: S3, GCS, Azure, memory.

Layout (the same as :class:`sluice.store.local.LocalStore`, so one shared folder can be
opened either way)::

    <prefix>/objects/ab/cdef…        immutable objects, named by their xxh3-128
    <prefix>/runs/ab/cdef….json      run records (fingerprint → outputs and costs)
    <prefix>/tmp/…                   in-flight uploads, only on rename-capable filesystems

An object appears under its final, content-addressed key only once it is
complete: on object stores a single PUT (small objects) or a multipart upload
(large ones) becomes visible atomically when it completes, so a writer killed
mid-way leaves no object at all (S3 keeps the unfinished parts invisibly until
:meth:`FsspecStore.clean_tmp` aborts them or a lifecycle rule expires them); on
a local filesystem an upload goes to ``tmp/`` and is renamed into place. The
hash of every upload is computed from the bytes sent and every download is
hashed while it streams into a temp file that is renamed into place only when
it matches, so a corrupt remote object is reported and never installed. Two
writers of one object write the same bytes under the same key: either wins.

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
Credentials come only from the environment (see :mod:`sluice.util.credentials`).

Longer than most modules (about 450 lines) on purpose: it is one backend's whole
protocol — objects, run records, batched existence checks, verified parallel
transfers and atomic multipart uploads — and splitting it would scatter one
filesystem's rules over several files.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import xxhash

from sluice.errors import CorruptObject, StoreError
from sluice.store.layered import parallel, transfer_workers
from sluice.store.s3list import PREFIXES, s3_keys
from sluice.util.credentials import mask, reject_embedded_secrets
from sluice.util.fs import write_all, write_verified
from sluice.util.hashing import hash_bytes, hash_file_uncached
from sluice.util.safepath import check_digest
from sluice.util.version import install_hint

CHUNK = 16 * 1024 * 1024  # one PUT up to this size; multipart parts of this size above it
LIST_PAGE = 1000  # keys per LIST response (S3, GCS and Azure alike)
EMPTY = hash_bytes(b"")
# scheme -> (package that provides it, the sluice extra that installs it)
BACKENDS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"),
            "gcs": ("gcsfs", "gcs"), "az": ("adlfs", "azure"), "abfs": ("adlfs", "azure"),
            "abfss": ("adlfs", "azure"), "memory": ("fsspec", None)}
CREDENTIALS_HINT = ("check the URL and the credentials in the environment (AWS_ACCESS_KEY_ID/"
                    "AWS_SECRET_ACCESS_KEY or AWS_PROFILE, and AWS_ENDPOINT_URL for an "
                    "S3-compatible server; GOOGLE_APPLICATION_CREDENTIALS; AZURE_STORAGE_*)")

@contextlib.contextmanager
def _errors(store: FsspecStore, what: str) -> Iterator[None]:
    """Turn a filesystem library's exception into a StoreError that names no secret."""
    try:
        yield
    except StoreError:
        raise
    except FileNotFoundError as exc:
        raise StoreError(f"not found in the store {store.url} while {what}: {mask(str(exc))}",
                         hint="check that the bucket (or container) exists and the URL is "
                              "right; sluice creates nothing but objects under it") from None
    except PermissionError as exc:
        raise StoreError(f"access denied to {store.url} while {what}: {mask(str(exc))}",
                         hint=CREDENTIALS_HINT) from None
    except Exception as exc:
        reason = mask(str(exc).strip().splitlines()[0] if str(exc).strip() else
                      type(exc).__name__)
        raise StoreError(f"cannot use the store {store.url} while {what}: {reason}",
                         hint=CREDENTIALS_HINT) from None


class FsspecStore:
    """A store on an fsspec filesystem ``fs`` under ``prefix`` (``bucket/path``)."""

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
        with _errors(self, "listing objects"):
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
        with _errors(self, "looking up an object"):
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

    # ------------------------------------------------------------------ writing

    def add_file(self, src: Path, digest: str | None = None) -> str:
        """Upload ``src`` unless present; returns the digest of the bytes uploaded."""
        if digest is not None and self.has(digest):
            return digest
        try:
            size = os.stat(src).st_size
            if size <= CHUNK:
                data = src.read_bytes()
                actual = hash_bytes(data)
                if actual != digest and self.has(actual):
                    return actual
                self._publish_bytes(self.object_key(actual), data)
            else:
                actual = self._upload_large(src, digest or hash_file_uncached(src))
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and not src.exists():
                raise StoreError(f"cannot upload {src}: it does not exist",
                                 hint="check the path") from None
            raise StoreError(f"cannot upload {src} to {self.url}: {mask(str(exc))}",
                             hint=CREDENTIALS_HINT) from None
        self._remember(actual)
        return actual

    def add_bytes(self, data: bytes, digest: str) -> None:
        if hash_bytes(data) != digest.removesuffix(".dir"):
            raise StoreError(f"refusing to store bytes under {digest}: they hash differently",
                             hint="this is a bug in sluice; please report it")
        if not self.has(digest):
            with _errors(self, "uploading an object"):
                self._publish_bytes(self.object_key(digest), data)
            self._remember(digest)

    def _temp_key(self) -> str:
        return f"{self.prefix}/tmp/{uuid.uuid4().hex}.part"

    def _publish_bytes(self, key: str, data: bytes) -> None:
        with _errors(self, "uploading"):
            if not self.rename_publish:
                self.fs.pipe_file(key, data)  # one PUT: visible only once complete
                return
            temp = self._temp_key()
            self.fs.makedirs(temp.rsplit("/", 1)[0], exist_ok=True)
            self.fs.pipe_file(temp, data)
            self._rename(temp, key)

    def _rename(self, temp: str, key: str) -> None:
        try:
            self.fs.makedirs(key.rsplit("/", 1)[0], exist_ok=True)
            self.fs.mv(temp, key)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm_file(temp)
            raise

    def _upload_large(self, src: Path, digest: str) -> str:
        """Stream ``src`` under ``digest``'s key, publishing only if the bytes match it."""
        key = self.object_key(digest)
        target = self._temp_key() if self.rename_publish else key
        hasher = xxhash.xxh3_128()
        with _errors(self, "uploading"):
            if self.rename_publish:
                self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            handle = self.fs.open(target, "wb", block_size=CHUNK)
            try:
                with open(src, "rb") as source:
                    while block := source.read(CHUNK):
                        hasher.update(block)
                        handle.write(block)
                matches = hasher.hexdigest() == digest
            except BaseException:
                self._abandon(handle, target)
                raise
            if not matches:
                # The file changed since it was hashed: hash again and upload that.
                self._abandon(handle, target)
                return self._upload_large(src, hash_file_uncached(src))
            handle.close()  # completes the multipart upload: the key appears now
            if self.rename_publish:
                self._rename(target, key)
        return digest

    def _abandon(self, handle: Any, target: str) -> None:
        """Drop an unfinished upload without publishing anything."""
        with contextlib.suppress(Exception):
            if self.rename_publish:
                handle.close()
                self.fs.rm_file(target)
            elif hasattr(handle, "discard"):
                handle.discard()  # s3fs: aborts the multipart upload
                handle.closed = True  # so that garbage collection does not close (commit) it

    # ------------------------------------------------------------------ reading

    def _chunks(self, key: str) -> Iterator[bytes]:
        """The object's bytes in ranges of CHUNK: one GET for a small object."""
        try:
            first = self.fs.cat_file(key, start=0, end=CHUNK)
        except FileNotFoundError:
            raise
        except OSError:
            # S3 refuses any range of an empty object ("not satisfiable"): read it whole,
            # and that is all of it.
            yield self.fs.cat_file(key)
            return
        yield first
        if len(first) < CHUNK:
            return
        size = int(self.fs.size(key))
        for start in range(CHUNK, size, CHUNK):
            yield self.fs.cat_file(key, start=start, end=min(start + CHUNK, size))

    def _missing_error(self, digest: str) -> StoreError:
        return StoreError(f"object {digest} is missing from the store {self.url}",
                          hint="push it from a checkout that has it (`sluice data push`), or "
                               "rerun the stage that makes it with --force")

    def _corrupt_hint(self, digest: str) -> str:
        return (f"delete {self.object_key(digest)} there and push it again from a checkout "
                "that has the data (or rerun its stage)")

    def _corrupt_error(self, digest: str, actual: str) -> StoreError:
        return CorruptObject(f"object {digest} in {self.url} is corrupt (its content hashes to "
                             f"{actual}); it was not used", hint=self._corrupt_hint(digest))

    def read_bytes(self, digest: str) -> bytes:
        if digest.removesuffix(".dir") == EMPTY:
            return b""  # content addressing: nothing to fetch
        with _errors(self, "downloading"):
            try:
                data = b"".join(self._chunks(self.object_key(digest)))
            except FileNotFoundError:
                raise self._missing_error(digest) from None
        actual = hash_bytes(data)
        if actual != digest.removesuffix(".dir"):
            raise self._corrupt_error(digest, actual)
        return data

    def checkout_file(self, digest: str, dest: Path) -> None:
        """Download into a temp file beside ``dest``, hashing; rename it in only if it matches."""
        key = self.object_key(digest)

        def fill(fd: int) -> str:
            hasher = xxhash.xxh3_128()
            with _errors(self, "downloading"):
                # The empty object needs no download: its name says all of it.
                blocks = iter(()) if digest == EMPTY else self._chunks(key)
                try:
                    for block in blocks:
                        hasher.update(block)
                        write_all(fd, block)
                except FileNotFoundError:
                    raise self._missing_error(digest) from None
            return str(hasher.hexdigest())

        try:
            write_verified(dest, digest, fill, source=self.url,
                           hint=self._corrupt_hint(digest))
        except OSError as exc:  # the local side: a full disk, a folder we may not write
            raise StoreError(f"cannot restore {dest}: {exc.strerror}",
                             hint="check free space and permissions") from None

    # ------------------------------------------------------------------ run cache

    def get_run(self, fingerprint: str) -> dict[str, Any] | None:
        with _errors(self, "reading the run cache"):
            try:
                data = self.fs.cat_file(self.run_key(fingerprint))
            except FileNotFoundError:
                return None
        try:
            record = json.loads(data)
        except ValueError:
            return None  # damaged: the stage simply counts as not cached
        return record if isinstance(record, dict) else None

    def put_run(self, fingerprint: str, record: dict[str, Any]) -> None:
        """Write a run record; the caller has made sure its objects are here first."""
        data = json.dumps(record, indent=1, sort_keys=True).encode() + b"\n"
        self._publish_bytes(self.run_key(fingerprint), data)

    # ------------------------------------------------------------------ leftovers

    def clean_tmp(self, max_age_s: float = 24 * 3600) -> int:
        """Remove uploads left unfinished by killed writers; returns how many went."""
        import time

        cutoff = time.time() - max_age_s
        removed = 0
        with _errors(self, "cleaning unfinished uploads"):
            if self.rename_publish:
                try:
                    entries = self.fs.ls(f"{self.prefix}/tmp", detail=True)
                except FileNotFoundError:
                    entries = []
                for entry in entries:
                    if float(entry.get("mtime") or entry.get("created") or 0) < cutoff:
                        with contextlib.suppress(FileNotFoundError):
                            self.fs.rm_file(entry["name"])
                            removed += 1
            elif self.is_s3:
                removed = self._abort_multipart(cutoff)
        return removed

    def _abort_multipart(self, cutoff: float) -> int:
        bucket, _, key_prefix = self.prefix.partition("/")
        listing = self.fs.call_s3("list_multipart_uploads", Bucket=bucket,
                                  Prefix=f"{key_prefix}/objects/" if key_prefix else "objects/")
        removed = 0
        for upload in listing.get("Uploads", []):
            if upload["Initiated"].timestamp() < cutoff:
                self.fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=upload["Key"],
                                UploadId=upload["UploadId"])
                removed += 1
        return removed


def open_fsspec_store(url: str, root: Path) -> FsspecStore:
    """The store at ``scheme://bucket/prefix``; credentials come from the environment."""
    del root  # URLs are absolute
    reject_embedded_secrets(url)
    scheme, _, rest = url.partition("://")
    package, extra = BACKENDS.get(scheme, (scheme, None))
    install = install_hint(extra) if extra else f"pip install {package}"
    if not rest.strip("/"):
        raise StoreError(f"the store URL {mask(url)} names no bucket",
                         hint=f"write it like {scheme}://bucket/prefix")
    try:
        import fsspec  # type: ignore[import-untyped, unused-ignore]

        options: dict[str, Any] = {}
        if scheme in ("s3", "s3a"):
            # Enough connections for every transfer thread (botocore's default is 10).
            options["config_kwargs"] = {"max_pool_connections": 2 * transfer_workers()}
        fs = fsspec.filesystem(scheme, **options)
    except ImportError:
        raise StoreError(f"`{scheme}://` needs {package}: {install}",
                         hint=f"install it where sluice runs: {install}") from None
    except ValueError as exc:
        raise StoreError(f"no store backend for `{scheme}://` URLs: {mask(str(exc))}",
                         hint="use s3://, gs://, az:// or a folder") from None
    prefix = str(fs._strip_protocol(url)).rstrip("/")
    return FsspecStore(fs, prefix, url)
