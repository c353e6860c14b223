"""Folds by source: every announcement voice, music package, speaker and noise source in one fold.

``plan_folds(manifest, k)`` deals the groups of each kind to ``k`` folds, deterministically
and balanced by count, after setting aside the **frozen** groups: a fold-sized slice of every
kind (``FROZEN_FRACTION`` of its groups, at least one) that no fold ever uses and that is
scored only on purpose (``python -m bench.detection.cv --frozen``).

Both choices depend only on the group names (a salted SHA-256 of each), never on the order of
the manifest or on a random draw. Whether a group is frozen does not depend on ``k`` either.
Within a kind, groups are dealt round robin in hash order (a different starting fold per
kind), so fold sizes differ by at most one group per kind.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bench.detection.sources import FOLD_KINDS, KINDS, Manifest

FROZEN_FRACTION = 1 / 6  # about one fold's worth at K=5
FROZEN_SALT = "holdslayer-frozen-v1"
FOLD_SALT = "holdslayer-fold-v1"
MAX_FOLDS = 5
FROZEN = "frozen"


class FoldError(ValueError):
    pass


@dataclass(frozen=True)
class Fold:
    name: str  # "fold-0" .. or "frozen"
    groups: dict[str, tuple[str, ...]]  # kind -> groups

    def of(self, kind: str) -> tuple[str, ...]:
        return self.groups.get(kind, ())

    def all_groups(self) -> set[str]:
        return {g for groups in self.groups.values() for g in groups}


@dataclass(frozen=True)
class FoldPlan:
    k: int
    folds: tuple[Fold, ...]
    frozen: Fold
    manifest: str
    fingerprint: str

    def fold(self, name: str) -> Fold:
        if name == FROZEN:
            return self.frozen
        return next(f for f in self.folds if f.name == name)

    def as_dict(self) -> dict:
        return {
            "k": self.k,
            "manifest": self.manifest,
            "fingerprint": self.fingerprint,
            "folds": {f.name: {k: list(v) for k, v in f.groups.items()} for f in self.folds},
            "frozen": {k: list(v) for k, v in self.frozen.groups.items()},
        }


def _hash(salt: str, name: str) -> str:
    return hashlib.sha256(f"{salt}\x00{name}".encode()).hexdigest()


def frozen_groups(groups: list[str]) -> list[str]:
    """The groups of one kind held out from every fold (lowest salted hashes)."""
    if not groups:
        return []
    count = max(1, round(len(groups) * FROZEN_FRACTION))
    return sorted(sorted(groups, key=lambda g: _hash(FROZEN_SALT, g))[:count])


def max_folds(manifest: Manifest) -> int:
    """The most folds (<= MAX_FOLDS) in which every fold gets a group of every needed kind."""
    spare = []
    for kind in FOLD_KINDS:
        groups = manifest.groups(kind)
        spare.append(len(groups) - len(frozen_groups(groups)))
    return max(0, min([MAX_FOLDS, *spare]))


def plan_folds(manifest: Manifest, k: int | None = None) -> FoldPlan:
    """Frozen groups aside, the other groups of each kind dealt to ``k`` folds (default: the most
    the manifest allows, up to 5)."""
    limit = max_folds(manifest)
    k = limit if k is None else k
    if k < 2 or k > limit:
        counts = {kind: len(manifest.groups(kind)) for kind in FOLD_KINDS}
        raise FoldError(f"{k} folds impossible: groups per kind {counts} (frozen set aside) allow 2..{limit}")
    per_fold: list[dict[str, tuple[str, ...]]] = [{} for _ in range(k)]
    frozen: dict[str, tuple[str, ...]] = {}
    for kind_index, kind in enumerate(KINDS):
        groups = manifest.groups(kind)
        if not groups:
            continue
        held = frozen_groups(groups) if kind in FOLD_KINDS or len(groups) > k else []
        frozen[kind] = tuple(held)
        rest = sorted((g for g in groups if g not in held), key=lambda g: _hash(FOLD_SALT, g))
        dealt: list[list[str]] = [[] for _ in range(k)]
        for i, group in enumerate(rest):
            dealt[(i + kind_index) % k].append(group)
        if len(rest) < k:  # only for noise: too few sources to split, every fold hears them all
            dealt = [list(rest) for _ in range(k)]
        for fold, groups_of_fold in zip(per_fold, dealt):
            fold[kind] = tuple(sorted(groups_of_fold))
    folds = tuple(Fold(f"fold-{i}", groups) for i, groups in enumerate(per_fold))
    return FoldPlan(k, folds, Fold(FROZEN, frozen), manifest.name, manifest.fingerprint())
