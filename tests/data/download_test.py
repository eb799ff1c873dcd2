import functools
import hashlib
import http.server
import io
import os
import shutil
import socket
import stat
import threading
import zipfile

import numpy as np
import pytest

from mtl2d import data
from mtl2d import files
from mtl2d.data import download as download_lib


def _ts_text(labels, rows, name):
  head = [f"@problemName {name}", "@timeStamps false", "@missing true", "@univariate true",
          "@equalLength false", "@classLabel true 1 2", "@data"]
  body = [",".join("?" if np.isnan(v) else f"{v:.5f}" for v in row) + f":{label}"
          for label, row in zip(labels, rows)]
  return "\n".join(["# a comment"] + head + body) + "\n"


def _make_zip(name, parts, fmt):
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as zf:
    for split, (labels, rows) in parts.items():
      if fmt == "ts":
        zf.writestr(f"{name}/{name}_{split}.ts", _ts_text(labels, rows, name))
      else:
        text = "".join("\t".join([str(y)] + [f"{v:.5f}" for v in r]) + "\n"
                       for y, r in zip(labels, rows))
        zf.writestr(f"{name}_{split}.tsv", text)
  return buf.getvalue()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
  """Requests to 127.0.0.1 must not go through a proxy configured in the environment."""
  for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY"):
    monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server(tmp_path):
  """A bounded local HTTP server on 127.0.0.1 serving tmp_path/served."""
  root = tmp_path / "served"
  root.mkdir()
  handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
  handler.log_message = lambda *a, **k: None
  httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  try:
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
  finally:
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _parts(seed=0, ragged=False):
  rng = np.random.default_rng(seed)
  parts = {}
  for split, n in (("TRAIN", 9), ("TEST", 6)):
    labels = [1 + i % 2 for i in range(n)]
    rows = [np.round(rng.standard_normal(10), 5) for _ in range(n)]
    if ragged:
      rows = [r[:6 + i % 4] for i, r in enumerate(rows)]
    parts[split] = (labels, rows)
  return parts


@pytest.mark.parametrize("fmt", ["ts", "tsv"])
def test_download_extracts_ucr_layout_and_records_checksum(server, tmp_path, fmt):
  served, url = server
  parts = _parts(ragged=fmt == "ts")
  archive = _make_zip("Toy", parts, fmt)
  (served / "Toy.zip").write_bytes(archive)
  out_dir = tmp_path / "data"
  result = download_lib.download(["Toy"], out_dir, base_url=url, timeout=10)
  assert result == {"Toy": out_dir / "Toy"}
  assert (out_dir / "Toy" / "Toy_TRAIN.tsv").is_file()
  sums = (out_dir / ".archives" / "SHA256SUMS").read_text()
  assert f"{hashlib.sha256(archive).hexdigest()}  Toy.zip" in sums
  x, y, values = data.load_arrays("Toy", out_dir, znorm=False)
  rows = parts["TRAIN"][1] + parts["TEST"][1]
  assert values == ("1", "2") and x.shape == (15, max(len(r) for r in rows))
  if fmt == "tsv":
    np.testing.assert_allclose(x, np.stack(rows), rtol=0, atol=1e-6)
  else:  # Ragged .ts rows are NaN-padded on conversion, then resampled by the loader.
    _, raw = data.read_ucr_file(out_dir / "Toy" / "Toy_TRAIN.tsv")
    np.testing.assert_allclose(raw[0, 1:1 + len(rows[0])], rows[0], atol=1e-6)
    assert np.isnan(raw[0, 1 + len(rows[0]):]).all()
  # A second call is served from the extracted files without the server.
  (served / "Toy.zip").unlink()
  assert download_lib.download(["Toy"], out_dir, base_url=url) == {"Toy": out_dir / "Toy"}


def test_download_rejects_wrong_checksum_and_changed_archive(server, tmp_path):
  served, url = server
  (served / "Toy.zip").write_bytes(_make_zip("Toy", _parts(), "tsv"))
  out_dir = tmp_path / "data"
  with pytest.raises(download_lib.DownloadError, match="SHA-256 of .*Toy.zip is .* expected 00"):
    download_lib.download(["Toy"], out_dir, base_url=url, checksums={"Toy": "00" * 32})
  assert not (out_dir / "Toy").exists()
  with pytest.raises(download_lib.DownloadError, match="require_checksums"):
    download_lib.download(["Toy"], out_dir, base_url=url, require_checksums=True)
  download_lib.download(["Toy"], out_dir, base_url=url)
  # The server now serves a different archive: the recorded checksum rejects it.
  (served / "Toy.zip").write_bytes(_make_zip("Toy", _parts(seed=1), "tsv"))
  with pytest.raises(download_lib.DownloadError, match="corrupt or changed"):
    download_lib.download(["Toy"], out_dir, base_url=url, force=True)


def test_damaged_cached_archive_is_fetched_again_and_named(server, tmp_path):
  served, url = server
  good = _make_zip("Toy", _parts(), "tsv")
  (served / "Toy.zip").write_bytes(good)
  out_dir = tmp_path / "data"
  download_lib.download(["Toy"], out_dir, base_url=url)
  cached = out_dir / ".archives" / "Toy.zip"
  # The cached archive is damaged on disk and the dataset removed: a plain retry re-fetches
  # (it used to fail the checksum on the cached copy again and again).
  shutil.rmtree(out_dir / "Toy")
  cached.write_bytes(good[:-16] + b"\0" * 16)
  assert download_lib.download(["Toy"], out_dir, base_url=url) == {"Toy": out_dir / "Toy"}
  assert cached.read_bytes() == good and (out_dir / "Toy" / "Toy_TEST.tsv").is_file()
  # When the server's copy does not match either, the error names the cached file and where
  # the expected checksum comes from, and installs nothing.
  shutil.rmtree(out_dir / "Toy")
  cached.write_bytes(b"damaged")
  (served / "Toy.zip").write_bytes(_make_zip("Toy", _parts(seed=2), "tsv"))
  sums = out_dir / ".archives" / "SHA256SUMS"
  with pytest.raises(download_lib.DownloadError,
                     match=rf"expected {hashlib.sha256(good).hexdigest()} \(from {sums}\).*"
                           rf"nothing was installed. The cached archive {cached} does not match "
                           rf"either"):
    download_lib.download(["Toy"], out_dir, base_url=url)
  assert not (out_dir / "Toy").exists() and cached.read_bytes() == b"damaged"


def test_download_errors_say_how_to_install_by_hand(server, tmp_path):
  served, url = server
  with pytest.raises(download_lib.DownloadError, match=r"HTTP 404.*put CricketXX/CricketXX_TRAIN"):
    download_lib.download(["CricketXX"], tmp_path, base_url=url)
  (served / "Bad.zip").write_bytes(b"not a zip")
  with pytest.raises(download_lib.DownloadError, match="not a zip archive"):
    download_lib.download(["Bad"], tmp_path, base_url=url)
  zipped = io.BytesIO()
  with zipfile.ZipFile(zipped, "w") as zf:
    zf.writestr("Half_TRAIN.tsv", "1\t0.5\n")
  (served / "Half.zip").write_bytes(zipped.getvalue())
  with pytest.raises(download_lib.DownloadError, match="no Half_TEST.tsv/.txt/.ts inside"):
    download_lib.download(["Half"], tmp_path, base_url=url)
  # All or nothing: no Half/Half_TRAIN.tsv left behind (it loaded with allow_partial).
  assert not (tmp_path / "Half").exists()
  zipped = io.BytesIO()
  with zipfile.ZipFile(zipped, "w") as zf:
    zf.writestr("Ugly_TRAIN.tsv", "1\t0.5\n2\t0.7\n")
    zf.writestr("Ugly_TEST.tsv", "1\t0.5\n2\tzero\n")
  (served / "Ugly.zip").write_bytes(zipped.getvalue())
  with pytest.raises(ValueError, match=r"Ugly.zip: Ugly_TEST.tsv:2: non-numeric cell 'zero' in "
                                       r"column 2; nothing was installed"):
    download_lib.download(["Ugly"], tmp_path, base_url=url)
  assert not (tmp_path / "Ugly").exists()
  assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
  with pytest.raises(ValueError, match="invalid dataset name"):
    download_lib.download(["../etc"], tmp_path, base_url=url)


def test_download_without_network_is_clear(tmp_path):
  sock = socket.socket()
  sock.bind(("127.0.0.1", 0))
  port = sock.getsockname()[1]
  sock.close()  # Nothing listens on this port any more: connection refused.
  with pytest.raises(download_lib.DownloadError,
                     match=r"cannot reach .*ECG200.zip.*without network access, put ECG200/"):
    download_lib.download(["ECG200"], tmp_path, base_url=f"http://127.0.0.1:{port}", timeout=5)


def test_command_line(server, tmp_path, capsys):
  served, url = server
  (served / "Toy.zip").write_bytes(_make_zip("Toy", _parts(), "tsv"))
  rc = download_lib.main(["--datasets=Toy", f"--data_dir={tmp_path}", f"--base_url={url}"])
  assert rc == 0 and f"Toy: {tmp_path / 'Toy'}" in capsys.readouterr().out
  rc = download_lib.main(["--datasets=Nope", f"--data_dir={tmp_path}", f"--base_url={url}"])
  assert rc == 1 and "HTTP 404" in capsys.readouterr().err


def _splits(directory):
  return {split: (directory / f"Toy_{split}.tsv").read_text() for split in ("TRAIN", "TEST")}


@pytest.mark.parametrize("exchange", [True, False])  # renameat2 exchange, or two renames
def test_force_reinstall_never_mixes_two_archive_versions(server, tmp_path, monkeypatch,
                                                          exchange):
  # Before: a failure between the per-file renames left TRAIN of one archive and TEST of the
  # other, reported as installed.
  served, url = server
  out_dir = tmp_path / "data"
  (served / "Toy.zip").write_bytes(_make_zip("Toy", _parts(seed=0), "tsv"))
  download_lib.download(["Toy"], out_dir, base_url=url, timeout=10)
  old = _splits(out_dir / "Toy")
  (served / "Toy.zip").write_bytes(_make_zip("Toy", _parts(seed=1), "tsv"))
  calls, real_replace = [], os.replace

  def flaky_replace(a, b):
    calls.append(b)
    if len(calls) == 2:
      raise OSError(28, "No space left on device (injected)")
    return real_replace(a, b)

  if not exchange:
    monkeypatch.setattr(files, "_exchange", lambda a, b: False)
  monkeypatch.setattr(os, "replace", flaky_replace)
  try:
    download_lib.download(["Toy"], out_dir, base_url=url, timeout=10, force=True,
                          checksums={"Toy": hashlib.sha256(
                              (served / "Toy.zip").read_bytes()).hexdigest()})
  except OSError:
    pass
  monkeypatch.setattr(os, "replace", real_replace)
  installed = _splits(out_dir / "Toy")
  changed = [split for split in installed if installed[split] != old[split]]
  assert changed in ([], ["TRAIN", "TEST"]), "TRAIN and TEST come from different archives"
  assert sorted(p.name for p in out_dir.iterdir()) == [".archives", "Toy"]  # no staging left


def test_directories_follow_the_umask(server, tmp_path):
  # Before: the dataset directory was created 0700 (a renamed mkdtemp) whatever the umask.
  served, url = server
  (served / "Toy.zip").write_bytes(_make_zip("Toy", _parts(), "tsv"))
  old = os.umask(0o022)
  try:
    download_lib.download(["Toy"], tmp_path / "data", base_url=url, timeout=10)
  finally:
    os.umask(old)
  assert stat.S_IMODE((tmp_path / "data" / "Toy").stat().st_mode) == 0o755
  assert stat.S_IMODE((tmp_path / "data" / "Toy" / "Toy_TRAIN.tsv").stat().st_mode) == 0o644


def test_extraction_is_bounded_in_size_and_ratio(server, tmp_path):
  # Before: a 1.1 MB zip installed 200 MB and peaked at 1 GB of memory.
  served, url = server
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
    zf.writestr("Bomb_TRAIN.tsv", "1\t" + "\t".join(["0.0"] * 999) + "\n" * 1 + (
        "1\t" + "\t".join(["0.0"] * 999) + "\n") * 2000)
    zf.writestr("Bomb_TEST.tsv", "1\t0.5\n")
  (served / "Bomb.zip").write_bytes(buf.getvalue())
  with pytest.raises(download_lib.DownloadError, match=r"Bomb_TRAIN.tsv extracts to more than "
                                                       r".*max_ratio=200.*zip bomb"):
    download_lib.download(["Bomb"], tmp_path / "data", base_url=url, timeout=10)
  assert not (tmp_path / "data" / "Bomb").exists()
  (served / "Toy.zip").write_bytes(_make_zip("Toy", _parts(), "tsv"))
  with pytest.raises(download_lib.DownloadError, match="max_extracted_bytes=100,"):
    download_lib.download(["Toy"], tmp_path / "data", base_url=url, timeout=10,
                          max_extracted_bytes=100)
  assert not (tmp_path / "data" / "Toy").exists()
