"""Reading a git repository without checking anything out.

Everything sluice needs to compare two revisions comes from git plumbing:
``ls-tree`` for a revision's blob ids, ``ls-files``/``status`` plus
``hash-object`` for the working tree (only changed files are hashed), and
``cat-file --batch`` for file contents at a revision. Paths are relative to the
sluice project root, which may be a subfolder of the git repository.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sluice.errors import UsageError

WORKTREE = "WORKTREE"  # the pseudo-revision for uncommitted state


def git(root: Path, *args: str, input: bytes | None = None, check: bool = True,
        env: dict[str, str] | None = None) -> bytes:
    try:
        result = subprocess.run(["git", *args], cwd=root, input=input, capture_output=True,
                                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", **(env or {})})
    except FileNotFoundError:
        raise UsageError("git is not installed", hint="install git; sluice reads revisions "
                                                      "through it") from None
    if check and result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise UsageError(f"git {' '.join(args[:2])} failed: {message}",
                         hint="check that this is a git repository and the revision exists")
    return result.stdout


@dataclass
class Repo:
    """A git repository seen from a sluice project root inside it."""

    root: Path
    prefix: str = ""  # the project root's path inside the repository, with a trailing /
    _blobs: dict[str, bytes | None] = field(default_factory=dict)
    _batch: subprocess.Popen[bytes] | None = None

    @classmethod
    def open(cls, root: Path) -> Repo:
        out = git(root, "rev-parse", "--is-inside-work-tree", "--show-prefix", check=False)
        lines = out.decode().splitlines()
        if not lines or lines[0] != "true":
            raise UsageError(f"{root} is not inside a git repository",
                             hint="comparing revisions needs git: run `git init` and commit")
        return cls(root=root, prefix=lines[1] if len(lines) > 1 else "")

    def is_shallow(self) -> bool:
        return git(self.root, "rev-parse", "--is-shallow-repository").strip() == b"true"

    def resolve(self, rev: str) -> str:
        """The commit id of ``rev``, or a UsageError that says how to get it."""
        out = git(self.root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}",
                  check=False).strip()
        if out:
            return out.decode()
        if self.is_shallow():
            raise UsageError(
                f"revision `{rev}` is not in this shallow clone",
                hint=f"fetch more history: `git fetch --deepen=100 origin` (or "
                     f"`git fetch --unshallow`), and `git fetch origin {rev}` for a branch")
        raise UsageError(f"unknown revision `{rev}`",
                         hint="use a branch, tag or commit id that `git log` shows "
                              "(for a remote branch: `origin/main`)")

    def merge_base(self, base: str, head: str) -> str:
        out = git(self.root, "merge-base", base, head, check=False).strip()
        if not out:
            hint = "they share no history"
            if self.is_shallow():
                hint = "the clone is shallow: run `git fetch --unshallow` (or `--deepen=N`)"
            raise UsageError(f"no common ancestor of `{base}` and `{head}`", hint=hint)
        return out.decode()

    def _strip(self, path: str) -> str | None:
        if not self.prefix:
            return path
        return path[len(self.prefix):] if path.startswith(self.prefix) else None

    def tree(self, commit: str) -> dict[str, str]:
        """path → blob id (commit id for submodules) of every file at ``commit``."""
        out = git(self.root, "ls-tree", "-r", "-z", "--full-tree", commit,
                  *([self.prefix] if self.prefix else []))
        files: dict[str, str] = {}
        for item in out.split(b"\0"):
            if not item:
                continue
            meta, _, raw_path = item.partition(b"\t")
            _, _, sha = meta.decode().split(" ")
            path = self._strip(os.fsdecode(raw_path))
            if path is not None:
                files[path] = sha
        return files

    def worktree(self) -> dict[str, str]:
        """path → blob id of the working tree: the index, corrected for uncommitted edits.

        Only files that ``git status`` reports as changed or untracked are hashed.
        """
        files: dict[str, str] = {}
        out = git(self.root, "ls-files", "-s", "-z", "--full-name", "--", ".")
        for item in out.split(b"\0"):
            if item:
                meta, _, raw_path = item.partition(b"\t")
                path = self._strip(os.fsdecode(raw_path))
                if path is not None:
                    files[path] = meta.decode().split(" ")[1]
        status = git(self.root, "status", "--porcelain=v1", "-z", "--untracked-files=all",
                     "--no-renames", "--", ".")
        changed: list[str] = []
        for item in status.split(b"\0"):
            if len(item) < 4:
                continue
            code, path = item[:2].decode(), self._strip(os.fsdecode(item[3:]))
            if path is None:
                continue
            if "D" in code:
                files.pop(path, None)
            else:
                changed.append(path)
        self._hash_worktree_files(changed, files)
        return files

    def _hash_worktree_files(self, paths: list[str], files: dict[str, str]) -> None:
        plain = []
        for path in paths:
            full = self.root / path
            if full.is_dir():  # a submodule: its checked-out commit
                head = git(full, "rev-parse", "HEAD", check=False).strip().decode()
                if head:
                    files[path] = head
            elif full.is_file():
                plain.append(path)
            else:
                files.pop(path, None)
        if plain:
            out = git(self.root, "hash-object", "--no-filters", "--stdin-paths",
                      input=b"\n".join(os.fsencode(self.root.resolve() / p)
                                        for p in plain) + b"\n")
            files.update(zip(plain, out.decode().split(), strict=True))

    def read(self, commit: str, path: str) -> bytes | None:
        """A file's content at ``commit`` (WORKTREE: on disk), or None if absent."""
        if commit == WORKTREE:
            try:
                return (self.root / path).read_bytes()
            except OSError:
                return None
        key = f"{commit}:{self.prefix}{path}"
        if key not in self._blobs:
            self._blobs[key] = self._cat_file(key)
        return self._blobs[key]

    def prefetch(self, commit: str, paths: list[str],
                 blob_ids: Mapping[str, str] | None = None) -> None:
        """Read many files at ``commit`` in one pipelined exchange with git.

        Asking for blobs one at a time costs a round trip each; a plan over a
        few thousand stages would spend most of its time waiting on them.
        ``blob_ids`` (path → blob id, as :meth:`tree` lists them): git is asked
        for the ids, not for ``commit:path``, which it resolves by scanning every
        folder on the path, so thousands of scripts in one folder cost n² entries.
        """
        ids = blob_ids or {}
        wanted = {f"{commit}:{self.prefix}{p}": ids.get(p) for p in dict.fromkeys(paths)}
        keys = [k for k in wanted if k not in self._blobs]
        if commit == WORKTREE or not keys:
            return
        asked = [wanted[k] or k for k in keys]
        process = subprocess.Popen(["git", "cat-file", "--batch"], cwd=self.root,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL)
        assert process.stdin is not None and process.stdout is not None
        stdin = process.stdin

        def feed() -> None:  # in a thread: git's output pipe must be drained meanwhile
            stdin.write("".join(a + "\n" for a in asked).encode())
            stdin.close()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        for key in keys:
            header = process.stdout.readline().split()
            if len(header) != 3:
                self._blobs[key] = None
                continue
            data = process.stdout.read(int(header[2]) + 1)[:-1]
            self._blobs[key] = data if header[1] == b"blob" else None
        writer.join()
        process.wait()

    def _cat_file(self, key: str) -> bytes | None:
        # One long-lived `git cat-file --batch` serves every read of a session.
        if self._batch is None:
            self._batch = subprocess.Popen(["git", "cat-file", "--batch"], cwd=self.root,
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=subprocess.DEVNULL)
        assert self._batch.stdin is not None and self._batch.stdout is not None
        self._batch.stdin.write(key.encode() + b"\n")
        self._batch.stdin.flush()
        header = self._batch.stdout.readline().split()
        if len(header) != 3:
            return None  # "<key> missing" or "ambiguous"
        size = int(header[2])
        data = self._batch.stdout.read(size + 1)[:-1]
        return data if header[1] == b"blob" else None

    def close(self) -> None:
        if self._batch is not None:
            if self._batch.stdin is not None:
                self._batch.stdin.close()
            self._batch.wait()
            self._batch = None
