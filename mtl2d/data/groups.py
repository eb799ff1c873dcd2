"""The paper's seven multitask groups of UCR tasks (Table I) and name lookup with suggestions."""

from __future__ import annotations

from collections.abc import Iterable
import difflib

# Table I of Yeh et al. (ICMLA 2023): 25 UCR tasks grouped by the source of their series.
PAPER_GROUPS: dict[str, tuple[str, ...]] = {
    "Cricket": ("CricketX", "CricketY", "CricketZ"),
    "UWaveGestureLibrary": (
        "UWaveGestureLibraryAll",
        "UWaveGestureLibraryX",
        "UWaveGestureLibraryY",
        "UWaveGestureLibraryZ",
    ),
    "AllGestureWiimote": ("AllGestureWiimoteX", "AllGestureWiimoteY", "AllGestureWiimoteZ"),
    "DodgerLoop": ("DodgerLoopDay", "DodgerLoopGame", "DodgerLoopWeekend"),
    "SemgHand": ("SemgHandGenderCh2", "SemgHandMovementCh2", "SemgHandSubjectCh2"),
    "GestureMidAir": ("GestureMidAirD1", "GestureMidAirD2", "GestureMidAirD3"),
    "ECG": (
        "ECG200",
        "ECG5000",
        "ECGFiveDays",
        "NonInvasiveFetalECGThorax1",
        "NonInvasiveFetalECGThorax2",
        "TwoLeadECG",
    ),
}

PAPER_TASKS: tuple[str, ...] = tuple(t for tasks in PAPER_GROUPS.values() for t in tasks)


def closest_names(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
  """Returns up to `n` candidates closest to `name` (case-insensitive), best first."""
  candidates = sorted(set(candidates))
  by_lower = {c.lower(): c for c in candidates}
  matches = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.5)
  return [by_lower[m] for m in matches]


def _unknown(kind: str, name: str, candidates: Iterable[str]) -> ValueError:
  close = closest_names(name, candidates)
  hint = f"; did you mean {', '.join(close)}?" if close else ""
  return ValueError(f"unknown {kind} {name!r}{hint}")


def resolve_group(name: str) -> str:
  """Returns the canonical spelling of a paper group name.

  Args:
    name: a key of `PAPER_GROUPS`, in any letter case (e.g. "ecg", "SemgHand").

  Raises:
    ValueError: `name` is not a group; the message suggests the closest names.
  """
  for group in PAPER_GROUPS:
    if group.lower() == name.lower():
      return group
  raise _unknown("group", name, PAPER_GROUPS)


def group_tasks(name: str) -> tuple[str, ...]:
  """The task names of a paper group (Table I), e.g. `group_tasks("Cricket")`."""
  return PAPER_GROUPS[resolve_group(name)]


def expand_tasks(tasks: Iterable[str] = (), groups: Iterable[str] = ()) -> tuple[str, ...]:
  """Task names of `groups` (in Table I order) followed by `tasks`, without duplicates."""
  out: list[str] = []
  for group in groups:
    out.extend(group_tasks(group))
  out.extend(tasks)
  return tuple(dict.fromkeys(out))
