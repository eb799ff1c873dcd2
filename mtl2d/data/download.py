"""Downloads UCR datasets, verifies them by SHA-256, and lays them out as the UCR 2018 archive.

Usage:
  python -m mtl2d.data.download --datasets=CricketX,CricketY --data_dir=~/.cache/mtl2d/ucr
  python -m mtl2d.data.download --groups=Cricket,ECG

Source: the UCR/UEA repository's per-dataset archives, `{base_url}/{NAME}.zip` with
`base_url = https://www.timeseriesclassification.com/aeon-toolkit` (the address aeon and sktime
read). An archive holds `NAME_TRAIN`/`NAME_TEST` as `.ts` (sktime format), `.txt` (old UCR,
whitespace-separated) and/or `.tsv` (UCR 2018); the first found, in the order tsv, txt, ts, is
written as `DATA_DIR/NAME/NAME_{TRAIN,TEST}.tsv` keeping the values' text (no precision lost).

Checksums: archives are cached in `DATA_DIR/.archives/` and checked against the SHA-256 given in
`checksums` or recorded in `DATA_DIR/.archives/SHA256SUMS`. The repository publishes no checksums,
so an archive first fetched without one has its hash recorded there (trust on first use) and later
fetches must match it; pass `require_checksums=True` to refuse unknown archives instead. A cached
archive that no longer matches its checksum is fetched again; an error names the archive, the
checksum's source and the cached file.

Installation is all or nothing: both splits are converted and read back in a temporary directory
beside the dataset's, which then replaces `DATA_DIR/NAME/` whole (`mtl2d.files.replace_directory`),
so an archive that lacks a split or holds an unreadable one leaves no half dataset behind, and a
reinstall (`force=True`) never mixes the splits of two archive versions. Directories follow the
umask.

Bounds: an archive member larger than `max_extracted_bytes` (default 1 GiB) once extracted or
converted, or expanding more than `max_ratio` (default 200) times its compressed size, is refused
before it is read whole (UCR text compresses 3-20 times; a larger ratio is a zip bomb).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from collections.abc import Sequence
import hashlib
import io
import logging
import pathlib
import re
import sys
import urllib.error
import urllib.request
import zipfile

from mtl2d import files
from mtl2d.data import groups as groups_lib
from mtl2d.data import ucr

DEFAULT_BASE_URL = "https://www.timeseriesclassification.com/aeon-toolkit"
MAX_EXTRACTED_BYTES = 1 << 30
MAX_RATIO = 200
ARCHIVE_DIR = ".archives"
SUMS_FILE = "SHA256SUMS"


class DownloadError(RuntimeError):
  """A dataset could not be fetched; the message says where to put the files by hand."""


def _by_hand(name: str, data_dir: pathlib.Path, url: str) -> str:
  return (f"To install {name} without network access, put {name}/{name}_TRAIN.tsv and "
          f"{name}/{name}_TEST.tsv (UCR 2018 layout, optionally .tsv.gz) under {data_dir}, e.g. "
          "from the UCR archive (https://www.cs.ucr.edu/~eamonn/time_series_data_2018/, folder "
          f"UCRArchive_2018/{name}), or copy {url} to {data_dir / ARCHIVE_DIR / (name + '.zip')} "
          "and rerun.")


def _read_sums(path: pathlib.Path) -> dict[str, str]:
  sums = {}
  if path.is_file():
    for line in path.read_text().splitlines():
      parts = line.split()
      if len(parts) == 2:
        sums[parts[1].removesuffix(".zip")] = parts[0].lower()
  return sums


def _ts_rows(text: str, where: str) -> list[list[str]]:
  """Rows `[label, v1, ...]` of a univariate sktime `.ts` file; '?' becomes NaN."""
  rows, in_data = [], False
  for lineno, line in enumerate(text.splitlines(), start=1):
    line = line.strip()
    if not line or line.startswith("#"):
      continue
    if not in_data:
      in_data = line.lower() == "@data"
      continue
    parts = line.split(":")
    if len(parts) != 2:
      raise ValueError(f"{where}:{lineno}: expected one series and a label ('v1,...,vn:label'); "
                       "multivariate or timestamped .ts files are not supported")
    values = ["NaN" if v.strip() in ("?", "") else v.strip() for v in parts[0].split(",")]
    rows.append([parts[1].strip()] + values)
  if not rows:
    raise ValueError(f"{where}: no @data rows")
  return rows


def _convert(member: str, data: bytes, max_bytes: int = MAX_EXTRACTED_BYTES) -> str:
  """UCR 2018 TSV text of an archive member (.tsv kept, .txt/.ts re-delimited, NaN-padded)."""
  text = data.decode("utf-8", errors="replace")
  suffix = member.rsplit(".", 1)[-1].lower()
  if suffix == "tsv":
    return text
  if suffix == "txt":
    rows = [line.split() for line in text.splitlines() if line.strip()]
  else:
    rows = _ts_rows(text, member)
  width = max(len(r) for r in rows)
  if width * len(rows) * 4 > max_bytes:  # NaN padding of ragged rows: >= 4 bytes a cell
    raise DownloadError(f"{member}: {len(rows)} rows padded to {width} cells would exceed "
                        f"max_extracted_bytes={max_bytes}; nothing was installed")
  return "".join("\t".join(r + ["NaN"] * (width - len(r))) + "\n" for r in rows)


def _read_member(zf: zipfile.ZipFile, member: str, where: str, max_bytes: int,
                 max_ratio: float) -> bytes:
  """A member's bytes, refused (DownloadError) once they pass the size or ratio bound."""
  info = zf.getinfo(member)
  limit = min(max_bytes, int(max_ratio * max(info.compress_size, 1)))
  # The sizes in the zip directory may lie: the stream is cut at the bound, whatever they say.
  with zf.open(member) as f:
    data = f.read(limit + 1)
  if len(data) > limit or info.file_size > limit:
    size = max(len(data), info.file_size)
    raise DownloadError(
        f"{where}: {member} extracts to more than {limit} bytes ({size}+ from "
        f"{info.compress_size} compressed; max_extracted_bytes={max_bytes}, max_ratio="
        f"{max_ratio}); refusing it as a likely zip bomb, nothing was installed")
  return data


def _extract(name: str, archive: bytes, target: pathlib.Path, where: str, *,
             max_bytes: int = MAX_EXTRACTED_BYTES, max_ratio: float = MAX_RATIO) -> None:
  """Converts both splits of an archive into a staging directory, checks them, then swaps it in.

  Nothing reaches `target` unless both splits were found and read back; `target` is then
  replaced whole.
  """
  with zipfile.ZipFile(io.BytesIO(archive)) as zf:
    members = {pathlib.PurePosixPath(m).name.lower(): m for m in zf.namelist()}
    chosen = {}
    for split in ucr.UCR_SPLITS:
      member = next((members[k] for k in (f"{name}_{split}.{s}".lower() for s in
                                          ("tsv", "txt", "ts")) if k in members), None)
      if member is None:
        raise DownloadError(f"{where}: no {name}_{split}.tsv/.txt/.ts inside the archive "
                            f"(it holds {', '.join(sorted(members)) or 'nothing'}); nothing was "
                            f"installed")
      chosen[split] = member

    def fill(staging: pathlib.Path) -> None:
      for split, member in chosen.items():
        out = staging / f"{name}_{split}.tsv"
        text = _convert(member, _read_member(zf, member, where, max_bytes, max_ratio),
                        max_bytes)
        if len(text) > max_bytes:
          raise DownloadError(f"{where}: {member} converts to {len(text)} bytes, more than "
                              f"max_extracted_bytes={max_bytes}; nothing was installed")
        out.write_text(text)
        del text
        try:
          ucr.read_ucr_file(out)
        except ValueError as e:  # Name the archive member, not the staging file.
          detail = str(e).replace(str(out), member, 1)
          raise ValueError(f"{where}: {detail}; nothing was installed") from None

    # The dataset's directory is the installer's: replaced whole, whatever it held.
    files.replace_directory(target, fill, owned=lambda d: True)


def _fetch(url: str, timeout: float) -> bytes:
  with urllib.request.urlopen(url, timeout=timeout) as response:
    return response.read()


def download(
    datasets: Sequence[str],
    data_dir: ucr.PathLike | None = None,
    *,
    base_url: str = DEFAULT_BASE_URL,
    checksums: Mapping[str, str] | None = None,
    require_checksums: bool = False,
    force: bool = False,
    timeout: float = 60.0,
    max_extracted_bytes: int = MAX_EXTRACTED_BYTES,
    max_ratio: float = MAX_RATIO,
) -> dict[str, pathlib.Path]:
  """Fetches UCR datasets into `data_dir` in the UCR 2018 layout.

  Args:
    datasets: dataset names, e.g. ["CricketX"].
    data_dir: target directory; None means `default_data_dir()`.
    base_url: archives are fetched from `{base_url}/{NAME}.zip`.
    checksums: dataset name -> expected SHA-256 (hex) of its zip archive.
    require_checksums: refuse archives with no known checksum instead of recording one.
    force: fetch and extract again even if the dataset is present.
    timeout: seconds to wait for the server.
    max_extracted_bytes: largest split accepted, extracted or converted (bytes).
    max_ratio: largest accepted ratio of a split's extracted to compressed size.

  Returns:
    dataset name -> its directory.

  Raises:
    DownloadError: the server cannot be reached or has no such archive (the message says how to
      install the files by hand), a checksum does not match, the archive lacks a split, or a
      split exceeds `max_extracted_bytes` or `max_ratio`.
    ValueError: an empty dataset name.
  """
  data_dir = pathlib.Path(data_dir).expanduser() if data_dir is not None else \
      ucr.default_data_dir()
  archives = data_dir / ARCHIVE_DIR
  sums_path = archives / SUMS_FILE
  checksums = {k: v.lower() for k, v in (checksums or {}).items()}
  out = {}
  for name in datasets:
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name or ""):
      raise ValueError(f"datasets: invalid dataset name {name!r}")
    target = data_dir / name
    if not force and name in ucr.available_tasks(data_dir):
      logging.info("%s already in %s", name, target)
      out[name] = target
      continue
    url = f"{base_url.rstrip('/')}/{name}.zip"
    cached = archives / f"{name}.zip"
    expected = checksums.get(name) or _read_sums(sums_path).get(name)
    origin = "the checksums argument" if name in checksums else str(sums_path)
    archive = None
    if cached.is_file() and not force:
      archive = cached.read_bytes()
      if expected is not None and hashlib.sha256(archive).hexdigest() != expected:
        logging.warning("%s: the cached archive %s does not match its SHA-256 in %s; fetching "
                        "%s again", name, cached, origin, url)
        archive = None
    if archive is None:
      try:
        archive = _fetch(url, timeout)
      except urllib.error.HTTPError as e:
        close = groups_lib.closest_names(name, groups_lib.PAPER_TASKS)
        hint = f" (did you mean {', '.join(close)}?)" if close and name not in close else ""
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}{hint}. "
                            f"{_by_hand(name, data_dir, url)}") from None
      except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"cannot reach {url}: {reason}. {_by_hand(name, data_dir, url)}"
                            ) from None
    digest = hashlib.sha256(archive).hexdigest()
    if expected is None and require_checksums:
      raise DownloadError(f"{name}: no known SHA-256 for {url} and require_checksums is set; "
                          f"its SHA-256 is {digest}")
    if expected is not None and digest != expected:
      kept = ""
      if cached.is_file():
        kept = (f" The cached archive {cached} matches; rerun without force to install it."
                if hashlib.sha256(cached.read_bytes()).hexdigest() == expected else
                f" The cached archive {cached} does not match either (left as it was).")
      raise DownloadError(
          f"{name}: SHA-256 of {url} is {digest}, expected {expected} (from {origin}); the "
          f"archive is corrupt or changed, and nothing was installed.{kept} Retry later; if the "
          f"server's archive changed on purpose, remove the line of {name}.zip from {sums_path} "
          f"(or pass its new checksum) and rerun.")
    try:
      _extract(name, archive, target, url, max_bytes=max_extracted_bytes, max_ratio=max_ratio)
    except zipfile.BadZipFile:
      raise DownloadError(f"{url} is not a zip archive. {_by_hand(name, data_dir, url)}") from None
    archives.mkdir(parents=True, exist_ok=True)
    files.write_bytes(cached, archive)
    if expected is None:  # Trust on first use: later fetches must match this archive.
      with open(sums_path, "a") as f:
        f.write(f"{digest}  {name}.zip\n")
      logging.warning("%s: recorded SHA-256 %s in %s (first download)", name, digest, sums_path)
    out[name] = target
  return out


def main(argv: Sequence[str] | None = None) -> int:
  """Command line: `python -m mtl2d.data.download --datasets=A,B --data_dir=DIR`."""
  parser = argparse.ArgumentParser(prog="python -m mtl2d.data.download", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--datasets", default="", help="comma-separated dataset names")
  parser.add_argument("--groups", default="",
                      help=f"comma-separated paper groups: {','.join(groups_lib.PAPER_GROUPS)}")
  parser.add_argument("--data_dir", default=None, help="target directory (default: "
                      "$MTL2D_DATA_DIR or ~/.cache/mtl2d/ucr)")
  parser.add_argument("--base_url", default=DEFAULT_BASE_URL)
  parser.add_argument("--require_checksums", action="store_true")
  parser.add_argument("--force", action="store_true")
  args = parser.parse_args(argv)
  split = lambda s: [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
  try:
    names = groups_lib.expand_tasks(split(args.datasets), split(args.groups))
    if not names:
      parser.error("name at least one dataset (--datasets) or group (--groups)")
    for name, path in download(names, args.data_dir, base_url=args.base_url,
                               require_checksums=args.require_checksums,
                               force=args.force).items():
      print(f"{name}: {path}")
  except (DownloadError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
