"""Checking the lake against its manifest, and recovering it when they disagree.

`check_lake` only reads: is the manifest readable, is every part it lists on disk with the
row count and checksum it recorded, which final-named parts does no manifest list, which
temporary leftovers wait for the next commit's sweep.

`recover_lake` never deletes anything; whatever it takes out of the lake is moved under
`<root>/_recovered/<UTC timestamp>/` at the same relative path, so it can be put back by hand.
With a readable manifest it only sets aside the parts no manifest lists. With a missing or
unreadable manifest it rebuilds one from the parts' own metadata (see `data.lake.PartInfo`):
each part names its table, its load and that load's source record, and the earlier parts it
replaces, so the rebuilt manifest lists the same parts and sources the lost one did, and
re-ingesting the same source files adds nothing.

The CLI (`solvency lake check`, `solvency lake recover`) prints the reports' `lines()`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from data.lake import (
    MANIFEST,
    Lake,
    LakeStateError,
    Manifest,
    PartInfo,
    atomic_write_text,
    file_sha256,
    fsync_dir,
    leftover_files,
    part_files,
    part_record,
)
from data.permissions import dir_mode, make_dirs

#: Folder (under the lake root) where recovery moves what it takes out of the lake.
RECOVERED = "_recovered"


# ------------------------------------------------------------------------------------ check


@dataclass(frozen=True)
class PartProblem:
    """A listed part whose file does not match what the manifest recorded."""

    path: str
    problem: str


@dataclass
class LakeCheck:
    """What `check_lake` found; `ok` is False when something needs `solvency lake recover`
    or a restore (temporary leftovers alone are harmless: the next commit sweeps them)."""

    root: Path
    #: What is wrong with the manifest (None: readable, or no manifest in an empty lake).
    manifest_problem: str | None = None
    version: int | None = None
    listed: int = 0
    #: Listed parts whose rows and checksum match what the manifest recorded.
    verified: int = 0
    #: Listed parts without a recorded row count and checksum (manifest from older code).
    not_recorded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    damaged: list[PartProblem] = field(default_factory=list)
    #: Final-named parts no manifest lists (all parts, when the manifest is unreadable).
    unlisted: list[str] = field(default_factory=list)
    #: Files under the lake's temporary names, swept by the next commit.
    leftovers: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.manifest_problem is None and not (self.missing or self.damaged or self.unlisted)

    def lines(self) -> list[str]:
        """The report as plain text lines, problems first named file by file."""
        status = "OK" if self.ok else "PROBLEMS FOUND"
        if self.manifest_problem is not None:
            out = [
                f"lake {self.root}: {status}",
                f"  manifest {self.root / MANIFEST} {self.manifest_problem}",
                f"  {len(self.unlisted)} part file(s) on disk, not accounted for by any manifest:",
                *(f"    {t}: {n} part(s)" for t, n in _count_by_table(self.unlisted).items()),
                "  `solvency lake recover` rebuilds the manifest from the parts' own metadata "
                f"(nothing is deleted; set-aside files go to {RECOVERED}/)",
            ]
            return out + self._leftover_lines()
        out = [f"lake {self.root} (manifest version {self.version}): {status}"]
        out.append(
            f"  {self.listed} part(s) listed: {self.verified} match their recorded rows and "
            f"checksum, {len(self.not_recorded)} not recorded (manifest from older code), "
            f"{len(self.missing)} missing, {len(self.damaged)} damaged"
        )
        out += [f"  missing: {rel} (listed by the manifest, not on disk)" for rel in self.missing]
        out += [f"  damaged: {p.path}: {p.problem}" for p in self.damaged]
        if self.unlisted:
            out.append(
                f"  {len(self.unlisted)} part(s) on disk that no manifest lists (never deleted "
                f"automatically; `solvency lake recover` moves them to {RECOVERED}/):"
            )
            out += [f"    {rel}" for rel in self.unlisted]
        if self.missing or self.damaged:
            out.append("  restore missing or damaged parts from a backup of the lake")
        return out + self._leftover_lines()

    def _leftover_lines(self) -> list[str]:
        if not self.leftovers:
            return []
        return [
            f"  {len(self.leftovers)} temporary leftover(s), swept by the next commit:",
            *(f"    {rel}" for rel in self.leftovers),
        ]


def check_lake(root: Path | str) -> LakeCheck:
    """Compare the manifest with the files on disk (reads everything it lists; changes nothing)."""
    root = Path(root)
    lake = Lake(root)
    leftovers = [lake.relative(p) for p in leftover_files(root)]
    on_disk = [lake.relative(p) for p in part_files(root)]
    try:
        manifest = lake.manifest()
    except LakeStateError as exc:
        return LakeCheck(
            root, manifest_problem=exc.problem or str(exc), unlisted=on_disk, leftovers=leftovers
        )
    listed = manifest.listed()
    report = LakeCheck(root, version=manifest.version, listed=len(listed), leftovers=leftovers)
    for rel in listed:
        path = root / rel
        if not path.is_file():
            report.missing.append(rel)
            continue
        recorded = manifest.parts.get(rel)
        problem = _part_problem(path, recorded)
        if problem:
            report.damaged.append(PartProblem(rel, problem))
        elif recorded is None:
            report.not_recorded.append(rel)
        else:
            report.verified += 1
    known = set(listed)
    report.unlisted = [rel for rel in on_disk if rel not in known]
    return report


def _part_problem(path: Path, recorded: dict[str, Any] | None) -> str | None:
    """How a part differs from its manifest record (None: it matches, or nothing recorded)."""
    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        return f"not a readable Parquet file ({exc})"
    if recorded is None:
        return None
    if rows != recorded.get("rows"):
        return f"has {rows:,} rows, the manifest recorded {recorded.get('rows')}"
    sha = file_sha256(path)
    if sha != recorded.get("sha256"):
        return f"its bytes changed (SHA-256 {sha[:12]}…, recorded {recorded.get('sha256')})"
    return None


def _table_of(rel: str) -> str:
    return rel.split("/", 1)[0]


def _count_by_table(rels: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for rel in rels:
        counts[_table_of(rel)] += 1
    return dict(sorted(counts.items()))


# --------------------------------------------------------------------------------- recovery


@dataclass(frozen=True)
class SetAside:
    """A file recovery moved out of the lake (to the same relative path under `folder`)."""

    table: str
    path: str
    reason: str


@dataclass
class Recovery:
    """What `recover_lake` did: the manifest it left in place and what it moved aside."""

    root: Path
    #: True when the manifest was missing or unreadable and was rebuilt from the parts.
    rebuilt: bool = False
    #: What was wrong with the manifest (None when it was readable).
    manifest_problem: str | None = None
    #: Where the unreadable manifest was moved (relative to the root), if there was one.
    manifest_set_aside: str | None = None
    #: The `_recovered/<UTC timestamp>` folder holding what was moved (None: nothing moved).
    folder: Path | None = None
    version: int | None = None
    #: Parts the rebuilt manifest lists, per table (empty when nothing was rebuilt).
    listed: dict[str, list[str]] = field(default_factory=dict)
    set_aside: list[SetAside] = field(default_factory=list)
    #: Source files the rebuilt manifest records as ingested.
    sources: int = 0
    warnings: list[str] = field(default_factory=list)

    def set_aside_by_table(self) -> dict[str, list[SetAside]]:
        grouped: dict[str, list[SetAside]] = defaultdict(list)
        for item in self.set_aside:
            grouped[item.table].append(item)
        return dict(sorted(grouped.items()))

    def lines(self) -> list[str]:
        """The report as plain text lines: per table what is listed and what was set aside."""
        if self.rebuilt:
            out = [
                f"lake {self.root}: manifest {self.manifest_problem}; rebuilt from the part files "
                f"as version {self.version}"
            ]
            if self.manifest_set_aside:
                out.append(f"  the unreadable manifest was moved to {self.manifest_set_aside}")
            out.append(f"  {self.sources} source file(s) recorded as ingested")
            for table, rels in sorted(self.listed.items()):
                out.append(f"  {table}: {len(rels)} part(s) listed")
        elif self.version is None:
            out = [f"lake {self.root}: empty, nothing to recover"]
        else:
            out = [f"lake {self.root}: manifest version {self.version} is readable and kept"]
        for table, items in self.set_aside_by_table().items():
            out.append(f"  {table}: {len(items)} part(s) set aside")
            out += [f"    {item.path}: {item.reason}" for item in items]
        if self.folder is not None:
            out.append(f"  set-aside files are in {self.folder} (nothing was deleted)")
        elif not self.rebuilt and self.version is not None:
            out.append("  nothing to set aside")
        out += [f"  warning: {w}" for w in self.warnings]
        return out


def recover_lake(root: Path | str) -> Recovery:
    """Bring the manifest and the files back in agreement, without deleting anything.

    Takes the lake's write lock. A readable manifest is kept and the parts it does not list
    are moved aside; a missing or unreadable one is moved aside (if present) and rebuilt from
    the part files' own metadata.
    """
    root = Path(root)
    if not root.is_dir():
        return Recovery(root)
    lake = Lake(root)
    with lake.locked():
        aside = _Aside(root)
        try:
            manifest = lake.manifest()
        except LakeStateError as exc:
            return _rebuild(lake, exc.problem or str(exc), aside)
        if not manifest.listed() and not manifest.sources and not part_files(root):
            return Recovery(root)
        return _set_aside_unlisted(lake, manifest, aside)


class _Aside:
    """Moves files under `<root>/_recovered/<UTC timestamp>/`, creating that folder on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder: Path | None = None

    def move(self, rel: str) -> Path:
        if self.folder is None:
            self.folder = _new_recovery_folder(self.root)
        target = self.folder / rel
        make_dirs(target.parent)
        if target.exists():
            raise FileExistsError(f"will not overwrite {target}")
        os.rename(self.root / rel, target)
        return target


def _new_recovery_folder(root: Path) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    base = root / RECOVERED / stamp
    folder, n = base, 1
    while folder.exists():
        folder, n = base.with_name(f"{stamp}-{n}"), n + 1
    make_dirs(folder.parent)
    folder.mkdir(mode=dir_mode())
    return folder


def _set_aside_unlisted(lake: Lake, manifest: Manifest, aside: _Aside) -> Recovery:
    listed = set(manifest.listed())
    report = Recovery(lake.root, version=manifest.version)
    for path in part_files(lake.root):
        rel = lake.relative(path)
        if rel in listed:
            continue
        info = _read_info(path)
        table = info.table if info else _table_of(rel)
        aside.move(rel)
        report.set_aside.append(SetAside(table, rel, "no manifest lists it"))
    report.folder = aside.folder
    missing = [rel for rel in manifest.listed() if not (lake.root / rel).is_file()]
    report.warnings += [
        f"{rel} is listed by the manifest but not on disk: restore it from a backup"
        for rel in missing
    ]
    return report


def _read_info(path: Path) -> PartInfo | None:
    try:
        return PartInfo.from_metadata(pq.read_schema(path).metadata)
    except (pa.ArrowInvalid, OSError, ValueError):
        return None


@dataclass(frozen=True)
class _Found:
    """A part file on disk and what it says about itself (or what its path says, for an
    older part written before parts carried metadata)."""

    rel: str
    info: PartInfo
    described: bool


def _describe(rel: str, path: Path) -> _Found | None:
    """None when the file is not readable Parquet."""
    try:
        metadata = pq.read_schema(path).metadata
    except (pa.ArrowInvalid, OSError):
        return None
    try:
        info = PartInfo.from_metadata(metadata)
    except ValueError:
        info = None
    if info is not None:
        return _Found(rel, info, True)
    table, folder, _ = rel.split("/")
    return _Found(
        rel,
        PartInfo(
            table=table,
            load_id=path.stem.split("-")[0],
            load_date=folder.removeprefix("load_date="),
        ),
        False,
    )


def _latest_key(record: dict[str, Any]) -> tuple[str, str]:
    return (str(record.get("ingested_at", "")), str(record.get("load_id", "")))


def _stale_writes(found: list[_Found]) -> dict[str, str]:
    """Parts of earlier, unpublished writes of a load that was written again later.

    A load interrupted after its parts were named but before its manifest was published is
    retried as a new write of the same source; only the latest write can have been published.
    """
    writes: dict[str, dict[str, str]] = defaultdict(dict)
    for f in found:
        if f.described and f.info.commit and f.info.written_by:
            writes[f.info.written_by][f.info.commit] = f.info.written_at
    stale: dict[str, str] = {}
    for sha, commits in writes.items():
        if len(commits) < 2:
            continue
        latest = max(commits, key=lambda c: (commits[c], c))
        for f in found:
            if f.info.written_by == sha and f.info.commit != latest:
                stale[f.rel] = "an earlier write of the same load that was never published"
    return stale


def _reloaded_sources(found: list[_Found]) -> dict[str, str]:
    """Parts of a source file that was loaded again under a later load_id: keep the latest."""
    loads: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for f in found:
        sha = f.info.source.get("sha256")
        if sha:
            loads[sha][f.info.load_id] = f.info.source
    dropped: dict[str, str] = {}
    for sha, by_load in loads.items():
        if len(by_load) < 2:
            continue
        latest = max(by_load, key=lambda load_id: _latest_key(by_load[load_id]))
        file = by_load[latest].get("file", sha[:12])
        for f in found:
            if f.info.source.get("sha256") == sha and f.info.load_id != latest:
                dropped[f.rel] = f"{file} was loaded again as load {latest}; the latest is kept"
    return dropped


def _copies(found: list[_Found]) -> dict[str, str]:
    """Parts claiming the same place as another: one write makes one part per table, load and
    replaced part, so a second file with that identity is a copy. Kept: the one named after
    its load, then the first by name."""
    first: dict[tuple[str, str, str, str | None], str] = {}
    copies: dict[str, str] = {}
    named_after_load = sorted(
        found, key=lambda f: (not Path(f.rel).name.startswith(f"{f.info.load_id}-"), f.rel)
    )
    for f in named_after_load:
        if not (f.described and f.info.commit):
            continue
        identity = (f.info.commit, f.info.table, f.info.load_id, f.info.replaces)
        if identity in first:
            copies[f.rel] = f"a copy of {first[identity]} (same table, load and write)"
        else:
            first[identity] = f.rel
    return copies


def _replaced(found: list[_Found]) -> dict[str, str]:
    """Parts another part declares it replaces or made obsolete (copy-on-write history)."""
    present = {f.rel for f in found}
    replaced: dict[str, str] = {}
    for f in found:
        for rel in (*([f.info.replaces] if f.info.replaces else []), *f.info.retires):
            if rel in present and rel != f.rel:
                replaced.setdefault(rel, f"replaced by {f.rel}")
    return replaced


def _sources(found: list[_Found]) -> dict[str, dict[str, Any]]:
    """Source records the parts carry (their own load's and those of loads they emptied).

    Parts set aside count too: a replaced part's load was published; a stale or repeated
    write is of a source a kept part also names, and the latest record of each source wins.
    """
    sources: dict[str, dict[str, Any]] = {}
    for f in found:
        for record in (f.info.source, *f.info.retired_sources):
            sha = record.get("sha256")
            if not sha:
                continue
            entry = {k: v for k, v in record.items() if k != "sha256"}
            if sha not in sources or _latest_key(entry) > _latest_key(sources[sha]):
                sources[sha] = entry
    return sources


_VERSION = re.compile(r'"version"\s*:\s*(\d+)')


def _versions_seen(root: Path, manifest_text: str) -> list[int]:
    """Manifest versions seen anywhere: the broken manifest and earlier set-aside ones."""
    texts = [manifest_text]
    texts += [
        p.read_text(encoding="utf-8", errors="replace")
        for p in sorted((root / RECOVERED).glob(f"*/{MANIFEST}"))
    ]
    return [int(m) for text in texts for m in _VERSION.findall(text)]


def _rebuild(lake: Lake, problem: str, aside: _Aside) -> Recovery:
    root = lake.root
    report = Recovery(root, rebuilt=True, manifest_problem=problem)
    broken = ""
    if lake.manifest_path.exists():
        broken = lake.manifest_path.read_text(encoding="utf-8", errors="replace")
        report.manifest_set_aside = lake.relative(aside.move(MANIFEST))
    seen = _versions_seen(root, broken)

    found: list[_Found] = []
    for path in part_files(root):
        rel = lake.relative(path)
        described = _describe(rel, path)
        if described is None:
            aside.move(rel)
            report.set_aside.append(SetAside(_table_of(rel), rel, "not a readable Parquet file"))
        else:
            found.append(described)

    dropped = _stale_writes(found)
    current = [f for f in found if f.rel not in dropped]
    for rule in (_reloaded_sources, _copies, _replaced):
        dropped |= rule(current)
        current = [f for f in current if f.rel not in dropped]
    for f in found:
        if f.rel in dropped:
            aside.move(f.rel)
            report.set_aside.append(SetAside(f.info.table, f.rel, dropped[f.rel]))
    kept = sorted(
        (f for f in found if f.rel not in dropped),
        key=lambda f: (f.info.load_version, f.info.load_date, f.rel),
    )

    tables: dict[str, list[str]] = defaultdict(list)
    for f in kept:
        tables[f.info.table].append(f.rel)
    manifest = Manifest(
        tables=dict(tables),
        sources=_sources(found),
        version=max([0, *seen, *(f.info.load_version for f in found)]) + 1,
        parts={f.rel: part_record(root / f.rel) for f in kept},
    )
    atomic_write_text(lake.manifest_path, manifest.to_json())
    fsync_dir(root)

    report.version = manifest.version
    report.listed = {t: list(rels) for t, rels in sorted(manifest.tables.items())}
    report.sources = len(manifest.sources)
    report.folder = aside.folder
    report.warnings += _warnings(lake, manifest, kept)
    return report


def _warnings(lake: Lake, manifest: Manifest, kept: list[_Found]) -> list[str]:
    """What the rebuilt manifest cannot vouch for: parts without metadata, duplicate keys."""
    from data.contracts import CONTRACTS

    warnings = []
    older = [f.rel for f in kept if not f.described]
    if older:
        warnings.append(
            f"{len(older)} part(s) predate self-describing parts; their tables come from their "
            "folders and their source files are not recorded (ingesting those files again "
            "would load them twice): " + ", ".join(older)
        )
    for table, rels in manifest.tables.items():
        contract = CONTRACTS.get(table)
        if contract is None or not rels:
            continue
        keys = pq.ParquetDataset([str(lake.root / r) for r in rels], partitioning=None).read(
            columns=list(contract.key)
        )
        duplicated = int(keys.to_pandas().duplicated(keep=False).sum())
        if duplicated:
            warnings.append(
                f"{table}: {duplicated:,} rows share a key with another row after the rebuild; "
                "check the set-aside parts and the loads listed"
            )
    return warnings


__all__ = [
    "RECOVERED",
    "LakeCheck",
    "PartProblem",
    "Recovery",
    "SetAside",
    "check_lake",
    "recover_lake",
]
