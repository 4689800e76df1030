"""The local Parquet lake: one folder per table, partitioned by load date, with one manifest.

A table's current content is exactly the Parquet files its manifest lists, one current row
per key. Every change (new rows, corrected rows superseding old ones, quarantine records
and the record of which source file was ingested) is first written to files under a
temporary name (`.<part>.parquet.tmp`), renamed to their final name just before the commit,
and published by atomically replacing the single manifest file. A crash at any point
therefore leaves the previous state visible and complete.

The lake deletes only what it can account for: part files the previous manifest listed and
the new one no longer lists (the originals of a copy-on-write), and leftovers under its own
temporary names. A missing or unreadable manifest stops every reader and writer
(:class:`LakeStateError`) instead of being taken for an empty lake, and a final-named part
no manifest lists is never deleted: `data.lake_recovery` reports it and sets it aside.

Every part file describes itself in its Parquet metadata (:class:`PartInfo`: table, load,
source record, what it replaces), so a lost manifest can be rebuilt from the parts alone.
The manifest records each part's row count and SHA-256 so damage is detectable.

Superseding is copy-on-write: a part file holding keys that a newer load corrects is
rewritten without them. Reads stay a plain concatenation of files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from data.permissions import create_file, make_dirs, open_for_writing

MANIFEST = "_manifest.json"
LOCK = "_lock"
QUARANTINE = "quarantine"
OUTPUTS = "outputs"
#: Lineage columns kept on every lake row: which load wrote it and its row in the source file.
LINEAGE_COLUMNS = ("_load_id", "_source_row")
#: Where part files live, relative to the lake root.
PART_GLOB = "*/load_date=*/*"
#: Names the lake gives a file while writing it: `.<part>.parquet.tmp` for a part awaiting its
#: commit, `.<part>.parquet.<32 hex>.tmp` for an atomic write in progress. Only these are swept.
TEMP_PART_NAME = re.compile(r"\.[^/]+\.parquet(\.[0-9a-f]{32})?\.tmp")
#: Prefix of the Parquet schema-metadata keys in which a part describes itself.
PART_METADATA_PREFIX = "lake."
RECOVERY_COMMANDS = (
    "run `solvency lake check` to see what is on disk, then `solvency lake recover` to rebuild "
    "the manifest from the part files' own metadata (nothing is deleted: anything set aside "
    "is moved under _recovered/)"
)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename over `path`.

    Like every writer of the lake, owner-only (folders 0700, files 0600) unless the
    `shared_files` setting says otherwise (`data.permissions`): the temporary file is
    created with its final mode before a byte is written, and the rename keeps it.
    """
    make_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open_for_writing(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_parquet(frame: pd.DataFrame | pa.Table, path: Path) -> None:
    """Parquet counterpart of :func:`atomic_write_bytes` (no half-written file is ever visible)."""
    table = (
        frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    )
    make_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        os.close(create_file(tmp))  # its mode set before Arrow writes (and truncates) it
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


#: A text cell starting with one of these is a formula to a spreadsheet (`=HYPERLINK(...)`,
#: `@SUM(...)`, `+cmd|...`); a tab or carriage return can hide one after it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell that a spreadsheet would run as a formula prefixed
    with an apostrophe (shown as text, OWASP's advice); numbers stay numbers.

    Text cells are those of text, object and categorical columns; a number held in an
    object column (-5, not '-5') is left alone, as are numeric, boolean and date columns.
    The input frame is not changed.
    """
    out = frame.copy(deep=False)
    for k in range(out.shape[1]):  # by position: column names may repeat
        values = out.iloc[:, k]
        if not (
            values.dtype == object
            or pd.api.types.is_string_dtype(values)
            or isinstance(values.dtype, pd.CategoricalDtype)
        ):
            continue
        text = values.astype("string")
        risky = text.str.startswith(FORMULA_STARTS).fillna(False).astype(bool)
        if values.dtype == object and risky.any() and pd.api.types.infer_dtype(values) != "string":
            risky &= values.map(lambda v: isinstance(v, str)).astype(bool)  # not numbers
        if risky.any():
            out.isetitem(k, values.astype(object).where(~risky, "'" + text.astype(object)))
    return out


def csv_ready(frame: pd.DataFrame) -> pa.Table:
    """The frame as Arrow for a CSV an underwriter opens: date-only timestamps as dates."""
    columns = {}
    for name in frame.columns:
        values = frame[name]
        if (
            pd.api.types.is_datetime64_any_dtype(values)
            and (values.isna() | (values == values.dt.normalize())).all()
        ):
            columns[name] = pa.array(values.dt.date, type=pa.date32())
        else:
            columns[name] = pa.array(values, from_pandas=True)
    return pa.table(columns)


def atomic_write_csv(frame: pd.DataFrame, path: Path) -> None:
    """A frame as CSV (header, no index, quotes only where needed), written then renamed.

    Every CSV the project exports goes through here (recommendations.csv, the output store's
    and the lake's CSV companions), and is made :func:`spreadsheet_safe` on the way: a text
    cell starting with `= + - @`, a tab or a carriage return (an id `=HYPERLINK(...)`, a
    name `@SUM(A1)`) is written with a leading apostrophe, so a spreadsheet shows it as
    text instead of running it; numeric columns are written as they are (-5 stays -5).

    Why Arrow's writer: it is multi-threaded and ~10x faster than `DataFrame.to_csv` on the
    million-row recommendation tables of a large portfolio.
    """
    make_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        os.close(create_file(tmp))  # its mode set before Arrow writes (and truncates) it
        pa_csv.write_csv(
            csv_ready(spreadsheet_safe(frame)), tmp, pa_csv.WriteOptions(quoting_style="needed")
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class LakeStateError(RuntimeError):
    """The manifest is missing or unreadable while part files exist: the lake's state is unknown.

    Raised instead of treating the lake as empty, which would reload every source and bury the
    existing parts. `manifest_path` and `problem` say which file and what is wrong with it.
    """

    def __init__(self, message: str, manifest_path: Path | None = None, problem: str = "") -> None:
        super().__init__(message)
        self.manifest_path = manifest_path
        self.problem = problem


def manifest_error(path: Path, problem: str) -> LakeStateError:
    """The error every reader and writer raises for a manifest it cannot trust."""
    return LakeStateError(
        f"lake manifest {path} {problem}; the lake refuses to read or write until it is "
        f"repaired: {RECOVERY_COMMANDS}",
        manifest_path=path,
        problem=problem,
    )


@dataclass
class Manifest:
    """What the lake currently holds: part files per table and the sources already ingested.

    `parts` records each listed part's row count and SHA-256 (`{"rows": n, "sha256": hex}`),
    so a damaged or swapped file is detectable; manifests written before it existed lack it.
    """

    tables: dict[str, list[str]] = field(default_factory=dict)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 0
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def listed(self) -> list[str]:
        """Every listed part (relative path), table by table."""
        return [rel for rels in self.tables.values() for rel in rels]

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "tables": self.tables,
                "sources": self.sources,
                "parts": self.parts,
            },
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse a manifest; ValueError says what is wrong with one that is not a manifest."""
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        missing = [k for k in ("version", "tables", "sources") if k not in raw]
        if missing:
            raise ValueError(f"missing key(s) {', '.join(missing)}")
        tables, sources, version = raw["tables"], raw["sources"], raw["version"]
        parts = raw.get("parts", {})
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError("version is not an integer")
        if not isinstance(tables, dict) or not all(
            isinstance(rels, list) and all(isinstance(r, str) for r in rels)
            for rels in tables.values()
        ):
            raise ValueError("tables is not a map of table to list of part files")
        if not isinstance(sources, dict) or not isinstance(parts, dict):
            raise ValueError("sources or parts is not a map")
        return cls(tables=tables, sources=sources, version=version, parts=parts)


def read_manifest(path: Path) -> Manifest:
    """The manifest at `path`; LakeStateError naming the file if it cannot be read or parsed."""
    try:
        return Manifest.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise manifest_error(path, "is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise manifest_error(path, f"is unreadable ({exc})") from exc


@dataclass(frozen=True)
class PartInfo:
    """What a part file says about itself, in its Parquet schema metadata (keys `lake.*`).

    Enough to rebuild a lost manifest from the parts alone. `load_id`, `load_date`, `source`
    and `load_version` describe the load the rows came from (for a copy-on-write rewrite, the
    original's load, which also names its folder); `commit`, `written_by` and `written_at`
    describe the write that produced the file. `replaces` is the part a rewrite replaces;
    `retires` lists every other earlier part this file makes obsolete (parts its load removed
    entirely, and a rewritten part's own history), and `retired_sources` the source records of
    loads whose parts were removed entirely, so a rebuilt manifest still knows they were
    ingested.
    """

    table: str
    load_id: str
    load_date: str
    #: The load's source record as kept in `Manifest.sources`, plus its `sha256`.
    source: dict[str, Any] = field(default_factory=dict)
    #: Manifest version that published the load the rows came from (orders a table's parts).
    load_version: int = 0
    commit: str = ""
    #: SHA-256 of the source file whose load wrote this file.
    written_by: str = ""
    written_at: str = ""
    replaces: str | None = None
    retires: tuple[str, ...] = ()
    retired_sources: tuple[dict[str, Any], ...] = ()

    def metadata(self) -> dict[bytes, bytes]:
        values: dict[str, str] = {
            "table": self.table,
            "load_id": self.load_id,
            "load_date": self.load_date,
            "source": json.dumps(self.source, sort_keys=True),
            "load_version": str(self.load_version),
            "commit": self.commit,
            "written_by": self.written_by,
            "written_at": self.written_at,
            "retires": json.dumps(list(self.retires)),
            "retired_sources": json.dumps(list(self.retired_sources), sort_keys=True),
        }
        if self.replaces:
            values["replaces"] = self.replaces
        return {f"{PART_METADATA_PREFIX}{k}".encode(): v.encode() for k, v in values.items()}

    @classmethod
    def from_metadata(cls, metadata: Mapping[bytes, bytes] | None) -> PartInfo | None:
        """The part's own description, or None for a part written before parts had one."""
        prefix = PART_METADATA_PREFIX.encode()
        values = {
            k[len(prefix) :].decode(): v.decode()
            for k, v in (metadata or {}).items()
            if k.startswith(prefix)
        }
        if "table" not in values:
            return None
        return cls(
            table=values["table"],
            load_id=values.get("load_id", ""),
            load_date=values.get("load_date", ""),
            source=json.loads(values.get("source", "{}")),
            load_version=int(values.get("load_version", "0") or 0),
            commit=values.get("commit", ""),
            written_by=values.get("written_by", ""),
            written_at=values.get("written_at", ""),
            replaces=values.get("replaces") or None,
            retires=tuple(json.loads(values.get("retires", "[]"))),
            retired_sources=tuple(json.loads(values.get("retired_sources", "[]"))),
        )


def part_info(path: Path) -> PartInfo | None:
    """Read a part file's self-description from its footer (None for an older part)."""
    return PartInfo.from_metadata(pq.read_schema(path).metadata)


def temp_part_path(path: Path) -> Path:
    """The name a part has between being written and its commit: `.<name>.tmp` beside it."""
    return path.with_name(f".{path.name}.tmp")


def is_part_name(name: str) -> bool:
    """A final part name (`<load_id>-<hex>.parquet`), not a hidden or temporary file."""
    return name.endswith(".parquet") and not name.startswith(".")


def is_part_relative(rel: str) -> bool:
    """`<table>/load_date=<date>/<part>.parquet`: the only kind of path the lake deletes."""
    path = PurePosixPath(rel)
    return (
        len(path.parts) == 3
        and ".." not in path.parts
        and not path.parts[0].startswith(("_", "."))
        and path.parts[1].startswith("load_date=")
        and is_part_name(path.name)
    )


def part_files(root: Path) -> list[Path]:
    """Final-named part files on disk, listed or not."""
    return sorted(
        p
        for p in Path(root).glob(PART_GLOB)
        if is_part_name(p.name) and not p.parts[-3].startswith("_") and p.is_file()
    )


def leftover_files(root: Path) -> list[Path]:
    """Files in partition folders carrying the lake's temporary names (safe to sweep)."""
    return sorted(
        p for p in Path(root).glob(PART_GLOB) if TEMP_PART_NAME.fullmatch(p.name) and p.is_file()
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def part_record(path: Path) -> dict[str, Any]:
    """What the manifest records about a part: its row count and checksum."""
    return {"rows": pq.ParquetFile(path).metadata.num_rows, "sha256": file_sha256(path)}


def fsync_dir(path: Path) -> None:
    """Make renames inside `path` durable (a no-op where directories cannot be synced)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Lake:
    """A Parquet lake rooted at `root` (by default `data/lake`)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def manifest(self) -> Manifest:
        """The current manifest; an empty one only for a lake that holds no part file yet.

        A missing manifest beside existing parts, or an unreadable one, raises LakeStateError:
        taking it for an empty lake would reload every source over the parts already there.
        """
        if not self.manifest_path.exists():
            found = part_files(self.root)
            if not found:
                return Manifest()
            raise manifest_error(
                self.manifest_path, f"is missing but {self.root} holds {len(found)} part file(s)"
            )
        return read_manifest(self.manifest_path)

    def files(self, table: str) -> list[Path]:
        return [self.root / rel for rel in self.manifest().tables.get(table, [])]

    def has_table(self, table: str) -> bool:
        return bool(self.manifest().tables.get(table))

    def read(
        self,
        table: str,
        columns: Sequence[str] | None = None,
        lineage: bool = False,
    ) -> pd.DataFrame:
        """The current rows of `table` (empty frame if it was never loaded)."""
        files = self.files(table)
        if not files:
            return pd.DataFrame(columns=list(columns) if columns else None)
        dataset = pq.ParquetDataset([str(f) for f in files], partitioning=None)
        names = dataset.schema.names
        wanted = (
            list(columns) if columns else [c for c in names if lineage or c not in LINEAGE_COLUMNS]
        )
        return dataset.read(columns=wanted).to_pandas()

    def read_tables(self, tables: Sequence[str]) -> dict[str, pd.DataFrame]:
        """Several input tables; one never loaded comes back empty with its contract's types."""
        from data.contracts import CONTRACTS, empty_table

        return {t: self.read(t) if self.has_table(t) else empty_table(CONTRACTS[t]) for t in tables}

    def output_path(self, name: str, partition: str) -> Path:
        return self.root / OUTPUTS / name / f"{partition}.parquet"

    def write_output(self, name: str, partition: str, frame: pd.DataFrame) -> Path:
        """Replace one partition of a derived output (e.g. features of one as-of date) atomically.

        Re-running the same partition replaces it: never a duplicate, never a half file.
        """
        path = self.output_path(name, partition)
        atomic_write_parquet(frame, path)
        return path

    def read_output(
        self, name: str, partition: str, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        return pq.read_table(self.output_path(name, partition), columns=columns).to_pandas()

    def output_partitions(self, name: str) -> list[str]:
        """Partitions (e.g. as-of dates) published for an output, in sorted order."""
        folder = self.root / OUTPUTS / name
        return sorted(p.stem for p in folder.glob("*.parquet")) if folder.is_dir() else []

    def write_output_csv(self, name: str, filename: str, frame: pd.DataFrame) -> Path:
        """A CSV companion of an output, replaced atomically."""
        path = self.root / OUTPUTS / name / filename
        atomic_write_csv(frame, path)
        return path

    def write_output_text(self, name: str, filename: str, text: str) -> Path:
        """A companion file of an output (CSV, HTML report), replaced atomically."""
        path = self.root / OUTPUTS / name / filename
        atomic_write_text(path, text)
        return path

    def new_part_path(self, table: str, load_date: str, load_id: str) -> Path:
        return (
            self.root
            / table
            / f"load_date={load_date}"
            / f"{load_id}-{uuid.uuid4().hex[:8]}.parquet"
        )

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def write_part(self, data: pd.DataFrame | pa.Table, info: PartInfo) -> str:
        """Write a new part of `info.table`, carrying `info` as its metadata, for the next commit.

        The file is flushed to disk under its temporary name; :meth:`commit` gives it its final
        name when it publishes a manifest listing it. Returns that final relative path.
        """
        table = (
            data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        )
        kept = {
            k: v
            for k, v in (table.schema.metadata or {}).items()
            if not k.startswith(PART_METADATA_PREFIX.encode())
        }
        table = table.replace_schema_metadata({**kept, **info.metadata()})
        path = self.new_part_path(info.table, info.load_date, info.load_id)
        make_dirs(path.parent)
        with open_for_writing(temp_part_path(path), "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        return self.relative(path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive lock on the lake, so two loads cannot interleave their commits."""
        make_dirs(self.root)
        with open_for_writing(self.root / LOCK, "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise LakeBusyError(
                    f"another process is writing the lake at {self.root}; wait for it to finish"
                ) from exc
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def commit(self, manifest: Manifest) -> None:
        """Publish `manifest` atomically; then delete only the parts it stopped listing.

        New parts (written by :meth:`write_part`) get their final names just before the
        manifest is published, and go back to their temporary names if publishing fails. After
        publishing, the parts the previous manifest listed and this one does not (copy-on-write
        originals) are deleted, and leftovers under the lake's temporary names are swept. Files
        no manifest ever listed are never deleted.
        """
        previous = self.manifest()
        before = set(previous.listed())
        new = [rel for rel in dict.fromkeys(manifest.listed()) if rel not in before]
        renamed = self._materialise(new)
        publishing = False
        try:
            for folder in {path.parent for path in renamed}:
                fsync_dir(folder)
            manifest.parts = {
                rel: previous.parts[rel] if rel in before else part_record(self.root / rel)
                for rel in manifest.listed()
                if rel not in before or rel in previous.parts
            }
            manifest.version = max(manifest.version, previous.version) + 1
            publishing = True
            atomic_write_text(self.manifest_path, manifest.to_json())
        except BaseException:
            if not publishing or not self._published(manifest):
                self._unmaterialise(renamed)
            raise
        fsync_dir(self.root)
        for rel in sorted(before - set(manifest.listed())):
            if is_part_relative(rel):
                (self.root / rel).unlink(missing_ok=True)
        for path in leftover_files(self.root):
            path.unlink(missing_ok=True)

    def _materialise(self, rels: Iterable[str]) -> list[Path]:
        """Rename new parts from their temporary to their final names (all or none)."""
        renamed: list[Path] = []
        try:
            for rel in rels:
                final = self.root / rel
                tmp = temp_part_path(final)
                if tmp.exists():
                    os.replace(tmp, final)
                    renamed.append(final)
                elif not final.exists():
                    raise LakeStateError(
                        f"cannot publish {final}: the part was never written (no {tmp.name})"
                    )
        except BaseException:
            self._unmaterialise(renamed)
            raise
        return renamed

    @staticmethod
    def _unmaterialise(paths: Iterable[Path]) -> None:
        """Give parts of a commit that did not publish their temporary names back (swept later)."""
        for path in paths:
            with contextlib.suppress(OSError):
                os.replace(path, temp_part_path(path))

    def _published(self, manifest: Manifest) -> bool:
        """Whether the manifest on disk is `manifest` (True when unsure: then leave files be)."""
        try:
            return read_manifest(self.manifest_path).version == manifest.version
        except LakeStateError:
            return self.manifest_path.exists()


class LakeBusyError(RuntimeError):
    """Another process holds the lake's write lock."""
