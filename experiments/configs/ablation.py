"""Ablation of the ResNet2D recipe (docs/ablations.md): what makes ResNet2D generalise on CPU.

Every variant starts from the quick Table I recipe of `experiments/configs/ucr_mtl.py` (the
main job's settings: Cricket resampled to 128 steps, quick widths, 40 epochs) and changes the
fields it names. Rows that decide the default run two seeds.

Run (resumes; `--only` runs some variants, the page covers every finished one):
  python -m experiments.ablation --workdir=runs/ablation --output=docs/ablations.md
  python -m experiments.ablation --workdir=runs/ablation --output=docs/ablations.md \
      --groups=GestureMidAir --config.data.source=ucr --config.data.data_dir=../shared/data/ucr \
      --only=...   # the GestureMidAir rows, listed in `_COMMAND` below
"""

import ml_collections

from experiments.configs import study

_COMMAND = ("python -m experiments.ablation --workdir=runs/ablation --output=docs/ablations.md\n"
            "python -m experiments.ablation --workdir=runs/ablation --output=docs/ablations.md "
            "--groups=GestureMidAir --config.data.source=ucr "
            "--config.data.data_dir=../shared/data/ucr "
            "--only=recipe,k8,r1d_recipe,paper_design,steps1440,r1d_steps1440,no_crop,"
            "lr3e-3,r1d_lr3e-3,ds8")

# The recipe's ResNet2D-only fields (ucr_mtl.apply_cpu_recipe), undone one at a time below.
_PAPER_2D = {"model.overrides.downsample": None, "model.task_batch_stats": False,
             "optim.schedule": "constant", "augment.crop": 0.0}
# The recipe had 8 templates until the k8/recipe rows (16 templates) chose 16; the rows measured
# on it keep 8, so that the command regenerates what was measured.
_K8 = {"model.overrides.num_templates": 8}


def _on_k8(variant: dict) -> dict:
  # A ResNet2D row measured on the former 8-template recipe.
  return dict(variant, overrides={**_K8, **variant.get("overrides", {})},
              note=variant["note"] + " (on the 8-template recipe)")


def get_config() -> ml_collections.ConfigDict:
  """Returns the study's config (see `mtl2d.pipelines.run_ablation`)."""
  c = study.base_config(
      title="Ablation: ResNet2D (and ResNet1D) recipe on CPU",
      command=_COMMAND,
      note=("Base: the main job's recipe (`experiments/configs/ucr_mtl.py`, quick scale): "
            "series resampled to 128 steps, quick widths (k=16 templates of length 32, stages "
            "16x4 + 32x4), AdamW lr 1e-3, weight decay 0.01, batch 40, 40 epochs, per-task "
            "batch-norm statistics, cosine schedule; ResNet2D with 3 stride-2 stages and 10% "
            "window slicing. Stratified 60/20/20 split (data seed 0); each task's numbers are "
            "taken at its best validation epoch; 'train (eval)' is evaluation-mode accuracy on "
            "the training split at that epoch, 'train (running)' the accuracy of that epoch's "
            "training steps (augmented, batch statistics). Cells are means over the group's "
            "tasks; with two seeds, the mean and (seed 0 / seed 1). Wall time: the run's epochs "
            "(training and evaluation, the training split included) on a 2-core CPU that other "
            "jobs shared at times, so compare it between rows only roughly."))
  c.variants = [
      dict(name="recipe", method="resnet2d_mtl", seeds=(0, 1),
           note="the default: 16 templates, 3 stride-2 stages, per-task BN stats, cosine, "
                "crop 0.1"),
      dict(name="k8", method="resnet2d_mtl", seeds=(0, 1), overrides=_K8,
           note="8 templates (the recipe until this row and `recipe` were compared)"),
      dict(name="r1d_recipe", method="resnet1d_mtl", seeds=(0, 1),
           note="ResNet1D w/ MTL with the shared recipe (per-task BN stats, cosine)"),
      _on_k8(dict(name="paper_design", method="resnet2d_mtl", overrides=_PAPER_2D,
                 note="the paper's design at quick widths: 8 stride-2 stages, pooled BN stats, "
                      "constant lr, no augmentation")),
      _on_k8(dict(name="ds3_only", method="resnet2d_mtl",
                 overrides={**_PAPER_2D, "model.overrides.downsample": 3},
                 note="paper design with 3 stride-2 stages")),
      _on_k8(dict(name="epochs30", method="resnet2d_mtl", overrides={"num_epochs": 30},
                 note="30 epochs instead of 40 (cosine over 30)")),
      _on_k8(dict(name="no_crop", method="resnet2d_mtl", overrides={"augment.crop": 0.0},
                 note="recipe without augmentation")),
      _on_k8(dict(name="constant_lr", method="resnet2d_mtl",
                 overrides={"optim.schedule": "constant"},
                 note="recipe with a constant learning rate (no cosine decay)")),
      _on_k8(dict(name="no_task_bn", method="resnet2d_mtl",
                 overrides={"model.task_batch_stats": False},
                 note="recipe with one set of BN statistics shared by the tasks")),
      _on_k8(dict(name="ds8", method="resnet2d_mtl", overrides={"model.overrides.downsample": None},
                 note="recipe with all 8 stages stride 2 (paper)")),
      _on_k8(dict(name="lr1e-4", method="resnet2d_mtl", overrides={"optim.learning_rate": 1e-4},
                 note="recipe at the paper's learning rate")),
      _on_k8(dict(name="lr3e-3", method="resnet2d_mtl", overrides={"optim.learning_rate": 3e-3},
                 note="learning rate 3e-3 instead of 1e-3 (for the underfitting GestureMidAir)")),
      _on_k8(dict(name="widths8_16", method="resnet2d_mtl",
                 overrides={"model.overrides.widths": (8,) * 4 + (16,) * 4},
                 note="stage widths 8x4 + 16x4 instead of 16x4 + 32x4 (a quarter of the conv "
                      "FLOPs)")),
      _on_k8(dict(name="widths32_64", method="resnet2d_mtl",
                 overrides={"model.overrides.widths": (32,) * 4 + (64,) * 4},
                 note="stage widths 32x4 + 64x4 (ResNet1D's quick widths; four times the conv "
                      "FLOPs)")),
      _on_k8(dict(name="len64_m64", method="resnet2d_mtl",
                 overrides={"data.length": 64, "model.overrides.template_length": 64},
                 note="series resampled to 64 steps, templates as long as the series (m = n)")),
      _on_k8(dict(name="init_segments", method="resnet2d_mtl",
                 overrides={"model.overrides.template_init": "train_segments"},
                 note="templates start as z-normalised segments of training series")),
      _on_k8(dict(name="wd0.1", method="resnet2d_mtl", overrides={"optim.weight_decay": 0.1},
                 note="weight decay 0.1 instead of 0.01")),
      _on_k8(dict(name="dropout0.3", method="resnet2d_mtl", overrides={"model.head_dropout": 0.3},
                 note="dropout 0.3 on the shared features before the heads")),
      _on_k8(dict(name="steps1440", method="resnet2d_mtl", overrides={"min_train_steps": 1440},
                 note="at least 1440 train steps (Cricket's 40 epochs): more epochs for small "
                      "groups")),
      dict(name="r1d_steps1440", method="resnet1d_mtl", overrides={"min_train_steps": 1440},
           note="ResNet1D w/ MTL, at least 1440 train steps"),
      dict(name="r1d_lr3e-3", method="resnet1d_mtl", overrides={"optim.learning_rate": 3e-3},
           note="ResNet1D w/ MTL, learning rate 3e-3 instead of 1e-3"),
      dict(name="r1d_constant", method="resnet1d_mtl",
           overrides={"model.task_batch_stats": False, "optim.schedule": "constant"},
           note="ResNet1D w/ MTL without the recipe (constant lr, pooled BN stats)"),
      dict(name="r1d_crop", method="resnet1d_mtl", overrides={"augment.crop": 0.1},
           note="ResNet1D w/ MTL with ResNet2D's crop 0.1"),
  ]
  return c
