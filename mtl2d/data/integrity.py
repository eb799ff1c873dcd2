"""Reading a series file's bytes: gzip errors that name the file, embedded files verified.

The Cricket files shipped in `mtl2d/data/embedded/` are listed with their SHA-256 (of the
uncompressed text) in `embedded/SHA256SUMS`. `read_bytes` checks each embedded file against it
the first time the process reads it (3 MB for the group, once), so a changed digit in the
package is an error instead of a silently different Table I.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
import zlib

__all__ = ["EMBEDDED_DIR", "read_bytes", "verify_embedded"]

EMBEDDED_DIR = pathlib.Path(__file__).resolve().parent / "embedded"
_VERIFIED: set[pathlib.Path] = set()


def _expected() -> dict[str, str]:
  sums = {}
  for line in (EMBEDDED_DIR / "SHA256SUMS").read_text().splitlines():
    if line.strip():
      digest, name = line.split()
      sums[name] = digest
  return sums


def verify_embedded(path: str | os.PathLike, text: bytes) -> None:
  """Checks the uncompressed `text` of an embedded file against `embedded/SHA256SUMS`.

  Raises:
    ValueError: the file is not listed, or its content differs from its SHA-256.
  """
  path = pathlib.Path(path).resolve()
  if path in _VERIFIED:
    return
  name = path.relative_to(EMBEDDED_DIR).as_posix().removesuffix(".gz")
  expected = _expected().get(name)
  if expected is None:
    raise ValueError(f"{path} is not listed in {EMBEDDED_DIR / 'SHA256SUMS'}")
  if hashlib.sha256(text).hexdigest() != expected:
    raise ValueError(f"{path} does not match its SHA-256 in {EMBEDDED_DIR / 'SHA256SUMS'}: the "
                     f"installed package was changed or damaged; reinstall mtl2d")
  _VERIFIED.add(path)


def read_bytes(path: str | os.PathLike) -> bytes:
  """The content of a `.tsv` or `.tsv.gz` file (decompressed), verified if embedded.

  Raises:
    ValueError: a corrupt or truncated gzip file, or an embedded file that does not match its
      checksum; the message names the file.
  """
  path = pathlib.Path(path)
  raw = path.read_bytes()
  if raw[:2] == b"\x1f\x8b":
    try:
      raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
      raise ValueError(f"{path}: not a readable gzip file ({type(e).__name__}: {e}); download "
                       f"or copy it again") from None
  if path.resolve().is_relative_to(EMBEDDED_DIR):
    verify_embedded(path, raw)
  return raw
