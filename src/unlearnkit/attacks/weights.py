"""Weight attacks: relearning (a few fine-tuning steps) and quantization, each on a copy.

* ``relearn``: fine-tune on the even-indexed half of the forget set, evaluate the odd half
  (Deeb & Roger 2024: knowledge of held-out facts coming back). ``relearn_retain``: fine-tune on
  retain (or neighbour) data only, evaluate the whole forget set (Hu et al. 2024, "Jogging the
  memory of unlearned LLMs", with data that never held the forgotten facts). Budget: AdamW (no
  weight decay, no warm-up), ``attack.relearn_steps`` steps of ``attack.relearn_batch_size``
  items at ``attack.relearn_lr``, the answer tokens' mean NLL (question masked), items in a
  shuffled order seeded by ``attack.seed``.
* ``quant8`` / ``quant4``: the weights of every linear layer but the output head quantized
  (Zhang et al., ICLR 2025, "Catastrophic failure of LLM unlearning via quantization").
  bitsandbytes on CUDA (LLM.int8 / NF4 modules, the model reloaded from a temporary folder);
  elsewhere optimum-quanto's quantizer (qint8: per output channel, symmetric; qint4: groups of
  the input dimension, asymmetric), whose dequantized weights are written into a float copy, so
  the model runs with PyTorch's float matmul on exactly the quantized values. ``kernels`` says
  which ran.
"""

from __future__ import annotations

import copy
import random
import tempfile
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from unlearnkit.attacks.base import AttackContext, Attacked, register_attack
from unlearnkit.data.collator import pad_batch
from unlearnkit.data.records import QAItem
from unlearnkit.setting import Setting

# -------------------------------------------------------------------------------- relearning


def relearn_copy(
    model: PreTrainedModel,
    formatter: Any,
    items: list[QAItem],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> tuple[PreTrainedModel, list[float]]:
    """A copy of ``model`` fine-tuned for ``steps`` AdamW steps on ``items``; (copy, losses).

    The items are visited in a seeded shuffled order, cycling when ``steps * batch_size``
    exceeds them. ``model`` itself is not touched (its parameters are never given to the
    optimizer).
    """
    if not items:
        raise ValueError("relearning needs at least one training item")
    attacked = copy.deepcopy(model)
    attacked.train()
    pad_id = int(formatter.tokenizer.pad_token_id)
    device = next(attacked.parameters()).device
    params = [p for p in attacked.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    rng = random.Random(seed)
    order: list[int] = []
    losses: list[float] = []
    for _ in range(steps):
        batch_ids = []
        for _ in range(batch_size):
            if not order:
                order = list(range(len(items)))
                rng.shuffle(order)
            batch_ids.append(order.pop())
        feats = [formatter.encode(items[i].question, items[i].answer) for i in batch_ids]
        batch = {k: v.to(device) for k, v in pad_batch(feats, pad_id).items()}
        out = attacked(**batch)  # HF loss: mean NLL over the unmasked (answer) tokens
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    opt.zero_grad(set_to_none=True)
    attacked.eval()
    return attacked, losses


# The relearning attacks' settings (both attacks declare them).
RELEARN_SETTINGS = {
    "relearn_steps": Setting(10, "optimizer steps (AdamW, no warm-up)", type="int", positive=True),
    "relearn_lr": Setting(2e-5, "learning rate", positive=True),
    "relearn_batch_size": Setting(4, "items per step", type="int", positive=True),
}
QUANT_SETTINGS = {
    "quant_backend": Setting(
        "auto",
        "auto = bitsandbytes where CUDA and bitsandbytes are present, else quanto",
        type="choice",
        choices=("auto", "quanto", "bitsandbytes"),
    )
}


def _relearn_budget(ctx: AttackContext, data: str, n_train: int, losses: list[float]) -> dict:
    return {
        "steps": ctx.param("relearn_steps"),
        "lr": ctx.param("relearn_lr"),
        "batch_size": ctx.param("relearn_batch_size"),
        "optimizer": "AdamW (weight decay 0, no warm-up)",
        "data": data,
        "train_items": n_train,
        "seed": ctx.settings.seed,
        "loss_first": losses[0],
        "loss_last": losses[-1],
    }


def _relearn_args(ctx: AttackContext) -> dict[str, Any]:
    return {
        "steps": ctx.param("relearn_steps"),
        "lr": ctx.param("relearn_lr"),
        "batch_size": ctx.param("relearn_batch_size"),
        "seed": ctx.settings.seed,
    }


@register_attack(
    "relearn",
    kind="weights",
    description="fine-tune a copy on the even half of the forget set, evaluate the odd half",
    phrase="relearning on the other half of the forget set",
    settings=RELEARN_SETTINGS,
)
def relearn(ctx: AttackContext) -> Attacked:
    forget = ctx.forget
    if len(forget) < 2:
        raise ValueError("relearn needs at least 2 forget items (one to train, one to evaluate)")
    train_ids, eval_ids = list(range(0, len(forget), 2)), list(range(1, len(forget), 2))
    model, losses = relearn_copy(
        ctx.model, ctx.formatter, [forget[i] for i in train_ids], **_relearn_args(ctx)
    )
    sets = dict(ctx.eval_sets)
    sets[ctx.forget_split] = [forget[i] for i in eval_ids]
    data = "forget items 0, 2, 4, ... (evaluated on 1, 3, 5, ...)"
    return Attacked(model, sets, eval_ids, _relearn_budget(ctx, data, len(train_ids), losses))


@register_attack(
    "relearn_retain",
    kind="weights",
    description="fine-tune a copy on retain (or neighbour) data only, evaluate the forget set",
    phrase="relearning on retain data only",
    settings=RELEARN_SETTINGS,
)
def relearn_retain(ctx: AttackContext) -> Attacked:
    if not ctx.retain_items:
        raise ValueError("relearn_retain needs retain (or neighbour) training items")
    model, losses = relearn_copy(ctx.model, ctx.formatter, ctx.retain_items, **_relearn_args(ctx))
    budget = _relearn_budget(ctx, "retain set only", len(ctx.retain_items), losses)
    return Attacked(model, dict(ctx.eval_sets), list(range(len(ctx.forget))), budget)


# ------------------------------------------------------------------------------ quantization


def _bnb_usable(model: nn.Module) -> bool:
    if next(model.parameters()).device.type != "cuda":
        return False
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return True


def quantize_quanto(model: nn.Module, bits: int) -> tuple[nn.Module, dict[str, Any]]:
    """A float copy of ``model`` holding optimum-quanto's quantized-then-dequantized weights of
    every ``nn.Linear`` but ``lm_head``; (copy, what ran)."""
    try:
        import optimum.quanto as quanto
        from optimum.quanto.nn import QModuleMixin
    except ImportError as err:
        raise ValueError(
            "quantization without CUDA needs optimum-quanto: pip install 'unlearnkit[attacks]'"
        ) from err
    from importlib.metadata import version

    qtype = {8: quanto.qint8, 4: quanto.qint4}[bits]
    out = copy.deepcopy(model)
    quantized = copy.deepcopy(model)
    quanto.quantize(quantized, weights=qtype, exclude=["lm_head"])
    quanto.freeze(quantized)
    n, classes, groups = 0, set(), set()
    with torch.no_grad():
        for name, module in quantized.named_modules():
            if isinstance(module, QModuleMixin) and getattr(module, "weight", None) is not None:
                qweight = module.weight  # frozen: the quantized tensor
                classes.add(type(qweight).__name__)
                groups.add(getattr(qweight, "_group_size", None))
                target = out.get_submodule(name).weight
                target.copy_(qweight.dequantize().to(target.dtype))
                n += 1
    del quantized
    kernels = {
        "library": f"optimum-quanto {version('optimum-quanto')}",
        "quantizer": f"quanto.quantize(weights={qtype}) + freeze, lm_head excluded",
        "weight_tensors": sorted(classes),
        "group_size": sorted(g for g in groups if g is not None) or None,
        "linear_layers": n,
        "matmul": f"torch {torch.__version__} float matmul on the dequantized weights "
        f"({next(out.parameters()).device.type}, {next(out.parameters()).dtype})",
    }
    return out, kernels


def quantize_bnb(model: PreTrainedModel, bits: int) -> tuple[nn.Module, dict[str, Any]]:
    """The model reloaded through bitsandbytes (CUDA): LLM.int8 (8) or NF4 (4) linear layers."""
    from importlib.metadata import version

    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    dtype = next(model.parameters()).dtype
    if bits == 8:
        qcfg = BitsAndBytesConfig(load_in_8bit=True)
    else:
        qcfg = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
        )
    device = next(model.parameters()).device
    with tempfile.TemporaryDirectory(prefix="unlearnkit-quant-") as tmp:
        model.save_pretrained(tmp)
        out = AutoModelForCausalLM.from_pretrained(
            tmp, quantization_config=qcfg, device_map={"": device}, dtype=dtype
        )
    classes = sorted({type(m).__name__ for m in out.modules() if "bnb" in type(m).__module__})
    kernels = {
        "library": f"bitsandbytes {version('bitsandbytes')}",
        "quantizer": "LLM.int8" if bits == 8 else "NF4, compute dtype " + str(dtype),
        "modules": classes,
        "matmul": f"bitsandbytes CUDA kernels ({device})",
    }
    return out, kernels


def quantize_copy(
    model: PreTrainedModel, bits: int, backend: str = "auto"
) -> tuple[nn.Module, dict[str, Any]]:
    """A quantized copy of ``model`` (``bits`` 8 or 4) and what ran (``kernels``)."""
    if bits not in (8, 4):
        raise ValueError(f"quantization bits must be 8 or 4, got {bits}")
    use_bnb = backend == "bitsandbytes" or (backend == "auto" and _bnb_usable(model))
    if backend == "bitsandbytes" and not _bnb_usable(model):
        raise ValueError(
            "attack.quant_backend=bitsandbytes needs the model on CUDA and bitsandbytes installed"
        )
    out, kernels = quantize_bnb(model, bits) if use_bnb else quantize_quanto(model, bits)
    out.eval()
    return out, kernels


def _quant_attack(ctx: AttackContext, bits: int) -> Attacked:
    model, kernels = quantize_copy(ctx.model, bits, ctx.param("quant_backend"))
    budget = {"bits": bits, "backend": kernels["library"]}
    return Attacked(model, dict(ctx.eval_sets), list(range(len(ctx.forget))), budget, kernels)


@register_attack(
    "quant8", kind="weights", description="8-bit weight quantization of a copy",
    phrase="8-bit quantization", settings=QUANT_SETTINGS,
)  # fmt: skip
def quant8(ctx: AttackContext) -> Attacked:
    return _quant_attack(ctx, 8)


@register_attack(
    "quant4", kind="weights", description="4-bit weight quantization of a copy",
    phrase="4-bit quantization", settings=QUANT_SETTINGS,
)  # fmt: skip
def quant4(ctx: AttackContext) -> Attacked:
    return _quant_attack(ctx, 4)
