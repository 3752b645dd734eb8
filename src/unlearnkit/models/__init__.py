"""Model loading: hub ids, local folders and offline packaged models; LoRA wrapping."""

from unlearnkit.models.loading import (
    default_dtype,
    detect_device,
    load_model,
    load_tokenizer,
    resolve_model_path,
)

__all__ = ["default_dtype", "detect_device", "load_model", "load_tokenizer", "resolve_model_path"]
