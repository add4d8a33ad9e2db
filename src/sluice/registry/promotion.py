"""Moving aliases: promotion against policy, approval requests, rejection and rollback.

Every move reads the alias's holder when the command starts and writes only if
that holder is unchanged (compare-and-swap on the alias's revision): of two
concurrent promotions exactly one wins, and the other learns who won. A move
is one transaction with its history event and audit entry: nothing half-written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sluice.db import Database
from sluice.errors import PromotionRefused, UsageError
from sluice.registry.versions import Version, _audit, get_version, history
from sluice.util.suggest import closest

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from sluice.config.schema import PolicySpec

_UNSET: Any = object()


@dataclass(frozen=True)
class Outcome:
    model: str
    alias: str
    version: int
    moved: bool
    from_version: int | None = None
    request_id: int | None = None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


def held(version: int | None) -> str:
    """A version an alias held, for messages: "(none)" for a new alias, not "None"."""
    return "(none)" if version is None else str(version)


def holder(db: Database, model: str, alias: str) -> tuple[int | None, str | None]:
    """(version, who moved it there) of an alias now."""
    from sqlalchemy import select

    from sluice.db.schema import aliases

    with db.engine.connect() as conn:
        row = conn.execute(select(aliases.c.version, aliases.c.updated_by).where(
            aliases.c.model == model, aliases.c.alias == alias)).first()
    return (int(row[0]), str(row[1])) if row else (None, None)


def policy_problems(db: Database, policy: PolicySpec | None, version: Version, alias: str,
                    actor: str, branch: str | None) -> list[str]:
    """Why ``policy`` forbids moving ``alias`` to ``version`` (empty: it allows it)."""
    if policy is None:
        return []
    problems = []
    if policy.gates == "pass" and version.verdict != "PASS":
        found = version.verdict or "no gate results"
        problems.append(f"version {version.version} did not pass its gates ({found}); "
                        f"`{alias}` requires every gate to PASS (INCONCLUSIVE is not a pass)")
    if policy.after is not None:
        held = any(e["alias"] == policy.after and e["to"] == version.version
                   for e in history(db, version.model, policy.after))
        if not held:
            problems.append(f"version {version.version} has not been `{policy.after}` yet; "
                            f"`{alias}` requires that first: `sluice promote {version.model} "
                            f"{version.version} --to {policy.after}`")
    if policy.branches is not None:
        source = version.lineage.get("branch") or branch
        if source not in policy.branches:
            problems.append(f"version {version.version} comes from branch `{source}`; "
                            f"`{alias}` accepts only {', '.join(policy.branches)}")
    if policy.actors is not None and actor not in policy.actors:
        problems.append(f"`{actor}` may not move `{alias}`; allowed: "
                        + ", ".join(policy.actors))
    return problems


def _move(conn: Connection, model: str, alias: str, version: int, expected: int | None,
          actor: str, kind: str, reason: str | None, request_id: int | None,
          evidence: Any) -> None:
    """Compare-and-swap the alias from ``expected`` to ``version``, with its history event."""
    from sqlalchemy import select

    from sluice.db.schema import alias_events, aliases

    row = conn.execute(select(aliases).where(aliases.c.model == model,
                                             aliases.c.alias == alias)).first()
    current = int(row.version) if row else None
    if current != expected:
        raise _Lost(current, row.updated_by if row else None)
    now = time.time()
    if row is None:
        conn.execute(aliases.insert().values(model=model, alias=alias, version=version,
                                             revision=1, updated_at=now, updated_by=actor))
    else:
        done = conn.execute(aliases.update().where(
            aliases.c.model == model, aliases.c.alias == alias,
            aliases.c.revision == row.revision).values(
            version=version, revision=row.revision + 1, updated_at=now, updated_by=actor))
        if done.rowcount != 1:
            raise _Lost(None, None)
    conn.execute(alias_events.insert().values(
        model=model, alias=alias, from_version=current, to_version=version, kind=kind,
        actor=actor, reason=reason, request_id=request_id,
        evidence=json.dumps(evidence, default=str) if evidence is not None else None, at=now))
    _audit(conn, actor, kind, model, {"alias": alias, "from": current, "to": version,
                                      "reason": reason, "request": request_id})


class _Lost(Exception):
    def __init__(self, current: int | None, by: str | None) -> None:
        self.current, self.by = current, by


def _conflict(db: Database, model: str, alias: str, expected: int | None) -> PromotionRefused:
    now, by = holder(db, model, alias)
    return PromotionRefused(
        f"conflict: `{alias}` of `{model}` was moved to version {now} by {by} while this "
        f"promotion was being checked (it expected version {expected})",
        hint=f"check `sluice models history {model} --alias {alias}`, then retry "
             "if the move is still wanted")


def move_alias(db: Database, model: str, alias: str, version: int, expected: int | None,
               actor: str, kind: str, reason: str | None, request_id: int | None = None,
               evidence: Any = None, also: Callable[[Connection], None] | None = None) -> None:
    """Move the alias if it still holds ``expected``; ``also`` runs in the same transaction."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(8):
        try:
            with db.engine.begin() as conn:
                _move(conn, model, alias, version, expected, actor, kind, reason, request_id,
                      evidence)
                if also is not None:
                    also(conn)
            db.registry_changed(model)
            return
        except (_Lost, IntegrityError):
            raise _conflict(db, model, alias, expected) from None
        except OperationalError as exc:
            if "lock" not in str(exc).lower():
                raise
            # SQLite says "locked" both for a lost race and for a busy database: only
            # a changed holder is a conflict; otherwise try again.
            if holder(db, model, alias)[0] != expected:
                raise _conflict(db, model, alias, expected) from None
            time.sleep(0.05 * (attempt + 1))
    raise _conflict(db, model, alias, expected)


CONVENTIONAL_ALIASES = ("staging", "production")


def known_aliases(db: Database, policies: dict[str, PolicySpec]) -> set[str]:
    """Aliases that exist for any model, have a policy, or are the conventional two."""
    from sqlalchemy import select

    from sluice.db.schema import aliases

    with db.engine.connect() as conn:
        held = {row.alias for row in conn.execute(select(aliases.c.alias).distinct())}
    return held | set(policies) | set(CONVENTIONAL_ALIASES)


def _near_alias(alias: str, known: set[str]) -> str | None:
    """A known alias ``alias`` is probably a slip for: a close spelling or an abbreviation."""
    prefixed = sorted(k for k in known if k.startswith(alias))
    return prefixed[0] if prefixed else closest(alias, known)


def check_new_alias(db: Database, policies: dict[str, PolicySpec], alias: str) -> None:
    """Refuse to create ``alias`` when it looks like a slip for one that exists.

    `promote m 2 --to prod` while `production` exists would otherwise quietly start
    a second alias that nothing deploys from; creating it on purpose takes
    ``--new-alias``.
    """
    known = known_aliases(db, policies)
    if alias in known:
        return
    near = _near_alias(alias, known)
    if near is not None:
        raise UsageError(f"no model has an alias `{alias}` yet; did you mean `{near}`?",
                         hint=f"use `--to {near}`, or pass --new-alias to create `{alias}`")


def promote(db: Database, policies: dict[str, PolicySpec], model: str, version: int | None,
            alias: str, actor: str, reason: str | None, branch: str | None,
            expected: Any = _UNSET, *, new_alias: bool = True) -> Outcome:
    """Move ``alias`` to a version now, or open an approval request if the policy wants one.

    ``new_alias=False`` (what a person typing the alias gets) refuses an alias that
    looks like a slip for an existing one (:func:`check_new_alias`).
    """
    from sluice.db.schema import promotion_requests

    if not new_alias:
        check_new_alias(db, policies, alias)
    start_holder = holder(db, model, alias)[0]
    if expected is not _UNSET and expected != start_holder:
        raise _conflict(db, model, alias, expected)
    chosen = get_version(db, model, version)
    policy = policies.get(alias)
    problems = policy_problems(db, policy, chosen, alias, actor, branch)
    if problems:
        raise PromotionRefused(f"promotion of `{model}` version {chosen.version} to `{alias}` "
                               "refused:\n  " + "\n  ".join(problems),
                               hint="fix what is listed, or change the `promotion:` policy "
                                    "in sluice.yaml")
    if start_holder == chosen.version:
        return Outcome(model, alias, chosen.version, False, start_holder,
                       message=f"`{alias}` already points at version {chosen.version}")
    if policy is not None and policy.approvals > 0:
        with db.engine.begin() as conn:
            result = conn.execute(promotion_requests.insert().values(
                model=model, version=chosen.version, alias=alias, requester=actor,
                reason=reason, status="pending", approvals="[]", created_at=time.time()))
            key = result.inserted_primary_key
            assert key is not None
            request_id = int(key[0])
            _audit(conn, actor, "request", model, {"alias": alias, "version": chosen.version,
                                                   "request": request_id})
        return Outcome(model, alias, chosen.version, False, start_holder, request_id,
                       f"request {request_id} needs {policy.approvals} approval(s): "
                       f"`sluice approve {request_id}`")
    move_alias(db, model, alias, chosen.version, start_holder, actor, "promote", reason,
               evidence={"verdict": chosen.verdict, "gates": chosen.gates})
    return Outcome(model, alias, chosen.version, True, start_holder,
                   message=f"`{alias}` of `{model}`: {held(start_holder)} → {chosen.version}")


def pending_requests(db: Database, model: str | None = None) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from sluice.db.schema import promotion_requests as r

    query = select(r).where(r.c.status == "pending").order_by(r.c.id)
    if model is not None:
        query = query.where(r.c.model == model)
    with db.engine.connect() as conn:
        return [{"id": row.id, "model": row.model, "version": row.version,
                 "alias": row.alias, "requester": row.requester, "reason": row.reason,
                 "approvals": json.loads(row.approvals), "created_at": row.created_at}
                for row in conn.execute(query)]


def _request(db: Database, request_id: int) -> Any:
    from sqlalchemy import select

    from sluice.db.schema import promotion_requests as r

    with db.engine.connect() as conn:
        row = conn.execute(select(r).where(r.c.id == request_id)).first()
    if row is None:
        raise UsageError(f"no promotion request {request_id}",
                         hint="`sluice models requests` lists the pending ones")
    if row.status != "pending":
        raise PromotionRefused(f"request {request_id} is already {row.status} "
                               f"(by {row.settled_by})", hint="open a new one with "
                                                              "`sluice promote`")
    return row


def approve(db: Database, policies: dict[str, PolicySpec], request_id: int, actor: str,
            branch: str | None) -> Outcome:
    from sluice.db.schema import promotion_requests as r

    row = _request(db, request_id)
    policy = policies.get(row.alias)
    needed = policy.approvals if policy is not None else 0
    if policy is not None and policy.distinct_approver and actor == row.requester:
        raise PromotionRefused(f"`{actor}` asked for request {request_id} and may not approve "
                               "it too", hint="another person must approve it")
    if policy is not None and policy.actors is not None and actor not in policy.actors:
        raise PromotionRefused(f"`{actor}` may not approve moves of `{row.alias}`",
                               hint="allowed: " + ", ".join(policy.actors))
    approvals = json.loads(row.approvals)
    if actor not in approvals:
        approvals.append(actor)
    version = get_version(db, row.model, row.version)
    if len(approvals) < needed:
        with db.engine.begin() as conn:
            conn.execute(r.update().where(r.c.id == request_id, r.c.status == "pending")
                         .values(approvals=json.dumps(approvals)))
            _audit(conn, actor, "approve", row.model, {"request": request_id})
        return Outcome(row.model, row.alias, row.version, False, request_id=request_id,
                       message=f"approved by {len(approvals)} of {needed}")
    problems = policy_problems(db, policy, version, row.alias, row.requester, branch)
    if problems:
        raise PromotionRefused("the request can no longer be carried out:\n  "
                               + "\n  ".join(problems), hint="reject it, or fix the cause")
    current = holder(db, row.model, row.alias)[0]

    def settle(conn: Connection) -> None:
        done = conn.execute(r.update().where(r.c.id == request_id, r.c.status == "pending")
                            .values(status="approved", approvals=json.dumps(approvals),
                                    settled_at=time.time(), settled_by=actor))
        if done.rowcount != 1:
            raise PromotionRefused(f"request {request_id} was settled meanwhile",
                                   hint="`sluice models requests` shows it")

    move_alias(db, row.model, row.alias, row.version, current, actor, "approve", row.reason,
               request_id, {"approvals": approvals, "requester": row.requester,
                            "verdict": version.verdict}, also=settle)
    return Outcome(row.model, row.alias, row.version, True, current, request_id,
                   f"`{row.alias}` of `{row.model}`: {held(current)} → {row.version} "
                   f"(approved by {', '.join(approvals)})")


def reject(db: Database, request_id: int, actor: str, reason: str | None) -> Outcome:
    from sluice.db.schema import promotion_requests as r

    row = _request(db, request_id)
    with db.engine.begin() as conn:
        conn.execute(r.update().where(r.c.id == request_id, r.c.status == "pending").values(
            status="rejected", settled_at=time.time(), settled_by=actor))
        _audit(conn, actor, "reject", row.model, {"request": request_id, "reason": reason})
    return Outcome(row.model, row.alias, row.version, False, request_id=request_id,
                   message=f"request {request_id} rejected")


def rollback(db: Database, policies: dict[str, PolicySpec], model: str, alias: str,
             actor: str, reason: str | None) -> Outcome:
    """Move ``alias`` back to the version that held it before the current one.

    The previous holder is the one before the current version's promotion, so a
    second rollback goes further back instead of undoing the first.
    """
    policy = policies.get(alias)
    if policy is not None and policy.actors is not None and actor not in policy.actors:
        raise PromotionRefused(f"`{actor}` may not move `{alias}`",
                               hint="allowed: " + ", ".join(policy.actors))
    get_version(db, model)  # an unknown model is a usage error, not "nothing to roll back"
    current, _ = holder(db, model, alias)
    events = [e for e in history(db, model, alias)
              if e["to"] == current and e["kind"] != "rollback"]
    previous = events[-1]["from"] if events else None
    if current is None or previous is None:
        raise PromotionRefused(f"`{alias}` of `{model}` has no previous version to go back to",
                               hint=f"`sluice models history {model} --alias {alias}`")
    move_alias(db, model, alias, previous, current, actor, "rollback", reason)
    return Outcome(model, alias, previous, True, current,
                   message=f"`{alias}` of `{model}` rolled back: {current} → {previous}")
