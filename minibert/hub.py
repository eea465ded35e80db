"""A model's files: finding them (a local directory, a local file, or a Hugging Face Hub id), and writing
them so that an interruption never leaves a half-written file; the tokenizer's two files (vocab.txt and
tokenizer_config.json) are found and written here too.

huggingface_hub does the downloading and caching, so `HF_HUB_OFFLINE=1`, `HF_HOME` and the shared
cache behave exactly as they do for transformers.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path


class HubError(OSError):
    """A model or vocabulary could not be found locally nor fetched from the Hub.

    The message is one line: what went wrong, then how to fix it from Python. `script_message(flag)` gives
    the same line with the fix said for a command line ("... pass a local directory with --model DIR").
    """

    def __init__(self, problem: str, remedy: str = "", script_remedy: str | None = None):
        super().__init__(f"{problem}; {remedy}" if remedy else problem)
        self.problem = problem
        self.remedy = remedy
        self.script_remedy = remedy if script_remedy is None else script_remedy  # may hold "{flag}"

    def script_message(self, flag: str) -> str:
        remedy = self.script_remedy.replace("{flag}", flag)
        return f"{self.problem}; {remedy}" if remedy else self.problem


class NotCachedError(HubError):
    """Offline (HF_HUB_OFFLINE=1 or local_files_only=True) and the local cache does not hold the file."""


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def looks_like_path(name: str) -> bool:
    """Hub ids are "name" or "org/name"; anything else (a leading dot or slash, two slashes) is a path."""
    return not _HUB_ID.match(name)


def is_hub_id(name_or_path) -> bool:
    """True for "bert-base-uncased" or "org/name" when no such local directory or file exists."""
    if not isinstance(name_or_path, str) or Path(name_or_path).expanduser().exists():
        return False
    return not looks_like_path(name_or_path)


def resolve(
    name_or_path: str | os.PathLike,
    filenames: list[str],
    *,
    cache_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
) -> dict[str, Path]:
    """Find the files a model needs and return {filename: local path} for those that exist.

    Args:
        name_or_path: a local directory, or a Hub id such as "bert-base-uncased" or "org/name".
        filenames: the files to look for; the ones that exist are returned, the rest are left out.
        cache_dir, revision, local_files_only, force_download: as in `huggingface_hub.hf_hub_download`.

    Raises:
        HubError: the directory does not exist; the Hub refuses (unknown or gated repository, unknown
            revision), fails (5xx, network) or is offline for a file the cache does not hold.
    """
    where = _where(name_or_path, filenames)
    if isinstance(where, Path):
        return {f: where / f for f in filenames if (where / f).is_file()}
    found = {}
    for filename in filenames:
        try:
            path = fetch(where, filename, cache_dir=cache_dir, revision=revision,
                         local_files_only=local_files_only, force_download=force_download)
        except NotCachedError:
            if filename == filenames[0]:
                raise
            continue  # optional files (a tokenizer_config.json beside a vocab.txt) are often not cached
        if path is not None:
            found[filename] = path
    return found


def resolve_first(
    name_or_path: str | os.PathLike,
    candidates: list[str],
    *,
    cache_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
) -> dict[str, Path]:
    """The first of `candidates` that exists, as {filename: local path} ({} when none does).

    Only that one file is downloaded: the real bert-base-uncased holds both model.safetensors and
    pytorch_model.bin (440 MB each). A later candidate is tried only when the repository truly lacks the
    earlier one (the Hub answers 404 EntryNotFound); a Hub that fails (5xx, network) is an error, never a
    reason to load another file.
    """
    where = _where(name_or_path, candidates)
    if isinstance(where, Path):
        return next(({f: where / f} for f in candidates if (where / f).is_file()), {})
    not_cached = None
    for filename in candidates:
        try:
            path = fetch(where, filename, cache_dir=cache_dir, revision=revision,
                         local_files_only=local_files_only, force_download=force_download)
        except NotCachedError as e:  # offline: this one is not cached, a later one may be
            not_cached = not_cached or e
            continue
        if path is not None:
            return {filename: path}
    if not_cached is not None:
        raise not_cached
    return {}


def _where(name_or_path, filenames) -> Path | str:
    """A local directory (Path), or a Hub id (str); HubError for a path that is not a directory."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"expected a Hub id or a directory path, got {type(name_or_path).__name__}")
    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise HubError(f"{name!r} is a file; pass the directory that holds {', '.join(filenames)}")
    if isinstance(name_or_path, os.PathLike) or looks_like_path(name):
        raise HubError(
            f"no such directory: {name!r}; pass a directory that holds {filenames[0]} "
            f"(for example one written by save_pretrained), or a Hub id such as 'bert-base-uncased'"
        )
    return name


def fetch(repo_id: str, filename: str, *, cache_dir=None, revision=None, local_files_only=False,
          force_download=False) -> Path | None:
    """One file of a Hub repository: its path in the local cache, downloaded when needed; None when the
    repository has no such file.

    Before huggingface_hub downloads, one HEAD request without retries asks whether the Hub answers. If it
    does not (5xx, network), the cached copy is used at once, or the error names the status and the URL:
    left to itself, huggingface_hub would retry for about 23 s before saying that it cannot connect.
    """
    from httpx2 import TransportError  # huggingface_hub's HTTP client: refused, reset or dropped connections
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        XetDownloadError,
    )

    offline = constants.is_offline_mode()
    if offline or local_files_only:
        if force_download:
            why = "HF_HUB_OFFLINE=1 is set" if offline else "local_files_only=True"
            raise HubError(f"force_download=True needs the Hugging Face Hub, but {why}", "drop one of the two")
        return _from_cache(repo_id, filename, cache_dir, revision, not_cached=_offline_error(repo_id, filename, offline))

    url = hf_hub_url(repo_id, filename, revision=revision)
    try:
        get_hf_file_metadata(url)  # the HEAD request: no retries, raises at once on any failure
    except RemoteEntryNotFoundError:
        pass  # hf_hub_download below asks again and records the absence in the cache (for offline use)
    except (HfHubHTTPError, TransportError) as e:
        refusal = _refusal(repo_id, revision, e)
        if refusal is not None:
            raise refusal from None
        if not force_download:  # the Hub is down or unreachable: the cached copy is as good as it gets
            return _from_cache(repo_id, filename, cache_dir, revision, not_cached=_unreachable(repo_id, filename, url, e))
        raise _unreachable(repo_id, filename, url, e) from None
    try:
        return Path(hf_hub_download(repo_id, filename, cache_dir=cache_dir, revision=revision, force_download=force_download))
    except RemoteEntryNotFoundError:
        return None  # the repository has no such file; the caller decides whether that matters
    except LocalEntryNotFoundError as e:  # the Hub stopped answering between our HEAD and its own
        raise _unreachable(repo_id, filename, url, e) from None
    except (HfHubHTTPError, XetDownloadError, TransportError, OSError) as e:  # 5xx on the body, a dropped connection, a full disk
        raise HubError(
            f"downloading {filename!r} of {repo_id!r} from {_url(e, url)} failed: {_reason(e)}",
            "try again (huggingface_hub starts the file over)",
        ) from None


def _from_cache(repo_id, filename, cache_dir, revision, not_cached: HubError) -> Path | None:
    from huggingface_hub import _CACHED_NO_EXIST, try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
    if cached is _CACHED_NO_EXIST:
        return None  # an earlier download found that the repository has no such file
    if cached is None:
        raise not_cached from None  # one line: the HTTP error it replaces is said in its message
    return Path(cached)


def _local_dir_remedy(repo_id: str) -> tuple[str, str]:
    name = repo_id.split("/")[-1]
    return (
        f"or pass a local directory that holds config.json and model.safetensors (for example from_pretrained('/path/to/{name}'))",
        "or pass a local directory with {flag} DIR",
    )


def _offline_error(repo_id: str, filename: str, offline: bool) -> NotCachedError:
    why = "HF_HUB_OFFLINE=1 is set (the Hugging Face Hub is not reachable)" if offline else "local_files_only=True"
    local, local_script = _local_dir_remedy(repo_id)
    first = "download it once with network access (unset HF_HUB_OFFLINE)" if offline else "download it once with network access"
    return NotCachedError(
        f"cannot fetch {filename!r} of {repo_id!r}: {why} and no cached copy exists",
        f"{first}, {local}",
        f"{first}, {local_script}",
    )


def _status(e: Exception) -> str:
    response = getattr(e, "response", None)
    if response is None:
        return ""
    return f"{response.status_code} {response.reason_phrase}".strip()


def _url(e: Exception, default: str) -> str:
    """The URL the failed request went to (a download may have been redirected away from the resolve URL)."""
    response = getattr(e, "response", None)
    if response is not None:
        return str(response.url)
    try:
        return str(e.request.url)  # httpx2's transport errors carry their request
    except (AttributeError, RuntimeError):
        return default


def _reason(e: Exception) -> str:
    """One line on what the Hub or the network did: "the Hub answered 500 Internal Server Error", ..."""
    status = _status(e)
    if status:
        return f"the Hub answered {status}"
    detail = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {detail}" if detail else type(e).__name__


def _unreachable(repo_id: str, filename: str, url: str, e: Exception) -> HubError:
    local, local_script = _local_dir_remedy(repo_id)
    status = _status(e)
    what = f"the Hub answered {status} for {url}" if status else f"the Hub at {url} is not reachable ({_reason(e)})"
    return HubError(
        f"cannot fetch {filename!r} of {repo_id!r}: {what} and no cached copy exists",
        f"try again later, {local}",
        f"try again later, {local_script}",
    )


def _refusal(repo_id: str, revision: str | None, e: Exception) -> HubError | None:
    """The Hub's answers that no retry or cache can fix: unknown repository or revision, gated, forbidden."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    status, url = _status(e), _url(e, "")
    page = f"{constants.ENDPOINT}/{repo_id}"
    if isinstance(e, GatedRepoError) or status.startswith("403"):
        what = "is a gated model" if isinstance(e, GatedRepoError) else "cannot be read with your credentials"
        return HubError(
            f"{repo_id!r} {what}: the Hub answered {status} for {url}",
            f"log in with `hf auth login` (or set HF_TOKEN) and accept the model's terms on {page}",
        )
    if isinstance(e, RepositoryNotFoundError):
        return HubError(
            f"{repo_id!r} is neither a local directory nor a model on the Hugging Face Hub "
            f"(the Hub answered {status} for {url})",
            "check the spelling, or log in with `hf auth login` for a private model",
        )
    if isinstance(e, RevisionNotFoundError):
        return HubError(
            f"{repo_id!r} has no revision {revision!r} on the Hub (it answered {status} for {url})",
            f"pass an existing branch, tag or commit hash of {repo_id!r} (see {page}/tree/main)",
        )
    return None


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


# ---- The tokenizer's files: vocab.txt and tokenizer_config.json ---------------------------------

VOCAB_NAME = "vocab.txt"
CONFIG_NAME = "tokenizer_config.json"
# Names whose vocabulary ships with minibert: bert-base-uncased's Hub ids (same file, md5
# 64800d5d8528ce344256daf115d4965e), and the movie-review vocabulary trained by scripts/train_vocab.py.
SHIPPED_VOCABS = {
    "bert-base-uncased": "bert-base-uncased.txt",
    "google-bert/bert-base-uncased": "bert-base-uncased.txt",
    "movie-reviews-wordpiece": "movie-reviews-wordpiece.txt",
}


def first_bad_utf8(path: str | os.PathLike) -> str:
    """Where a file stops being UTF-8, for error messages: "byte 0xe9 at position 34, line 6".

    (A UnicodeDecodeError raised while reading a text file counts from the reader's last buffer.)
    """
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"byte {data[e.start]:#04x} at position {e.start}, line {data.count(10, 0, e.start) + 1}"
    return "valid UTF-8"


def tokenizer_files(
    name_or_path: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
) -> tuple[Path, dict]:
    """The vocabulary file of a Hub id, a directory or a vocab file path, and the options its
    tokenizer_config.json sets (do_lower_case, strip_accents, tokenize_chinese_chars, model_max_length).

    "bert-base-uncased" uses the vocabulary shipped with minibert (no network).
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"from_pretrained expects a Hub id, a directory or a vocab file path, got {type(name_or_path).__name__}"
        )
    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    if path.is_file():
        return path, {}
    if not path.exists() and name in SHIPPED_VOCABS and revision is None:
        return _shipped_vocab(SHIPPED_VOCABS[name]), {}
    # force_download is passed only when asked for, so that older resolve versions work too.
    extra = {"force_download": True} if force_download else {}
    files = resolve(
        name_or_path,
        [VOCAB_NAME, CONFIG_NAME],
        cache_dir=cache_dir,
        revision=revision,
        local_files_only=local_files_only,
        **extra,
    )
    if VOCAB_NAME not in files:
        where = "" if path.is_dir() else " (or it is not in the local cache and the Hub cannot be reached)"
        raise FileNotFoundError(f"{name!r} has no {VOCAB_NAME}{where}; a BERT tokenizer needs its WordPiece vocabulary")
    options = {}
    if CONFIG_NAME in files:
        config = json.loads(files[CONFIG_NAME].read_text(encoding="utf-8"))
        options = {key: config[key] for key in ("do_lower_case", "strip_accents", "tokenize_chinese_chars") if key in config}
        # transformers writes a huge placeholder (1e30) when a model sets no limit: ignore it.
        if isinstance(config.get("model_max_length"), int) and 0 < config["model_max_length"] < 1 << 31:
            options["model_max_length"] = config["model_max_length"]
    return files[VOCAB_NAME], options


def save_tokenizer_files(save_directory: str | os.PathLike, tokens: list[str], special_tokens, options: dict) -> tuple[Path, Path]:
    """Write vocab.txt and tokenizer_config.json (with `options`) so that transformers' AutoTokenizer
    loads the directory; each file is replaced whole or not at all."""
    directory = Path(save_directory)
    if directory.exists() and not directory.is_dir():
        raise FileExistsError(f"{str(directory)!r} is a file; save_pretrained needs a directory")
    directory.mkdir(parents=True, exist_ok=True)
    vocab_path, config_path = directory / VOCAB_NAME, directory / CONFIG_NAME
    with atomic_write(vocab_path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(token + "\n" for token in tokens)
    names = dict(zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"), special_tokens))
    config = {"tokenizer_class": "BertTokenizer", **options, **names, "clean_up_tokenization_spaces": True}
    with atomic_write(config_path) as tmp:
        Path(tmp).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return vocab_path, config_path


def _shipped_vocab(filename: str) -> Path:
    """The vocabulary shipped with minibert: inside the wheel (minibert/vocab/) or in a source checkout (vocab/)."""
    here = Path(__file__).resolve().parent
    for folder in (here / "vocab", here.parent / "vocab"):
        if (folder / filename).is_file():
            return folder / filename
    raise FileNotFoundError(
        f"the vocabulary {filename} that ships with minibert is missing (looked in {here / 'vocab'} and "
        f"{here.parent / 'vocab'}); reinstall minibert, or pass the path of a vocab.txt"
    )
