"""How much slower ME+GD trains under the paper profile (forget view padded to 500 with EOS).

Run::

    PYTHONPATH=src python benchmarks/paper_me_speed.py [--repeats 3] [--max-length 500]

One training micro-batch (4 TOFU forget01 items, forward + backward of ME+GD) on SmolLM2-135M,
timed with each profile's dataset and method settings, interleaved (default, paper, default,
...) so both see the same machine load; medians are printed with their ratio.

- default: dynamic padding, question unmasked on the forget view only, ME in closed form;
- paper: the forget view padded to ``--max-length`` with EOS, every padded position labelled
  (so ME averages over B x (T - 1) positions), ME as ``log(p + 1e-12)``; the retain view is
  masked, so its padding changes nothing and it stays dynamically padded.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.splits import TofuBenchmark
from unlearnkit.methods import build_method
from unlearnkit.methods.data import UnlearningCollator, UnlearningDataset
from unlearnkit.models.loading import load_model
from unlearnkit.settings import load_config
from unlearnkit.utils import default_data_root


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=500)
    args = ap.parse_args(argv)
    model, tok = load_model(args.model, device="cpu", dtype=torch.float32)
    model.train()
    tofu = TofuBenchmark(default_data_root() / "tofu")
    forget, retain = tofu.forget("forget01", 1), tofu.retain("forget01", 1)
    steps = {}
    for profile in ("default", "paper"):
        cfg = load_config(
            None,
            [f"profile={profile}", "method.name=ME+GD", "data.prompt_preset=plain",
             f"data.max_length={args.max_length}"],
        )  # fmt: skip
        method = build_method(cfg.method, pad_id=int(tok.pad_token_id))
        ds = UnlearningDataset(
            forget, retain, [], PromptFormatter(tok, "plain"), method.views,
            mask_question=method.mask_question, max_length=cfg.data.max_length,
            pairing=cfg.data.pairing,
            fixed_length_views=method.fixed_length_views() if cfg.data.fixed_padding else (),
        )  # fmt: skip
        batch = UnlearningCollator(method.pad_id)([ds[i] for i in range(4)])
        steps[profile] = (method, batch)
        print(profile, {view: tuple(t["input_ids"].shape) for view, t in batch.items()})

    def step(profile: str) -> float:
        method, batch = steps[profile]
        start = time.perf_counter()
        loss, _ = method.compute(model, batch, None)
        loss.backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"default": [], "paper": []}
    step("default")  # warm-up
    for _ in range(args.repeats):
        for profile in ("default", "paper"):
            times[profile].append(step(profile))
    med = {p: statistics.median(t) for p, t in times.items()}
    print(f"median step: default {med['default']:.2f} s, paper {med['paper']:.2f} s, "
          f"paper / default = {med['paper'] / med['default']:.1f}x  (raw: {times})")  # fmt: skip
    return med


if __name__ == "__main__":
    main()
