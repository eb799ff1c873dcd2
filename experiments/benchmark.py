r"""jit throughput of the MTL classifiers: step time, FLOP/s vs a plain conv, XLA memory.

  python -m experiments.benchmark --model=resnet2d --preset=quick --batch_size=40 --length=128 \
      --output=runs/bench/resnet2d_quick.json
  # Paper scale (batch 40, n = 945, k = 64, m = 512), memory from compilation only:
  python -m experiments.benchmark --model=resnet2d --preset=paper --length=945 --compile_only \
      --microbatches=2 --output=runs/bench/resnet2d_paper_mb2.json
"""

import json
import pathlib

from absl import app
from absl import flags

from mtl2d.bench import models as bench_models

_MODEL = flags.DEFINE_enum("model", "resnet2d", ["resnet1d", "resnet2d"], "Classifier encoder.")
_PRESET = flags.DEFINE_enum("preset", "quick", ["paper", "quick", "tiny"], "Model size preset.")
_BATCH = flags.DEFINE_integer("batch_size", 40, "Examples per train step.")
_LENGTH = flags.DEFINE_integer("length", 128, "Series length n.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Computation dtype.")
_REMAT = flags.DEFINE_bool("remat", False, "Rematerialise every ResNet2D stage.")
_MICROBATCHES = flags.DEFINE_integer(
    "microbatches", 1, "Split each batch into this many sequential parts (gradient accumulation).")
_CONV_IMPL = flags.DEFINE_enum(
    "conv_impl", "auto", ["auto", "matmul", "xla"],
    "ResNet2D conv gradients: matmul (native/im2col kernel gradients; the CPU default under "
    "auto) or XLA's convolutions.")
_STEPS = flags.DEFINE_integer(
    "steps", 20, "Timed steps after the compiling one (the median is reported; on a shared CPU "
    "single steps vary by +-20%).")
_NUM_CLASSES = flags.DEFINE_list("num_classes", ["5"], "Class count of each task head.")
_COMPILE_ONLY = flags.DEFINE_bool("compile_only", False,
                                  "Only compile; report XLA cost and memory analyses.")
_OUTPUT = flags.DEFINE_string("output", None, "Write the results as JSON to this path.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  result = bench_models.benchmark_train_step(
      _MODEL.value, batch_size=_BATCH.value, length=_LENGTH.value, preset=_PRESET.value,
      dtype=_DTYPE.value, remat=_REMAT.value, num_classes=[int(c) for c in _NUM_CLASSES.value],
      microbatches=_MICROBATCHES.value,
      steps=_STEPS.value, compile_only=_COMPILE_ONLY.value,
      **({"conv_impl": _CONV_IMPL.value} if _MODEL.value == "resnet2d" else {}))
  text = json.dumps(result, indent=2)
  print(text)
  if _OUTPUT.value:
    path = pathlib.Path(_OUTPUT.value)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


if __name__ == "__main__":
  app.run(main)
