"""Atomic file writes: a reader never sees half a file (write to a temporary name, then rename); and ``counted``,
the "N rows" of the line that reports what was written."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from safetensors import SafetensorError


def counted(n: int, noun: str) -> str:
    """``"1 row"``, ``"3 rows"``: a count with its noun (regular plurals: row, pair, user)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _to_disk(path: Path) -> None:
    """Flush a written file to the disk before it is renamed into place: after a power loss, the rename could
    otherwise be on disk and the data not, a zero-length file under the output's name."""
    fd = os.open(path, os.O_RDWR)  # Windows' fsync needs a handle that may write
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it; put it back at once
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The file gets the permissions an ordinary ``open`` would give it (0666 less the umask, or those of the
    file it replaces), not the owner-only 0600 of ``mkstemp``: runs and plots are for others to read too."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:  # named by the output, not by the temporary name no one asked for
        raise type(err)(err.errno, err.strerror, str(path)) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _to_disk(tmp_path)
        os.chmod(tmp_path, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except OSError as err:  # a full disk's error on write() names no file (filename None): it is the output's
        if err.filename not in (None, str(tmp_path), tmp_path):
            raise
        raise type(err)(err.errno, err.strerror, str(path)) from None
    except SafetensorError as err:  # safetensors' own error for a full disk: a traceback past the CLI
        raise OSError(None, f"cannot write ({first_line(err)})", str(path)) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_output(path: str | os.PathLike, folder: bool = False, flag: str = "--out",
                 inputs: Iterable[tuple[str, str | os.PathLike | None]] = (), suffix: str | None = None) -> None:
    """Stop before any work when ``path`` cannot be written: an empty name, a file where a folder is wanted (or
    the reverse), a file in the way of its folders, or a folder that is not writable. A long job should not fail
    at its end. ``inputs`` ((flag, path) pairs) are what the command reads: ``path`` must not replace one of them, nor
    a file inside an input folder (a run's config.json, a data folder's test.jsonl). ``suffix``: the one the
    file's format has (".jsonl": another would be read back as CSV or JSON, and fail)."""
    kind = "folder" if folder else "file"
    if not os.fspath(path).strip():
        raise ValueError(f"{flag}: empty path; name a {kind}")
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path}: is a file; expected a folder")
    if not folder and path.is_dir():
        raise ValueError(f"{flag} {path}: is a folder; expected a file")
    for input_flag, source in inputs:
        if source is not None and overwrites(path, Path(source)):
            raise ValueError(f"{flag} {path}: would overwrite {input_flag} {source}; choose another {kind}")
        if source is not None and folder and path.resolve() in Path(source).resolve().parents:
            # what the command writes there (a split's train.jsonl, a run's config.json) could be the input
            raise ValueError(f"{flag} {path}: holds {input_flag} {source}; choose a folder that does not")
    if suffix and path.suffix.lower() != suffix:
        raise ValueError(f"{flag} {path}: expected a {suffix} file (what it holds is written as JSON lines)")
    if not folder and path.is_file() and not path.is_symlink() and not path.stat().st_mode & stat.S_IWUSR:
        # a rename would replace it (a link is replaced, not its target)
        raise ValueError(f"{flag} {path}: is read-only (kept from being replaced); choose another file")
    for ancestor in (path, *path.parents) if folder else path.parents:
        if ancestor.exists():  # the nearest existing one: where the missing folders would be made
            if not ancestor.is_dir():
                raise ValueError(f"{flag} {path}: {ancestor} is a file, not a folder")
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise ValueError(f"{flag} {path}: {ancestor} is not writable")
            return


RUN_CONFIG, RUN_WEIGHTS = "config.json", "model.safetensors"  # what a command reads from a run folder
RUN_FILES = (RUN_CONFIG, RUN_WEIGHTS)
SPLIT_SUFFIXES = (".jsonl", ".parquet", ".csv", ".json")  # a data folder's train/test file, in the order looked for
SAVED_DATASET_FILES = ("dataset_info.json", "dataset_dict.json", "state.json")  # and a saved dataset's, with .arrow


def read_from_folder(path: Path) -> bool:
    """Whether a command reads a file so named from an input folder: a run's files, a data folder's train or
    test split, a file of a dataset saved by ``datasets``. Other files there (an eval.json) are outputs."""
    return (path.name in RUN_FILES or path.name in SAVED_DATASET_FILES or path.suffix == ".arrow"
            or path.stem in ("train", "test") and path.suffix in SPLIT_SUFFIXES)


def overwrites(out: Path, source: Path) -> bool:
    """Whether writing ``out`` replaces ``source``, or a file the folder ``source`` is read through (whether it
    exists or not: a new test.jsonl beside a test.parquet would change what is read), or one of a run's checkpoints
    (what ``fit --resume`` reads)."""
    out, source = out.resolve(), source.resolve()
    return out == source or (source.is_dir() and source in out.parents and (
        read_from_folder(out) or out.relative_to(source).parts[0] == "checkpoints"))  # a run's, for fit --resume


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def jsonl_text(rows: Iterable[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    write_text(path, jsonl_text(rows))


def write_files(texts: dict[Path, str]) -> None:
    """Write several files as one output (a split's train.jsonl, test.jsonl and README.md): each to a temporary
    name, and none renamed into place unless all were written."""
    with contextlib.ExitStack() as renames:
        temporaries = {path: renames.enter_context(atomic_path(path)) for path in texts}
        for path, tmp in temporaries.items():
            try:
                tmp.write_text(texts[path], encoding="utf-8")
            except OSError as err:  # named here: every atomic_path around would take a nameless error as its own
                raise type(err)(err.errno, err.strerror, str(path)) from None


def invalid_json(err: json.JSONDecodeError, line: bool = True) -> str:
    """json's error as pluralign words it everywhere: "invalid JSON (Expecting value at line 3, column 5)", lines and
    columns 1-based as an editor counts; ``line=False`` where the caller names the line (a JSON-lines record)."""
    where = f"line {err.lineno}, column {err.colno}" if line else f"column {err.colno}"
    return f"invalid JSON ({err.msg.removesuffix(' at')} at {where})"  # some of json's messages end in "at"


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file pluralign wrote, or one line naming the file and what is wrong with it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text (not a file pluralign wrote)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: {invalid_json(err)}") from None


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's text (its type's name if it has none): a library's multi-line
    message kept to the one line an error of ours allows."""
    return next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)


def state_mismatches(expected: dict, found: dict, there: str = "the file") -> list[str]:
    """How a saved state dict ``found`` differs from the ``expected`` one of the model that would load it: the
    names only one holds, then the shapes that differ; one line each ("key: [8, 64] in the file, [4, 64] in the
    model"), so an error can name the first and count the rest instead of load_state_dict's many lines."""
    problems = [f"{key}: in the model, not in {there}" for key in expected if key not in found]
    problems += [f"{key}: in {there}, not in the model" for key in found if key not in expected]
    return problems + [f"{key}: {list(found[key].shape)} in {there}, {list(value.shape)} in the model"
                       for key, value in expected.items()
                       if key in found and getattr(found[key], "shape", None) != value.shape]


def fingerprint(tensors: dict[str, Any]) -> str:
    """sha256 of tensors' names, dtypes, shapes and bytes, in name order."""
    import torch  # here, not at the top: the data tools import this module without needing torch

    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
