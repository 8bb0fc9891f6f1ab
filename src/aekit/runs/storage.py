"""Files, written safely and read without running code: the one writer of every file the tool writes,
JSON and safetensors.

Nothing here unpickles: `safetensors` stores raw tensors and a JSON header, so loading a file can never
run code. Every file goes through `atomic_write` (a folder of files through `atomic_folder`), which:

- writes to a temporary name in the target's folder (`.NAME.PID-XXXX.tmp`), fsyncs it and renames it
  into place, so a crash leaves the previous version or the whole new one, never a part;
- refuses to write onto what the same command reads (`note_read`: the data, a run's folder, a codec
  file; compared by resolved path and by inode, so neither a symlink nor a hard link gets around it),
  or into a folder it reads;
- refuses a FIFO, a device, a socket or a folder where a file is expected (and anything but a folder
  where a folder is expected): they are never opened, so nothing blocks, and never replaced;
- for the outputs a user named (`expect_output`: --out, --json, --report), refuses an existing one
  unless overwrite was given, checked when the command starts and again at the rename;
- removes its temporary file on any exit: an exception, or SIGINT / SIGTERM, which `handle_signals`
  (installed once, by the command line) turns into `Interrupted`, a KeyboardInterrupt. A signal that
  arrives while a temporary file is created or renamed is delivered right after, so no temporary file
  escapes the list of those to remove. SIGKILL cannot be caught: the temporary file it leaves is
  removed by the next write of the same file, once the process that made it is gone.

Library calls write as before (an existing file is replaced): the checks on reads and outputs apply
to what a command registered, and `reset()` forgets them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError, safe_open

from aekit.errors import CheckpointError, ConfigError

_UMASK = os.umask(0)
os.umask(_UMASK)
_SUFFIX = ".tmp"


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised where the program is (after the write it interrupted removed its temporary
    file); a KeyboardInterrupt, so that whatever handles Ctrl-C handles a SIGTERM too."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


@dataclass
class _Output:
    flag: str  # the option that named it (--out, --json, ...), for messages
    overwrite: bool
    folder: bool


@dataclass
class _State:
    reads: dict  # resolved path -> what the command reads it as ("--data", "the run")
    inodes: dict  # (st_dev, st_ino) -> the same description: hard links and symlinks name one file
    outputs: dict  # resolved path -> _Output
    temporaries: set  # temporary files and folders now being written
    written: list  # what this command has written, whole, in order
    critical: int = 0  # > 0 while a temporary file is created or renamed: a signal waits
    pending: int | None = None  # the signal that waits


_state = _State({}, {}, {}, set(), [])


def reset() -> None:
    """Forget what the current command reads and names as outputs (the command line calls this first)."""
    _state.reads.clear()
    _state.inodes.clear()
    _state.outputs.clear()
    _state.written.clear()


def written() -> list[Path]:
    """The files (and folders) written whole since `reset()`."""
    return list(_state.written)


# ----- what a command reads and what it writes -----


def _resolved(path: Path) -> Path:
    """An absolute path with every symlink of its folders resolved (the last part too, when it is a link)."""
    return Path(os.path.realpath(path))


def note_read(path, what: str) -> None:
    """Record that this command reads `path` (a file or a folder) as `what`: no write goes onto it, or into it."""
    path = Path(path)
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # not a path on this machine (a dataset name): nothing to protect
        return
    _state.reads[_resolved(path)] = what
    _state.inodes[(st.st_dev, st.st_ino)] = what


def _read_as(path: Path) -> str | None:
    """How the command reads `path`, if it does: the path itself, a folder around it, or the same inode."""
    target = _resolved(path)
    for read, what in _state.reads.items():
        if target == read:
            return f"is {what}"
        if read in target.parents:
            return f"is inside {what}"
    try:
        st = os.stat(path)
    except OSError:
        return None
    what = _state.inodes.get((st.st_dev, st.st_ino))
    return None if what is None else f"is {what} (the same file under another name)"


def _kind(path: Path) -> str | None:
    """None when path does not exist; else 'file', 'folder', or what else it is (followed through links)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be examined ({e.strerror})") from None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    return {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
            stat.S_IFSOCK: "a socket"}.get(stat.S_IFMT(mode), "not a regular file")


def check_target(path, flag: str = "", folder: bool = False) -> Path:
    """ConfigError unless path may be written: its folder exists, it is what it should be (a regular file,
    or a folder when `folder`) or absent, and the command does not read it."""
    path = Path(path)
    name = f"{flag} {path}" if flag else str(path)
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(f"{name}: folder {parent} does not exist")
    kind = _kind(path)
    if folder and kind not in (None, "folder"):
        raise ConfigError(f"{name} exists and is {'a file' if kind == 'file' else kind}, not a folder: "
                          "it is not replaced by a folder")
    if not folder and kind not in (None, "file"):
        raise ConfigError(f"{name} is {'a folder' if kind == 'folder' else kind}, not a regular file: "
                          "it is not replaced by one; choose a file name")
    how = _read_as(path)
    if how is not None:
        onto = "into it" if how.startswith("is inside") else "onto its input"
        raise ConfigError(f"{name} {how}, which this command reads: refusing to write {onto}; choose another path")
    return path


def expect_output(path, flag: str, overwrite: bool = False, folder: bool = False) -> Path:
    """A file (or, with `folder`, a folder of files written as one) that the user named: checked now, before
    the work, and again when it is written. An existing one (a folder: a non-empty one) is refused unless
    `overwrite`."""
    path = check_target(path, flag, folder)
    other = _state.outputs.get(_resolved(path))
    if other is not None and other.flag != flag:
        raise ConfigError(f"{flag} {path} is also {other.flag}: give each output its own path")
    if not overwrite and _occupied(path, folder):
        raise ConfigError(f"{flag} {path} already exists: pass --overwrite to replace it, or choose another path")
    _state.outputs[_resolved(path)] = _Output(flag, overwrite, folder)
    return path


def _occupied(path: Path, folder: bool) -> bool:
    """path exists (a folder: holds something)."""
    if folder:
        return path.is_dir() and _holds_files(path)
    return path.exists()


def _holds_files(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return any(True for _ in entries)


def _check_write(path: Path, folder: bool) -> None:
    """The checks of a write, at the write: a declared output keeps its flag's name and its overwrite."""
    declared = _state.outputs.get(_resolved(path))
    check_target(path, declared.flag if declared else "", folder)
    if declared is not None and not declared.overwrite and _occupied(path, folder):
        raise ConfigError(f"{declared.flag} {path} appeared while this command ran: not replaced "
                          "(pass --overwrite to replace it)")


# ----- temporary files, signals -----


@contextlib.contextmanager
def _uninterrupted():
    """A signal that arrives in here is raised when the block ends: a temporary file is created and added
    to the list, or renamed and taken off it, as one step."""
    _state.critical += 1
    try:
        yield
    finally:
        _state.critical -= 1
        if _state.critical == 0 and _state.pending is not None:
            signum, _state.pending = _state.pending, None
            raise Interrupted(signum)


def _on_signal(signum, frame) -> None:
    if _state.critical:
        _state.pending = signum
        return
    raise Interrupted(signum)


def handle_signals():
    """SIGINT and SIGTERM raise Interrupted from here on (the main thread only); returns what restores the
    handlers that were there before."""
    try:
        before = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: the signals stay as they were
        return lambda: None

    def restore() -> None:
        for s, handler in before.items():
            signal.signal(s, handler)

    return restore


def remove_temporaries() -> None:
    """Remove every temporary file or folder a write of this process left (the last safety net on exit)."""
    with _uninterrupted():
        for tmp in list(_state.temporaries):
            _remove(Path(tmp))
            _state.temporaries.discard(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _prefix(path: Path) -> str:
    return f".{path.name}."


def _remove_stale(path: Path) -> None:
    """Temporary files of `path` whose process is gone (killed by SIGKILL, or by a power cut): removed.
    A live process's are left alone (another aekit may be writing the same file right now)."""
    prefix = _prefix(path)
    try:
        with os.scandir(path.parent) as found:
            entries = [e.name for e in found if e.name.startswith(prefix) and e.name.endswith(_SUFFIX)]
    except OSError:
        return
    for name in entries:
        pid = name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            _remove(path.parent / name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _temporary(path: Path, folder: bool) -> str:
    """A new temporary file (or folder) beside path, on the list of those to remove."""
    with _uninterrupted():
        make = tempfile.mkdtemp if folder else tempfile.mkstemp
        made = make(prefix=f"{_prefix(path)}{os.getpid()}-", suffix=_SUFFIX, dir=path.parent)
        tmp = made if folder else made[1]
        if not folder:
            os.close(made[0])
        _state.temporaries.add(tmp)
    return tmp


def _discard(tmp: str) -> None:
    with _uninterrupted():
        _remove(Path(tmp))
        _state.temporaries.discard(tmp)


# ----- the one writer -----


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), then rename tmp_path to path (atomic on POSIX), after the checks above.

    The data reach the disk (fsync) before the rename, and the rename before we return,
    so after a crash or a power cut the file is either the old one or the whole new one.
    A replaced file keeps its permissions; a new one gets the usual ones (the umask's).
    """
    path = Path(path)
    _check_write(path, folder=False)
    _remove_stale(path)
    tmp = _temporary(path, folder=False)
    try:
        write(tmp)
        mode = os.stat(path).st_mode & 0o7777 if path.is_file() else 0o666 & ~_UMASK  # mkstemp's is 0600
        os.chmod(tmp, mode)
        _fsync(tmp)
        _check_write(path, folder=False)  # what may have appeared there meanwhile
        _put_in_place(tmp, path, os.replace)
    except BaseException:
        _discard(tmp)
        raise
    _fsync(path.parent)


def _put_in_place(tmp, path: Path, move) -> None:
    """move(tmp, path), the temporary no longer ours to remove and path recorded as written, with SIGINT and
    SIGTERM held back until all three are done (the one step atomic_write and atomic_folder share)."""
    with _uninterrupted():
        move(tmp, path)
        _state.temporaries.discard(tmp)
        _state.written.append(path)


def atomic_folder(path: Path, fill) -> None:
    """Call fill(tmp_folder), then put tmp_folder in path's place: a folder of files written as one (an
    existing one is replaced whole, never mixed with the new files; the check on it is expect_output's)."""
    path = Path(path)
    _check_write(path, folder=True)
    _remove_stale(path)
    tmp = _temporary(path, folder=True)
    try:
        fill(tmp)
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp's is 0700
        _fsync(tmp)
        _check_write(path, folder=True)
        _put_in_place(tmp, path, lambda new, target: _swap(Path(new), target))
    except BaseException:
        _discard(tmp)
        raise
    _fsync(path.parent)


def _swap(new: Path, path: Path) -> None:
    """new in path's place: a rename, or (path holds files) two renames and the removal of the old folder."""
    if not path.is_dir() or not _holds_files(path):
        os.replace(new, path)  # onto nothing or onto an empty folder: one rename
        return
    old = path.parent / f"{_prefix(path)}{os.getpid()}-old{_SUFFIX}"
    _remove(old)
    os.rename(path, old)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _fsync(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder: the rename itself is still atomic
        pass
    finally:
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path, error=CheckpointError, max_bytes: int = 64 << 20) -> object:
    """The JSON document in path; `error` naming the file (and line and column) when it is missing,
    too large, nested too deeply or not JSON."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file not found")
    if path.stat().st_size > max_bytes:
        raise error(f"{path}: {path.stat().st_size} bytes, more than the {max_bytes} a JSON file of ours can be")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise error(f"{path} is not valid JSON: line {e.lineno}, column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise error(f"{path} is not valid JSON: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except RecursionError:
        raise error(f"{path} is not valid JSON for us: nested too deeply") from None


# safetensors.torch imports torch: imported where a tensor is read or written, so that the command line
# starts without torch (it imports this module for the writer and the signals).


def write_tensors(path: Path, tensors: dict, metadata: dict | None = None) -> None:
    """A safetensors file; `metadata` (JSON) travels in its header."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {"json": json.dumps(metadata)} if metadata is not None else None
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def read_tensors(path: Path) -> dict:
    """Tensors of a safetensors file; anything else (a pickle, a truncated file) is refused."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, ValueError, OSError) as e:  # header/length checks: no code runs
        raise CheckpointError(f"{path} is not a valid safetensors file ({e}); refusing to load it") from None


def read_tensor_metadata(path: Path) -> dict:
    """The JSON metadata written by write_tensors ({} when there is none)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        data = json.loads(meta.get("json", "{}"))
    except (SafetensorError, ValueError, OSError, RecursionError) as e:
        raise CheckpointError(f"{path} is not a valid safetensors file ({e}); refusing to load it") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: its metadata is not a JSON object")
    return data


def read_tensor_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype) of every tensor in a safetensors file, read from its header only."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except (SafetensorError, ValueError, OSError) as e:
        raise CheckpointError(f"{path} is not a valid safetensors file ({e}); refusing to load it") from None


def read_some_tensors(path: Path, names) -> dict:
    """Only the named tensors of a safetensors file (the rest is never read)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in names}
    except (SafetensorError, ValueError, OSError) as e:
        raise CheckpointError(f"{path} is not a valid safetensors file ({e}); refusing to load it") from None
