"""Ingestion: source files -> contract validation -> lake (valid rows) and quarantine (bad rows).

Plain functions, so they are tested without Prefect; `flows/ingest.py` wraps them in a flow.

Guarantees, per source file:
- every row read ends up either accepted in its table or in quarantine with its reason
  (rows in = accepted + quarantined), never dropped;
- the same file content is ingested once: a second ingest of it adds nothing;
- rows of a later file with the same key supersede the earlier rows (corrections);
- the file's effect (rows, superseded rows, quarantine, source record) is published as one
  atomic manifest change, and every part it writes carries that source record in its own
  metadata, so a lost manifest can be rebuilt (`data.lake_recovery`) without loading twice;
- a file that can't be read, misses a required column or breaks anything while being
  validated fails that file only, with a message naming the file (and row and column where
  known); the rest of the folder goes on, and the caller sees the failure in the reports;
- a folder's files that are not table files, and symbolic links (unless allowed to point
  inside the folder), are reported as failed, never silently skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from data.contracts import CONTRACTS, ContractError, TableContract, match_columns, validate_table
from data.lake import QUARANTINE, Lake, Manifest, PartInfo, part_info
from data.reading import SOURCE_SUFFIXES, ReadOptions, read_source, source_suffix

Progress = Callable[[str], None]
#: How symbolic links in a source folder are treated: refused, or followed when they point
#: at a file inside the same folder.
LINK_POLICIES = ("refuse", "inside")


@dataclass(frozen=True)
class IngestOptions:
    """How a folder's files are read: CSV encoding and delimiter, and symbolic links."""

    read: ReadOptions = field(default_factory=ReadOptions)
    links: str = "refuse"

    def __post_init__(self) -> None:
        if self.links not in LINK_POLICIES:
            raise ValueError(f"links must be one of {', '.join(LINK_POLICIES)}, not {self.links!r}")


@dataclass
class FileReport:
    """What happened to one source file; the ingest summary is a list of these."""

    table: str
    source: str
    status: str  # ingested | skipped | failed
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    superseded: int = 0
    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    message: str = ""
    #: What the file's owner should hear about though the file loaded: renamed, unknown or
    #: absent columns, a sniffed delimiter.
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def table_for_file(path: Path) -> str | None:
    """`invoices.csv`, `Invoices_2026-11-30.parquet`, `invoices-part2.CSV` and
    `invoices.csv.gz` are invoices."""
    suffix = source_suffix(path.name)
    if suffix is None:
        return None
    stem = path.name[: -len(suffix)].lower()
    for table in CONTRACTS:
        if re.fullmatch(rf"{table}([_\-.].*)?", stem):
            return table
    return None


@dataclass
class SourceListing:
    """A folder's files: table files in ingestion order, and those that cannot be loaded."""

    sources: list[tuple[str, Path]]
    unrecognised: list[Path]
    refused_links: list[Path]


def _is_hidden(path: Path) -> bool:
    """Dot files (`.DS_Store`, Spark's `.crc`) and `_SUCCESS`-style markers: tool metadata,
    never a table. A `_`-name that looks like a data file (`_invoices.csv`) is not hidden:
    it is reported as not a table file."""
    name = path.name
    return name.startswith(".") or (name.startswith("_") and source_suffix(name) is None)


def _link_target(path: Path) -> str:
    """Where a symbolic link points, as written (never resolved: a loop must not crash)."""
    try:
        return os.readlink(path)
    except OSError as exc:
        return f"unreadable link: {exc.strerror}"


def _allowed_link(path: Path, folder: Path, links: str) -> bool:
    if links != "inside":
        return False
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling, or a loop of links
        return False
    return target.parent == folder.resolve() and target.is_file()


def list_sources(source_dir: Path, links: str = "refuse") -> SourceListing:
    """Table files in ingestion order (referenced tables first), the files that are not
    table files (or not regular files: a pipe, a device), and refused symbolic links.
    Sub-folders and hidden files are not looked at."""
    if not source_dir.is_dir():
        raise FileNotFoundError(f"source folder not found: {source_dir}")
    order = {t: i for i, t in enumerate(CONTRACTS)}
    listing = SourceListing([], [], [])
    for path in sorted(source_dir.iterdir()):
        if _is_hidden(path):
            continue
        if path.is_symlink():
            if not _allowed_link(path, source_dir, links):
                listing.refused_links.append(path)
                continue
        elif path.is_dir():
            continue
        table = table_for_file(path) if path.is_file() else None
        if table is None:
            listing.unrecognised.append(path)
        else:
            listing.sources.append((table, path))
    listing.sources.sort(key=lambda tp: (order[tp[0]], tp[1].name))
    return listing


def fingerprint(path: Path) -> str:
    """SHA-256 of the file's bytes: the identity used to ingest each content only once."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _key_index(frame: pd.DataFrame, key: tuple[str, ...]) -> pd.Index:
    return pd.MultiIndex.from_frame(frame[list(key)]) if len(key) > 1 else pd.Index(frame[key[0]])


def known_keys(lake: Lake) -> dict[str, pd.Index]:
    """Keys of the tables other tables refer to (buyers, policies), as the lake holds them."""
    targets = {ref.target: ref.target_column for c in CONTRACTS.values() for ref in c.references}
    return {
        t: pd.Index(lake.read(t, columns=[col])[col]) if lake.has_table(t) else pd.Index([])
        for t, col in targets.items()
    }


@dataclass
class _Supersede:
    """How a new load's keys change a table's current parts, decided before anything is written."""

    parts: list[tuple[str, np.ndarray | None]]  # (part, mask of the rows it keeps; None = all)
    dropped: list[str]  # parts that lose every row
    removed: int  # rows superseded


def _plan_supersede(
    lake: Lake, manifest: Manifest, contract: TableContract, new_keys: pd.Index
) -> _Supersede:
    """Which of the table's parts hold keys the new load corrects, and how many rows they lose."""
    parts: list[tuple[str, np.ndarray | None]] = []
    dropped: list[str] = []
    removed = 0
    for rel in manifest.tables.get(contract.name, []):
        keys = pq.read_table(lake.root / rel, columns=list(contract.key)).to_pandas(
            date_as_object=False
        )
        hit = np.asarray(_key_index(keys, contract.key).isin(new_keys))
        if not hit.any():
            parts.append((rel, None))
            continue
        removed += int(hit.sum())
        if hit.all():
            dropped.append(rel)
        else:
            parts.append((rel, ~hit))
    return _Supersede(parts, dropped, removed)


def _origin(lake: Lake, manifest: Manifest, rel: str, table: str) -> PartInfo:
    """The load an existing part's rows came from: its own metadata or, for a part written
    before parts described themselves, its folder, file name and the manifest's record."""
    path = lake.root / rel
    info = part_info(path)
    if info is not None:
        return info
    load_id = path.stem.split("-")[0]
    source = next(
        (
            {"sha256": sha, **rec}
            for sha, rec in manifest.sources.items()
            if rec.get("load_id") == load_id
        ),
        {},
    )
    load_date = path.parent.name.removeprefix("load_date=")
    return PartInfo(table=table, load_id=load_id, load_date=load_date, source=source)


def _history(info: PartInfo) -> list[str]:
    """Earlier parts a part stands for: the one it replaced and those it already retired."""
    return [*([info.replaces] if info.replaces else []), *info.retires]


def _unique_sources(records: Iterable[dict[str, Any]], exclude: str) -> tuple[dict[str, Any], ...]:
    by_sha = {r["sha256"]: r for r in records if r.get("sha256") and r["sha256"] != exclude}
    return tuple(by_sha.values())


def _write_new_rows(
    lake: Lake,
    manifest: Manifest,
    contract: TableContract,
    plan: _Supersede,
    valid: pd.DataFrame,
    writer: PartInfo,
) -> None:
    """Write the load's part and the copy-on-write rewrites of the parts it corrects.

    The load's part retires the parts it empties (with their history and source records, so a
    rebuilt manifest neither revives them nor forgets their loads); each rewrite says which
    part it replaces and keeps the original's load and history.
    """
    emptied = [(rel, _origin(lake, manifest, rel, contract.name)) for rel in plan.dropped]
    retires = [h for rel, info in emptied for h in (rel, *_history(info))]
    retired_sources = [s for _, info in emptied for s in (info.source, *info.retired_sources)]
    kept_parts = []
    for rel, keep in plan.parts:
        if keep is None:
            kept_parts.append(rel)
            continue
        origin = _origin(lake, manifest, rel, contract.name)
        rewrite = replace(
            origin,
            table=contract.name,
            commit=writer.commit,
            written_by=writer.written_by,
            written_at=writer.written_at,
            replaces=rel,
            retires=tuple(dict.fromkeys(_history(origin))),
        )
        rows = pq.read_table(lake.root / rel).filter(pa.array(keep))
        kept_parts.append(lake.write_part(rows, rewrite))
    new_part = lake.write_part(
        valid,
        replace(
            writer,
            retires=tuple(dict.fromkeys(retires)),
            retired_sources=_unique_sources(retired_sources, exclude=writer.written_by),
        ),
    )
    manifest.tables[contract.name] = [*kept_parts, new_part]


def _top_reasons(quarantine: pd.DataFrame, n: int = 3) -> list[tuple[str, int]]:
    counts = Counter(
        f"{c}: {r}" for c, r in zip(quarantine["column"], quarantine["rule"], strict=True)
    )
    return counts.most_common(n)


def ingest_file(
    lake: Lake,
    table: str,
    path: Path,
    load_date: dt.date,
    known: Mapping[str, pd.Index] | None = None,
    read_options: ReadOptions | None = None,
) -> FileReport:
    """Validate one source file and publish its rows and quarantine records atomically.

    Must be called while holding the lake's lock (see :func:`ingest_directory`). Whatever
    goes wrong while reading or validating the file fails this file only (a report with
    status "failed"); errors while writing the lake propagate (the lake stays as it was).
    """
    contract = CONTRACTS[table]
    source = str(path)
    manifest = lake.manifest()
    try:
        digest = fingerprint(path)
    except OSError as exc:  # vanished or unreadable since the folder was listed
        return FileReport(table, source, "failed", message=f"{source}: unreadable file ({exc})")
    if digest in manifest.sources:
        earlier = manifest.sources[digest]
        return FileReport(
            table,
            source,
            "skipped",
            message=f"same content already ingested on {earlier['load_date']} from {earlier['file']}",
        )
    try:
        read = read_source(path, read_options or ReadOptions(), contract.columns)
        match = match_columns(list(read.frame.columns), contract, source)
        raw = read.frame.rename(columns=match.rename)
        known = known_keys(lake) if known is None else known
        result = validate_table(raw, contract, known, pd.Timestamp(load_date))
    except ContractError as exc:
        return FileReport(table, source, "failed", message=str(exc))
    except Exception as exc:  # one bad file must not stop the folder
        return FileReport(
            table,
            source,
            "failed",
            message=f"{source}: could not be validated ({type(exc).__name__}: {exc})",
        )
    load_id = digest[:16]
    now = dt.datetime.now(dt.UTC)
    ingested_at = now.isoformat(timespec="seconds")
    stamp = load_date.isoformat()

    valid = result.valid
    plan = _Supersede([], [], 0)
    if len(valid):
        valid.insert(0, "_load_id", load_id)
        plan = _plan_supersede(lake, manifest, contract, _key_index(valid, contract.key))

    report = FileReport(
        table=table,
        source=source,
        status="ingested",
        rows_read=result.rows_in,
        accepted=len(valid),
        quarantined=result.rows_quarantined,
        superseded=plan.removed,
        top_reasons=_top_reasons(result.quarantine),
        warnings=[*read.notes, *match.warnings(result.rows_in)],
    )
    record = {
        "file": source,
        "table": table,
        "load_id": load_id,
        "load_date": stamp,
        "ingested_at": ingested_at,
        "rows_read": report.rows_read,
        "accepted": report.accepted,
        "quarantined": report.quarantined,
        "superseded": report.superseded,
    }
    writer = PartInfo(
        table=table,
        load_id=load_id,
        load_date=stamp,
        source={"sha256": digest, **record},
        load_version=manifest.version + 1,
        commit=uuid.uuid4().hex,
        written_by=digest,
        written_at=now.isoformat(timespec="microseconds"),
    )
    if len(valid):
        _write_new_rows(lake, manifest, contract, plan, valid, writer)
    if len(result.quarantine):
        quarantine = result.quarantine.assign(
            load_id=load_id, source_file=source, load_date=stamp, ingested_at=ingested_at
        )
        qpart = lake.write_part(quarantine, replace(writer, table=QUARANTINE))
        manifest.tables.setdefault(QUARANTINE, []).append(qpart)
    manifest.sources[digest] = record
    lake.commit(manifest)
    return report


def ingest_directory(
    source_dir: Path,
    lake: Lake,
    load_date: dt.date | None = None,
    progress: Progress | None = None,
    ingest: Callable[..., FileReport] = ingest_file,
    options: IngestOptions = IngestOptions(),
) -> list[FileReport]:
    """Ingest every table file of a folder, referenced tables first; files that are not
    table files and refused links get a failed report each (a misnamed table must not
    vanish from the day unnoticed).

    `ingest` ingests one file (the flow passes its Prefect task here).
    """
    load_date = load_date or dt.date.today()
    listing = list_sources(source_dir, options.links)
    say = progress or (lambda _msg: None)
    reports = [
        FileReport("", str(path), "failed", message=_unrecognised(path))
        for path in listing.unrecognised
    ] + [
        FileReport("", str(path), "failed", message=_refused_link(path))
        for path in listing.refused_links
    ]
    for report in reports:
        say(summary_line(report))
    with lake.locked():
        for table, path in listing.sources:
            say(f"ingesting {path.name} as {table}")
            reports.append(ingest(lake, table, path, load_date, read_options=options.read))
            say(summary_line(reports[-1]))
    return reports


def _unrecognised(path: Path) -> str:
    if not path.is_file():
        return f"{path.name}: not a regular file (a pipe, a socket or a device), not loaded"
    return (
        f"{path.name}: not a table file, not loaded (a name starts with one of "
        f"{', '.join(CONTRACTS)} and ends in {', '.join(SOURCE_SUFFIXES)})"
    )


def _refused_link(path: Path) -> str:
    return (
        f"{path.name}: a symbolic link (to {_link_target(path)}), not loaded: copy the file into "
        "the folder, or set source_links=inside to follow links to files of the same folder"
    )


def summary_line(report: FileReport) -> str:
    name = Path(report.source).name
    if report.status != "ingested":
        return f"{report.table or name}: {report.status} {name} — {report.message}"
    reasons = "; ".join(f"{r} ×{n}" for r, n in report.top_reasons)
    warnings = "; ".join(report.warnings)
    return (
        f"{report.table}: read {report.rows_read:,}, accepted {report.accepted:,}, "
        f"quarantined {report.quarantined:,}, superseded {report.superseded:,}"
        + (f" (top reasons: {reasons})" if reasons else "")
        + (f" [warnings: {warnings}]" if warnings else "")
    )


def reports_frame(reports: list[FileReport]) -> pd.DataFrame:
    frame = pd.DataFrame([r.as_dict() for r in reports])
    if len(frame):
        frame["top_reasons"] = frame["top_reasons"].map(
            lambda rs: "; ".join(f"{r} ×{n}" for r, n in rs)
        )
        frame["warnings"] = frame["warnings"].map("; ".join)
    return frame


def quarantine_reasons(lake: Lake) -> pd.DataFrame:
    """Quarantined rows per table and rule, most frequent first (for the CLI and reports)."""
    q = lake.read(QUARANTINE)
    if q.empty:
        return pd.DataFrame(columns=["table", "column", "rule", "rows"])
    return (
        q.groupby(["table", "column", "rule"], as_index=False)
        .size()
        .rename(columns={"size": "rows"})
        .sort_values("rows", ascending=False, ignore_index=True)
    )


__all__ = [
    "FileReport",
    "IngestOptions",
    "ingest_directory",
    "ingest_file",
    "list_sources",
    "quarantine_reasons",
    "reports_frame",
    "summary_line",
    "table_for_file",
]
