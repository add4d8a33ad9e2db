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

The keys, and the batched existence checks that trust nothing but the keys
themselves (no remote index: see there why), are :mod:`sluice.store.fsspec_lookup`,
which this store builds on; the wording of its errors is :mod:`sluice.store.fsspec_errors`.
Credentials come only from the environment (see :mod:`sluice.util.credentials`).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import xxhash

from sluice.errors import CorruptObject, StoreError
from sluice.store.fsspec_errors import CREDENTIALS_HINT, store_errors
from sluice.store.fsspec_lookup import FsspecLookup
from sluice.store.layered import transfer_workers
from sluice.util.credentials import mask, reject_embedded_secrets
from sluice.util.fs import write_all, write_verified
from sluice.util.hashing import hash_bytes, hash_file_uncached
from sluice.util.version import install_hint

CHUNK = 16 * 1024 * 1024  # one PUT up to this size; multipart parts of this size above it
EMPTY = hash_bytes(b"")
# scheme -> (package that provides it, the sluice extra that installs it)
BACKENDS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"),
            "gcs": ("gcsfs", "gcs"), "az": ("adlfs", "azure"), "abfs": ("adlfs", "azure"),
            "abfss": ("adlfs", "azure"), "memory": ("fsspec", None)}


class FsspecStore(FsspecLookup):
    """A store on an fsspec filesystem ``fs`` under ``prefix`` (``bucket/path``); its keys
    and existence checks are :class:`FsspecLookup`'s."""

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
            with store_errors(self, "uploading an object"):
                self._publish_bytes(self.object_key(digest), data)
            self._remember(digest)

    def _temp_key(self) -> str:
        return f"{self.prefix}/tmp/{uuid.uuid4().hex}.part"

    def _publish_bytes(self, key: str, data: bytes) -> None:
        with store_errors(self, "uploading"):
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
        with store_errors(self, "uploading"):
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
        with store_errors(self, "downloading"):
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
            with store_errors(self, "downloading"):
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
        with store_errors(self, "reading the run cache"):
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
        with store_errors(self, "cleaning unfinished uploads"):
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
