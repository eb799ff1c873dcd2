"""The flags and `main` shared by the launchers that run one pipeline and print its table."""

from collections.abc import Callable
import pathlib
from typing import Any
from typing import NamedTuple

from absl import app
from absl import flags
from ml_collections import config_flags

CONFIGS = pathlib.Path(__file__).parent / "configs"


class Flags(NamedTuple):
  workdir: flags.FlagHolder
  config: Any
  wait_for_lock: flags.FlagHolder | None


def define_flags(config_file: str, *, wait_for_lock: bool = False) -> Flags:
  """`--workdir`, `--config` (default `experiments/configs/<config_file>`), `--wait_for_lock`."""
  workdir = flags.DEFINE_string("workdir", None, "Directory for all outputs; reruns resume.",
                                required=True)
  config = config_flags.DEFINE_config_file("config", str(CONFIGS / config_file),
                                           "Config file, optionally with ':quick' or ':paper'.")
  wait = flags.DEFINE_bool("wait_for_lock", False, "If another launcher is running in a run "
                           "directory of --workdir, wait for it instead of failing at once."
                           ) if wait_for_lock else None
  return Flags(workdir, config, wait)


def run(argv: list[str], defined: Flags, pipeline: Callable[[Any, str], Any],
        table: str) -> None:
  """Runs `pipeline(config, workdir)` and prints the table it wrote (`workdir/table`)."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = defined.config.value
  if defined.wait_for_lock is not None:
    config.train.wait_for_lock = defined.wait_for_lock.value
  pipeline(config, defined.workdir.value)
  print((pathlib.Path(defined.workdir.value) / table).read_text())
