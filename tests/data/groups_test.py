import csv
import pathlib

import pytest

from mtl2d.data import PAPER_GROUPS
from mtl2d.data import PAPER_TASKS
from mtl2d.data import expand_tasks
from mtl2d.data import group_tasks
from mtl2d.data import resolve_group

# Table I of the paper, machine-readable copy beside the repository (when present).
_TABLE1 = pathlib.Path(__file__).resolve().parents[3] / "shared" / "paper" / "table1.tsv"


def test_paper_groups_shape():
  assert len(PAPER_GROUPS) == 7 and len(PAPER_TASKS) == 25 == len(set(PAPER_TASKS))
  assert PAPER_GROUPS["SemgHand"] == ("SemgHandGenderCh2", "SemgHandMovementCh2",
                                      "SemgHandSubjectCh2")
  assert len(PAPER_GROUPS["ECG"]) == 6 and len(PAPER_GROUPS["UWaveGestureLibrary"]) == 4


@pytest.mark.skipif(not _TABLE1.is_file(), reason="shared/paper/table1.tsv not present")
def test_paper_groups_equal_table1():
  with open(_TABLE1) as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
  table: dict[str, list[str]] = {}
  for r in rows:
    table.setdefault(r["group"], []).append(r["task"])
  assert {g: tuple(t) for g, t in table.items()} == PAPER_GROUPS


def test_lookup_and_suggestions():
  assert resolve_group("ecg") == "ECG"
  assert group_tasks("gesturemidair") == ("GestureMidAirD1", "GestureMidAirD2",
                                          "GestureMidAirD3")
  with pytest.raises(ValueError, match="unknown group 'Dodger'; did you mean DodgerLoop"):
    resolve_group("Dodger")
  assert expand_tasks(("ECG200", "CricketX"), ("Cricket",)) == ("CricketX", "CricketY",
                                                                "CricketZ", "ECG200")
