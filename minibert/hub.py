"""A model's files: finding them (a local directory, a local file, or a Hugging Face Hub id), and writing
them so that an interruption never leaves a half-written file.

huggingface_hub does the downloading and caching, so `HF_HUB_OFFLINE=1`, `HF_HOME` and the shared
cache behave exactly as they do for transformers.
"""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path


class HubError(OSError):
    """A model or vocabulary could not be found locally nor fetched from the Hub."""


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def looks_like_path(name: str) -> bool:
    """Hub ids are "name" or "org/name"; anything else (a leading dot or slash, two slashes) is a path."""
    return not _HUB_ID.match(name)


def resolve(
    name_or_path: str | os.PathLike,
    filenames: list[str],
    *,
    cache_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
) -> dict[str, Path]:
    """Find the first few files a model needs and return {filename: local path} for those that exist.

    Args:
        name_or_path: a local directory, or a Hub id such as "bert-base-uncased" or "org/name".
        filenames: the files to look for; the ones that exist are returned, the rest are left out.
        cache_dir, revision, local_files_only: passed to `huggingface_hub.hf_hub_download`.

    Raises:
        HubError: the directory does not exist, or the Hub cannot be reached and holds no cached copy.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"expected a Hub id or a directory path, got {type(name_or_path).__name__}")
    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        return {f: path / f for f in filenames if (path / f).is_file()}
    if path.exists():
        raise HubError(f"{name!r} is a file; pass the directory that holds {', '.join(filenames)}")
    if isinstance(name_or_path, os.PathLike) or looks_like_path(name):
        raise HubError(
            f"no such directory: {name!r}; pass a directory that holds {filenames[0]} "
            f"(for example one written by save_pretrained), or a Hub id such as 'bert-base-uncased'"
        )
    return _download(name, filenames, cache_dir=cache_dir, revision=revision, local_files_only=local_files_only)


def _download(repo_id, filenames, *, cache_dir, revision, local_files_only) -> dict[str, Path]:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    found = {}
    for filename in filenames:
        try:
            found[filename] = Path(
                hf_hub_download(
                    repo_id,
                    filename,
                    cache_dir=cache_dir,
                    revision=revision,
                    local_files_only=local_files_only,
                )
            )
        except LocalEntryNotFoundError as e:
            if filename != filenames[0] and found:
                # Optional files (a .bin beside a .safetensors) are often simply not in the cache.
                continue
            raise HubError(
                f"cannot fetch {filename!r} of {repo_id!r}: the Hugging Face Hub is not reachable "
                f"(offline, or HF_HUB_OFFLINE=1) and no cached copy exists. Download it once with network "
                f"access, or pass a local directory that holds config.json and model.safetensors "
                f"(for example from_pretrained('/path/to/{repo_id.split('/')[-1]}'))."
            ) from e
        except EntryNotFoundError:
            continue  # this repository simply has no such file; the caller decides whether that matters
        except RepositoryNotFoundError as e:
            raise HubError(
                f"{repo_id!r} is neither a local directory nor a model on the Hugging Face Hub "
                f"(check the spelling, or log in with `hf auth login` for a private model)"
            ) from e
        except OSError as e:  # connection errors, HTTP errors other than 404
            raise HubError(f"cannot fetch {filename!r} of {repo_id!r} from the Hugging Face Hub: {e}") from e
    return found


@contextmanager
def atomic_write(path):
    """`with atomic_write(path) as tmp:` write to tmp; only a complete file replaces `path`, in one rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the mode any file the user writes gets
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
