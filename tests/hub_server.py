"""A local imitation of the Hugging Face Hub, served over HTTP on 127.0.0.1, so that the real huggingface_hub
download code runs in the tests: its HEAD and GET requests, redirects, headers, error codes and cache.

It answers `/{repo_id}/resolve/{revision}/{filename}` as huggingface_hub 2.x reads the Hub (see
huggingface_hub/file_download.py `get_hf_file_metadata`, `http_get` and utils/_http.py `hf_raise_for_status`):

- a small file (config.json, vocab.txt): 200 with `ETag` (the git blob id), `X-Repo-Commit`, `Content-Length`;
- a large file (*.safetensors, *.bin, stored with git LFS on the Hub): 302 to a CDN with `X-Linked-Etag`
  (the sha256), `X-Linked-Size` and `X-Repo-Commit`. The CDN is this same server under the name `localhost`:
  another origin for huggingface_hub, so it stops at the 302 and downloads from the CDN without credentials,
  as it does from the real Hub. No Xet headers are sent, so the plain HTTP download runs;
- errors with the Hub's `X-Error-Code`: RepoNotFound, GatedRepo, RevisionNotFound, EntryNotFound.

Faults are set per repository (or for the whole Hub with `down`), and every request is recorded, so a test
can assert exactly what was asked for and downloaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

LFS_SUFFIXES = (".safetensors", ".bin")


@dataclass
class Repo:
    files: dict[str, bytes]
    commit: str = "0123456789abcdef0123456789abcdef01234567"  # what X-Repo-Commit says "main" is
    gated: int | None = None  # 401 (not logged in) or 403 (terms not accepted): X-Error-Code GatedRepo
    head_status: dict[str, int] = field(default_factory=dict)  # filename -> status of its HEAD (e.g. 500)
    get_status: dict[str, int] = field(default_factory=dict)  # filename -> status of its download (GET)
    drop: dict[str, str] = field(default_factory=dict)  # filename -> "reset" or "close" halfway through the body


@dataclass
class Request:
    method: str
    path: str
    range: str | None


class HubImitation:
    """`with HubImitation(repos) as hub:` serves `repos` ({repo_id: Repo}) at `hub.endpoint`."""

    def __init__(self, repos: dict[str, Repo]):
        self.repos = repos
        self.requests: list[Request] = []
        self.down: int | None = None  # a status every request gets, e.g. 500: the whole Hub is failing
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HubImitation:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def asked(self, method: str | None = None) -> list[str]:
        """The paths of the files asked for so far (with one method only, when given). Left out: the Hub API
        calls huggingface_hub makes for itself (GET /api/agent-harnesses, its user-agent registry)."""
        return [r.path for r in self.requests if method in (None, r.method) and not r.path.startswith("/api/")]

    def downloads(self) -> list[str]:
        """The names of the files whose bytes were asked for (GET), in order."""
        return [path.rsplit("/", 1)[-1] for path in self.asked("GET")]


def _etag(data: bytes, lfs: bool) -> str:
    if lfs:
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id


def _handler(hub: HubImitation):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep pytest's output clean
            pass

        def do_HEAD(self):
            self._answer(send_body=False)

        def do_GET(self):
            self._answer(send_body=True)

        # -- the routes ------------------------------------------------------------------------------

        def _answer(self, send_body: bool):
            hub.record(Request(self.command, self.path, self.headers.get("Range")))
            if hub.down is not None:
                return self._error(hub.down, None, "Internal Error", commit=None)
            if self.path.startswith("/api/"):  # this imitation serves files only, not the Hub's API
                return self._error(404, None, "Not Found", commit=None)
            if self.path.startswith("/cdn/"):
                return self._cdn(send_body)
            repo_id, sep, rest = self.path.lstrip("/").partition("/resolve/")
            revision, _, filename = rest.partition("/")
            repo_id, revision, filename = unquote(repo_id), unquote(revision), unquote(filename)
            repo = hub.repos.get(repo_id)
            if not sep or repo is None:
                return self._error(404, "RepoNotFound", "Repository not found", commit=None)
            if repo.gated:
                return self._error(repo.gated, "GatedRepo", f"Access to model {repo_id} is restricted.", commit=None)
            if revision not in ("main", repo.commit):
                return self._error(404, "RevisionNotFound", "Invalid rev id: " + revision, commit=None)
            if filename not in repo.files:
                return self._error(404, "EntryNotFound", "Entry not found", commit=repo.commit)
            if filename in repo.head_status and not send_body:
                return self._error(repo.head_status[filename], None, "Internal Error", commit=None)
            data = repo.files[filename]
            lfs = filename.endswith(LFS_SUFFIXES)
            if lfs:  # the Hub redirects LFS files to its CDN; the metadata rides on the redirect
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{hub.port}/cdn/{repo_id}/{filename}")
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("X-Linked-Etag", f'"{_etag(data, lfs=True)}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("ETag", f'"{_etag(data, lfs=False)}"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if filename in repo.get_status and send_body:
                return self._error(repo.get_status[filename], None, "Internal Error", commit=None)
            self.send_response(200)
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("ETag", f'"{_etag(data, lfs=False)}"')
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if send_body:
                self.wfile.write(data)
            return None

        def _cdn(self, send_body: bool):
            repo_id, _, filename = self.path[len("/cdn/") :].rpartition("/")
            repo = hub.repos[repo_id]
            data = repo.files[filename]
            if filename in repo.get_status and send_body:
                return self._error(repo.get_status[filename], None, "Internal Error", commit=None)
            start = 0
            if self.headers.get("Range"):  # "bytes=N-": huggingface_hub resuming after a dropped connection
                start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if not send_body:
                return None
            if filename in repo.drop:
                return self._drop(data[start:], repo.drop[filename], resumed=bool(start))
            self.wfile.write(data[start:])
            return None

        def _drop(self, body: bytes, how: str, resumed: bool):
            """Send part of the body, then end the connection: with a reset (RST, "connection reset by peer")
            or a clean close (FIN, "peer closed connection without sending complete message body")."""
            if not resumed:
                self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            if how == "reset":  # SO_LINGER 0: close() sends a reset instead of a clean end
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

        def _error(self, status: int, code: str | None, message: str, commit: str | None):
            body = json.dumps({"error": message}).encode()
            self.send_response(status)
            if code is not None:
                self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            if commit is not None:
                self.send_header("X-Repo-Commit", commit)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler


# ---- a repository laid out like the real bert-base-uncased ---------------------------------------------


def bert_base_layout(vocab_file: Path, seed: int = 0):
    """The files of a tiny BertForPreTraining in the layout of the Hub's bert-base-uncased: keys with the
    `bert.` prefix, LayerNorm `gamma`/`beta`, the `cls.*` heads, the `position_ids` buffer, and the weights
    twice, as model.safetensors and pytorch_model.bin. Returns (files, the transformers model they hold)."""
    import torch
    import transformers
    from safetensors.torch import save

    vocab = vocab_file.read_bytes()
    config = transformers.BertConfig(
        vocab_size=len(vocab.decode().splitlines()), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=48, max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    model = transformers.BertForPreTraining(config).eval()
    with torch.no_grad():  # trained-looking weights, so that a wrong key would change the outputs
        for name, p in model.named_parameters():
            p.add_(torch.randn_like(p) * 0.1)
    state = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("cls.predictions.decoder")}
    old_names = {}  # the names of the TF-converted original
    for key, tensor in state.items():
        key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        old_names[key] = tensor.contiguous()
    old_names["bert.embeddings.position_ids"] = torch.arange(config.max_position_embeddings)[None]
    bin_file = io.BytesIO()
    torch.save(old_names, bin_file)
    hf_config = {
        "architectures": ["BertForMaskedLM"], "model_type": "bert", "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": config.hidden_size,
        "initializer_range": 0.02, "intermediate_size": config.intermediate_size, "layer_norm_eps": 1e-12,
        "max_position_embeddings": config.max_position_embeddings, "num_attention_heads": config.num_attention_heads,
        "num_hidden_layers": config.num_hidden_layers, "pad_token_id": 0, "position_embedding_type": "absolute",
        "transformers_version": "4.6.0.dev0", "type_vocab_size": 2, "use_cache": True,
        "vocab_size": config.vocab_size,
    }
    files = {
        "config.json": json.dumps(hf_config, indent=2).encode(),
        "vocab.txt": vocab,
        "model.safetensors": save(old_names, metadata={"format": "pt"}),
        "pytorch_model.bin": bin_file.getvalue(),
    }
    return files, model
