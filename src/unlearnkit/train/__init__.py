"""Training: the shared Trainer subclass, callbacks, LoRA, fine-tuning and unlearning."""

from unlearnkit.train.callbacks import NonFiniteLossError
from unlearnkit.train.finetune import run_finetune
from unlearnkit.train.unlearn import run_unlearning

__all__ = ["NonFiniteLossError", "run_finetune", "run_unlearning"]
