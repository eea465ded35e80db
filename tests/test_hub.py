"""Loading from the Hub as a new user would, through the real huggingface_hub code, against a local
imitation of the Hub (tests/hub_server.py) that answers like huggingface.co, faults included."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest
import torch

from minibert import BertForPreTraining, BertModel, BertTokenizer
from minibert.hub import HubError, resolve

from hub_server import HubImitation, Repo, bert_base_layout

ROOT = Path(__file__).resolve().parents[1]
GARBAGE = b"\x13\x00\x00\x00\x00\x00\x00\x00not a safetensors header at all"


@pytest.fixture(scope="module")
def bert_files(vocab_path):
    return bert_base_layout(vocab_path)


def point_huggingface_hub_at(monkeypatch, endpoint: str) -> None:
    """What HF_ENDPOINT does, for this test only: huggingface_hub reads its constants at import, and
    conftest sets HF_HUB_OFFLINE=1 for every other test."""
    c = huggingface_hub.constants
    monkeypatch.setattr(c, "ENDPOINT", endpoint)
    monkeypatch.setattr(c, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)


@pytest.fixture
def hub(bert_files, monkeypatch):
    files, _ = bert_files
    without_safetensors = {k: v for k, v in files.items() if k != "model.safetensors"}
    repos = {
        "bert-base-uncased": Repo(dict(files)),
        "org/bin-only": Repo(without_safetensors),
        "org/gated": Repo(dict(files), gated=401),
        "org/gated-terms": Repo(dict(files), gated=403),
        "org/weights-500": Repo(dict(files), head_status={"model.safetensors": 500}),
        "org/download-500": Repo(dict(files), get_status={"model.safetensors": 500}),
        "org/reset": Repo(dict(files), drop={"model.safetensors": "reset"}),
        "org/dropped": Repo(dict(files), drop={"model.safetensors": "close"}),
        "org/corrupt": Repo({**files, "model.safetensors": GARBAGE}),
    }
    with HubImitation(repos) as server:
        point_huggingface_hub_at(monkeypatch, server.endpoint)
        yield server


def same_outputs(model, reference) -> None:
    """minibert's encoder computes what the transformers model whose files were served computes."""
    ids = torch.tensor([[101, 7592, 2088, 1010, 2023, 2003, 1037, 3231, 102]])
    with torch.no_grad():
        want = reference.bert(ids).last_hidden_state
        got = getattr(model, "bert", model)(ids).last_hidden_state
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def one_line(e: pytest.ExceptionInfo) -> str:
    message = str(e.value)
    assert "\n" not in message, message
    chained = e.value.__cause__ or (None if e.value.__suppress_context__ else e.value.__context__)
    assert chained is None, f"the Hub's traceback leaks to the user: {chained!r}"
    return message


# ---- what a fresh load downloads ----------------------------------------------------------------------


def test_fresh_load_downloads_only_the_safetensors(hub, bert_files, tmp_path):
    model, report = BertForPreTraining.from_pretrained("bert-base-uncased", cache_dir=tmp_path, output_loading_info=True)
    assert hub.downloads() == ["config.json", "vocab.txt", "model.safetensors"]
    assert not any("pytorch_model.bin" in path for path in hub.asked())  # not even asked about
    assert report.initialized == [] and report.missing == []  # gamma/beta, bert. prefix, cls.* heads all load
    same_outputs(model, bert_files[1])


def test_repo_without_safetensors_loads_the_bin_and_nothing_else(hub, bert_files, tmp_path):
    model = BertModel.from_pretrained("org/bin-only", cache_dir=tmp_path)
    assert hub.downloads() == ["config.json", "vocab.txt", "pytorch_model.bin"]
    same_outputs(model, bert_files[1])


def test_load_through_hf_endpoint_in_a_fresh_interpreter(hub, tmp_path):
    """HF_ENDPOINT set in the environment, as a user sets it, before huggingface_hub is imported."""
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "PYTHONPATH": str(ROOT)}
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("TRANSFORMERS_OFFLINE", None)
    code = f"from minibert import BertModel; BertModel.from_pretrained('bert-base-uncased', cache_dir={str(tmp_path)!r})"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert hub.downloads() == ["config.json", "vocab.txt", "model.safetensors"]


# ---- faults of the Hub --------------------------------------------------------------------------------


def test_500_on_the_safetensors_is_reported_and_never_falls_back_to_the_bin(hub, tmp_path):
    with pytest.raises(HubError) as e:
        BertModel.from_pretrained("org/weights-500", cache_dir=tmp_path)
    message = one_line(e)
    url = f"{hub.endpoint}/org/weights-500/resolve/main/model.safetensors"
    assert f"cannot fetch 'model.safetensors' of 'org/weights-500': the Hub answered 500 Internal Server Error for {url}" in message
    assert "not found" not in message.lower() and "HF_HUB_OFFLINE" not in message
    assert "try again later" in message
    assert hub.asked("HEAD").count("/org/weights-500/resolve/main/model.safetensors") == 1  # no retries
    assert not any("pytorch_model.bin" in path for path in hub.asked())


def test_500_while_downloading_the_weights_names_status_and_url(hub, tmp_path):
    with pytest.raises(HubError) as e:
        BertModel.from_pretrained("org/download-500", cache_dir=tmp_path)
    message = one_line(e)
    assert "downloading 'model.safetensors' of 'org/download-500' from " in message
    assert f"localhost:{hub.port}/cdn/org/download-500/model.safetensors failed: the Hub answered 500" in message
    assert not any("pytorch_model.bin" in path for path in hub.asked())


@pytest.mark.parametrize("repo, status", [("org/gated", 401), ("org/gated-terms", 403)])
def test_gated_repo_says_log_in_and_accept_the_terms(hub, tmp_path, repo, status):
    with pytest.raises(HubError) as e:
        BertModel.from_pretrained(repo, cache_dir=tmp_path)
    message = one_line(e)
    assert f"{repo!r} is a gated model: the Hub answered {status} " in message
    assert f"{hub.endpoint}/{repo}/resolve/main/config.json" in message
    assert "`hf auth login`" in message and f"accept the model's terms on {hub.endpoint}/{repo}" in message
    assert "not a model" not in message and "neither" not in message


def test_unknown_repo_is_named_with_status_and_url(hub, tmp_path):
    with pytest.raises(HubError) as e:
        BertModel.from_pretrained("org/no-such-model", cache_dir=tmp_path)
    message = one_line(e)
    assert "'org/no-such-model' is neither a local directory nor a model on the Hugging Face Hub" in message
    assert f"the Hub answered 404 Not Found for {hub.endpoint}/org/no-such-model/resolve/main/config.json" in message
    assert "check the spelling" in message


def test_unknown_revision_is_named(hub, tmp_path):
    with pytest.raises(HubError) as e:
        BertModel.from_pretrained("bert-base-uncased", revision="v9", cache_dir=tmp_path)
    message = one_line(e)
    assert "'bert-base-uncased' has no revision 'v9' on the Hub (it answered 404 Not Found for " in message
    assert "pass an existing branch, tag or commit hash" in message


@pytest.mark.parametrize("repo, reason", [
    ("org/reset", "ReadError"),  # connection reset by peer: huggingface_hub gives up at once
    ("org/dropped", "RemoteProtocolError"),  # a clean close mid-body: huggingface_hub retries 5 times (~5 s)
])
def test_connection_dropped_mid_download_is_one_line(hub, tmp_path, repo, reason):
    with pytest.raises(HubError) as e:
        BertModel.from_pretrained(repo, cache_dir=tmp_path)
    message = one_line(e)
    assert f"downloading 'model.safetensors' of {repo!r} from http://localhost:{hub.port}/cdn/{repo}/model.safetensors failed: {reason}" in message
    assert "try again" in message
    assert [p.name for p in tmp_path.rglob("*.incomplete")] == []  # no half file left in the cache


# ---- the cache ---------------------------------------------------------------------------------------


def test_warm_cache_offline_loads_without_a_single_request(hub, bert_files, tmp_path, monkeypatch):
    BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path)
    hub.requests.clear()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    model = BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path)
    assert hub.requests == []
    same_outputs(model, bert_files[1])



def test_a_pinned_revision_loads_offline_from_its_own_cached_files_not_mains(hub, bert_files, vocab_path, tmp_path, monkeypatch):
    first = hub.repos["bert-base-uncased"].commit
    BertModel.from_pretrained("bert-base-uncased", revision=first, cache_dir=tmp_path)
    newer_files, newer = bert_base_layout(vocab_path, seed=1)  # main moves on to other weights
    hub.repos["bert-base-uncased"] = Repo(newer_files, commit="89abcdef" * 5)
    BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    same_outputs(BertModel.from_pretrained("bert-base-uncased", revision=first, cache_dir=tmp_path), bert_files[1])
    same_outputs(BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path), newer)


def test_warm_cache_with_the_hub_answering_500_loads_at_once(hub, bert_files, tmp_path):
    BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path)
    hub.requests.clear()
    hub.down = 500
    model = BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path)
    # one HEAD per file that is used, no retries, and nothing about files the model does not need
    assert sorted(hub.asked()) == sorted(f"/bert-base-uncased/resolve/main/{f}" for f in ("config.json", "vocab.txt", "model.safetensors"))
    same_outputs(model, bert_files[1])


def test_warm_cache_of_a_bin_only_repo_with_the_hub_down_loads(hub, bert_files, tmp_path):
    BertModel.from_pretrained("org/bin-only", cache_dir=tmp_path)
    hub.down = 500
    model = BertModel.from_pretrained("org/bin-only", cache_dir=tmp_path)  # the cache knows there is no safetensors
    same_outputs(model, bert_files[1])


def test_cold_cache_with_the_hub_answering_500_fails_at_once_naming_status_and_url(hub, tmp_path):
    hub.down = 500
    with pytest.raises(HubError) as e:
        BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path)
    message = one_line(e)
    url = f"{hub.endpoint}/bert-base-uncased/resolve/main/config.json"
    assert f"cannot fetch 'config.json' of 'bert-base-uncased': the Hub answered 500 Internal Server Error for {url}" in message
    assert "HF_HUB_OFFLINE" not in message and "from_pretrained('/path/to/bert-base-uncased')" in message
    assert hub.asked() == ["/bert-base-uncased/resolve/main/config.json"]  # one HEAD, no retries
    assert "--model DIR" in e.value.script_message("--model") and "from_pretrained" not in e.value.script_message("--model")


def test_unreachable_hub_fails_at_once_naming_the_url(monkeypatch, tmp_path):
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    point_huggingface_hub_at(monkeypatch, endpoint)
    with pytest.raises(HubError) as e:
        BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path)
    message = one_line(e)
    assert f"the Hub at {endpoint}/bert-base-uncased/resolve/main/config.json is not reachable (ConnectError" in message
    assert "HF_HUB_OFFLINE" not in message


def test_offline_message_names_hf_hub_offline_only_when_it_is_set(hub, tmp_path, monkeypatch):
    with pytest.raises(HubError) as e:
        BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path, local_files_only=True)
    assert "local_files_only=True and no cached copy exists" in one_line(e) and "HF_HUB_OFFLINE" not in str(e.value)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError) as e:
        BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path)
    assert "HF_HUB_OFFLINE=1 is set" in one_line(e)
    assert "--model DIR" in e.value.script_message("--model")
    assert hub.requests == []


# ---- damaged files and force_download -----------------------------------------------------------------


def test_corrupt_cached_file_is_named_and_force_download_repairs_it(hub, bert_files, tmp_path):
    BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path)
    cached = Path(huggingface_hub.try_to_load_from_cache("bert-base-uncased", "model.safetensors", cache_dir=tmp_path))
    cached.resolve().write_bytes(GARBAGE)  # the blob the snapshot links to, as a disk error would leave it
    with pytest.raises(HubError) as e:
        BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path)
    message = str(e.value)
    assert "\n" not in message
    assert "the cached download of model.safetensors of 'bert-base-uncased'" in message and "is truncated or corrupted" in message
    assert "download it again with from_pretrained('bert-base-uncased', force_download=True)" in message
    assert "`hf cache rm model/bert-base-uncased`" in e.value.script_message("--model")

    hub.requests.clear()
    model = BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path, force_download=True)  # the advice
    assert "model.safetensors" in hub.downloads()
    same_outputs(model, bert_files[1])
    same_outputs(BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path), bert_files[1])  # repaired for good


def test_script_advice_for_a_corrupt_cached_file_works(hub, bert_files, tmp_path):
    BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path)
    cached = Path(huggingface_hub.try_to_load_from_cache("bert-base-uncased", "model.safetensors", cache_dir=tmp_path))
    cached.resolve().write_bytes(GARBAGE)
    hf = Path(sys.executable).with_name("hf")
    run = subprocess.run([str(hf), "cache", "rm", "model/bert-base-uncased", "--cache-dir", str(tmp_path), "-y"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    same_outputs(BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path), bert_files[1])


def test_file_damaged_on_the_hub_itself_is_said_after_force_download(hub, tmp_path):
    with pytest.raises(HubError, match=r"force_download=True"):
        BertModel.from_pretrained("org/corrupt", cache_dir=tmp_path)
    with pytest.raises(HubError) as e:
        BertModel.from_pretrained("org/corrupt", cache_dir=tmp_path, force_download=True)
    message = str(e.value)
    assert "model.safetensors of 'org/corrupt', downloaded afresh from the Hub, is truncated or corrupted" in message
    assert "the repository's file is damaged" in message


def test_force_download_downloads_again(hub, tmp_path):
    BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path)
    hub.requests.clear()
    BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path)
    assert hub.downloads() == []  # the cache serves it
    BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path, force_download=True)
    assert hub.downloads() == ["config.json", "vocab.txt", "model.safetensors"]


def test_force_download_offline_is_refused_in_one_line(hub, tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match=r"^force_download=True needs the Hugging Face Hub, but HF_HUB_OFFLINE=1 is set"):
        BertModel.from_pretrained("bert-base-uncased", cache_dir=tmp_path, force_download=True)


# ---- the tokenizer's files come the same way ------------------------------------------------------------


def test_tokenizer_files_come_through_the_hub_and_resolve_can_force_a_download(hub, tmp_path, vocab_path):
    tokenizer = BertTokenizer.from_pretrained("org/bin-only", cache_dir=tmp_path)
    assert tokenizer.convert_tokens_to_ids(["[CLS]", "hello"]) == [101, 7592]
    assert hub.downloads() == ["vocab.txt"]  # the repo has no tokenizer_config.json
    hub.requests.clear()
    files = resolve("org/bin-only", ["vocab.txt"], cache_dir=tmp_path, force_download=True)
    assert hub.downloads() == ["vocab.txt"]
    assert files["vocab.txt"].read_bytes() == vocab_path.read_bytes()
    with pytest.raises(HubError, match=r"'org/gated' is a gated model"):
        BertTokenizer.from_pretrained("org/gated", cache_dir=tmp_path)
