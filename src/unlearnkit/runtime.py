"""Where a run executes: its device kind and its processes (accelerate's process group).

Shared by training, evaluation and the commands, so that neither imports the other for them.
"""

from __future__ import annotations

import logging
import os

from unlearnkit.config import RunConfig
from unlearnkit.models.loading import detect_device

logger = logging.getLogger(__name__)


def init_processes(device: str) -> int:
    """Set up the process group once (gloo on CPU, NCCL on GPUs); returns the process count.

    Accelerate's state is a singleton: the first call decides whether a multi-process CPU run
    (``torchrun`` or ``accelerate launch --multi_gpu`` with no GPU visible) uses gloo.
    """
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu")
    if (
        os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true"
        and "WORLD_SIZE" not in os.environ
        and state.is_main_process
    ):
        logger.warning(
            "running in a single process: `accelerate launch --cpu` starts one process unless an "
            "MPI hostfile is given; for N CPU processes use `accelerate launch --multi_gpu "
            "--num_processes N` with no GPU visible, or `torchrun --nproc_per_node N -m unlearnkit`"
        )
    return state.num_processes


def is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


def wait_for_everyone() -> None:
    from accelerate import PartialState

    PartialState().wait_for_everyone()


def run_device(cfg: RunConfig) -> str:
    """The device kind this run trains on (the engine picks the local index per process)."""
    device = cfg.model.device
    if device in ("auto", None):
        return detect_device()
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise ValueError(f"unknown model.device '{device}'; choose from auto, cpu, cuda, mps")
    return device
