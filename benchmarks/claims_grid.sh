#!/usr/bin/env bash
# The claims grid of issue 19, end to end and resumable: run it again after a stop and it picks up
# where it stopped (a finished fine-tune or run is skipped, an unfinished one continues).
#   1. the recipe's target: SmolLM2-135M fine-tuned on tofu_small's 40 real TOFU authors;
#   2. the fictitious grid (configs/claims/forget01.yaml), one learning rate at a time, in the
#      order LRS gives (the most informative first, so a cut budget leaves whole columns);
#   3. the forget sizes (configs/claims/sizes.yaml: forget05 and forget10 at lr 1e-4) and a second
#      seed on forget01 (configs/claims/seeds.yaml);
#   4. the continual grid (configs/claims/continual.yaml);
#   5. the claims page: docs/claims.md, docs/claims/claims.json and the raw per-run results.
# NOTE="..." adds a paragraph to the page (what was not run).
# On a GPU with the hub's data: MODEL=<hub id or folder> BENCHMARK=<TOFU folder> (then the splits
# are TOFU's own: forget01/05/10 are 2/10/20 authors).
set -euo pipefail
cd "$(dirname "$0")/.."
UNLEARN=${UNLEARN:-unlearn}
OUT=${OUT:-runs/claims}
MODEL=${MODEL:-smollm2-135m}
BENCHMARK=${BENCHMARK:-tofu_small}
LRS=${LRS:-"1e-4 3e-4 3e-5"}
STAGES=${STAGES:-"target fictitious sizes seeds continual claims"}
has() { [[ " $STAGES " == *" $1 "* ]]; }

if has target; then
  $UNLEARN finetune --model "$MODEL" --benchmark "$BENCHMARK" --out "$OUT/target" --resume \
    train.learning_rate=2e-4 train.epochs=3 train.batch_size=16 train.per_device_batch_size=8 \
    train.warmup_epochs=0.5
fi
common=(output_dir="$OUT" model.name="$OUT/target/model" data.benchmark="$BENCHMARK")
if has fictitious; then
  for lr in $LRS; do
    $UNLEARN run --config configs/claims/forget01.yaml "${common[@]}" "sweep.learning_rates=[$lr]"
  done
fi
for stage in sizes seeds; do
  if has $stage; then
    $UNLEARN run --config "configs/claims/$stage.yaml" "${common[@]}"
  fi
done
if has continual; then
  $UNLEARN run --config configs/claims/continual.yaml "${common[@]}"
fi
if has claims; then
  $UNLEARN claims "$OUT" --out docs/claims.md --note "${NOTE:-}"
fi
