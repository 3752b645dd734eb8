from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("UNLEARNKIT_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "tofu" / "forget01.json").is_file():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test writes its caches (synthetic data, eval cache) under a temporary folder, but
    converted packaged models are shared with the user's cache so they are pulled only once."""
    cache = tmp_path_factory.getbasetemp() / "unlearnkit-cache"
    monkeypatch.setenv("UNLEARNKIT_CACHE", str(cache))
    models = Path.home() / ".cache" / "unlearnkit" / "models"
    (cache).mkdir(parents=True, exist_ok=True)
    link = cache / "models"
    if not link.exists():
        models.mkdir(parents=True, exist_ok=True)
        link.symlink_to(models)
    yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from unlearnkit.models.tiny import save_tiny_model

    path = tmp_path_factory.mktemp("tiny-model")
    save_tiny_model(path, seed=0)
    return path


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test (what a subprocess with OMP_NUM_THREADS=1 uses, and
    what byte-for-byte comparisons need), restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
