import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

from mtl2d.bench import models as bench_models

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_launcher_writes_json(tmp_path):
  out = tmp_path / "bench" / "r.json"
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.benchmark", "--model=resnet2d", "--preset=tiny",
       "--batch_size=4", "--length=12", "--steps=2", f"--output={out}"],
      cwd=ROOT, env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True,
      timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  result = json.loads(out.read_text())
  assert json.loads(proc.stdout) == result
  assert len(result["step_s_all"]) == 2
  for key in ("compile_s", "step_s", "examples_per_s", "flops_per_step", "flops_per_s",
              "fraction_of_peak"):
    assert math.isfinite(result[key]) and result[key] > 0, key
  assert result["reference_conv"]["shape"] == [4, 12, 6, 4]
  mem = result["memory"]
  assert mem["peak_bytes"] == (mem["argument_bytes"] + mem["output_bytes"] + mem["temp_bytes"]
                               - mem["alias_bytes"])
  # Parameters, batch statistics and AdamW moments are all arguments.
  assert mem["argument_bytes"] >= 3 * 4 * result["num_params"]


def test_compile_only_allocates_nothing_and_runs_nothing():
  result = bench_models.benchmark_train_step("resnet1d", preset="tiny", batch_size=3, length=10,
                                             compile_only=True)
  assert result["compile_only"] and "step_s" not in result
  assert result["flops_per_step"] > 0 and result["memory"]["peak_bytes"] > 0
  with pytest.raises(ValueError, match="remat"):
    bench_models.benchmark_train_step("resnet1d", preset="tiny", remat=True, compile_only=True)


def test_flops_do_not_depend_on_the_conv_gradient_implementation():
  # The matmul gradients scan over pixel blocks, whose body XLA's cost analysis counts once; the
  # benchmark counts the same math on the XLA-convolution twin instead.
  kwargs = dict(preset="tiny", batch_size=2, length=8, compile_only=True, widths=(64,),
                num_templates=2, template_length=6)
  flops = {impl: bench_models.benchmark_train_step("resnet2d", conv_impl=impl,
                                                   **kwargs)["flops_per_step"]
           for impl in ("matmul", "xla")}
  assert flops["matmul"] == flops["xla"] > 0


def test_microbatches_go_through_the_engine_step():
  # The benchmark compiles mtl2d.train.steps' step: `microbatches` is `config.microbatches`
  # (gradient accumulation in a scan, so fewer activations are live at a time) and its errors.
  kwargs = dict(preset="tiny", batch_size=8, length=32, compile_only=True)
  mem = {k: bench_models.benchmark_train_step("resnet1d", microbatches=k, **kwargs)["memory"]
         for k in (1, 4)}
  assert mem[4]["temp_bytes"] < mem[1]["temp_bytes"]
  assert mem[4]["argument_bytes"] == mem[1]["argument_bytes"]
  with pytest.raises(ValueError, match=r"config\.microbatches=3 must divide the batch size 8"):
    bench_models.benchmark_train_step("resnet1d", microbatches=3, **kwargs)
