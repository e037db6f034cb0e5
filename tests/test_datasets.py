"""Dataset parsers and loaders: the shared files (row counts of MANIFEST.md),
hand-made files for every format and corruption, and the download path against
a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import bz2
import functools
import gzip
import hashlib
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from analogkernels import datasets
from analogkernels.datasets import DatasetNotFoundError, RemoteFile
from analogkernels.exceptions import DataError


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """An empty cache and no data directory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ANALOGKERNELS_DATA", raising=False)
    monkeypatch.delenv("ANALOGKERNELS_DATA_URL", raising=False)
    return tmp_path / "cache" / "analogkernels"


# --- the shared datasets (MANIFEST.md) -------------------------------------------


def test_ijcnn1_splits_and_paper_encoding(data_dir):
    d = datasets.load("ijcnn1", data_dir=data_dir, download=False)
    assert (d.X_train.shape, d.X_val.shape, d.X_test.shape) == (
        (35000, 13),
        (14990, 13),
        (91701, 13),
    )
    assert (d.y_train.sum(), d.y_val.sum(), d.y_test.sum()) == (3415, 1438, 8712)
    for X in (d.X_train, d.X_val, d.X_test):  # each file z-scored on its own
        np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-10)
        np.testing.assert_allclose(X.std(axis=0, ddof=1), 1, atol=1e-10)
    full = datasets.load("ijcnn1", data_dir=data_dir, download=False, ijcnn1_encoding="full")
    assert full.X_train.shape == (35000, 22)
    # The paper's first column is the index of the active one-hot category.
    path = Path(data_dir) / "ijcnn1" / "ijcnn1.tr.gz"
    X, _, (indptr, idx) = datasets.parse_libsvm(gzip.decompress(path.read_bytes()), n_features=22)
    first = idx[indptr[:-1]]
    assert set(np.unique(first)) <= set(range(1, 11))
    assert np.array_equal(X[np.arange(len(first)), first - 1], np.ones(len(first)))


def test_codrna_skin_magic(data_dir):
    c = datasets.load("cod-rna", data_dir=data_dir, download=False)
    assert c.X_train.shape == (59535, 8) and c.y_train.sum() == 19845
    assert c.X_val.shape[0] + c.X_test.shape[0] == 271617
    assert abs(c.X_val.shape[0] - c.X_test.shape[0]) <= 1
    s = datasets.load("skin", data_dir=data_dir, download=False, seed=3, skin_rows="full")
    assert s.X_train.shape[0] + s.X_eval.shape[0] == 245057
    assert s.y_train.sum() + s.y_eval.sum() == 50859
    assert s.X_train.shape[0] == 245057 // 2
    m = datasets.load("magic04", data_dir=data_dir, download=False)
    assert m.X_train.shape[1] == 10 and m.y_train.sum() + m.y_eval.sum() == 12332
    m2 = datasets.load("magic04", data_dir=data_dir, download=False)
    np.testing.assert_array_equal(m.X_train, m2.X_train)  # the split is seeded


def test_data_dir_from_the_environment(data_dir, monkeypatch):
    monkeypatch.setenv("ANALOGKERNELS_DATA", str(data_dir))
    assert datasets.load("magic04", download=False).X_eval.shape == (9510, 10)


# --- hand-made files ---------------------------------------------------------------


def write(folder: Path, name: str, text: str | bytes, codec: str | None = None) -> Path:
    data = text.encode() if isinstance(text, str) else text
    if codec == "gz":
        data, name = gzip.compress(data), name + ".gz"
    elif codec == "bz2":
        data, name = bz2.compress(data), name + ".bz2"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


LIBSVM = "-1.0 1:0.5 3:2\n1 2:-1 3:1.5\n+1 1:1\n"


@pytest.mark.parametrize("codec", [None, "gz", "bz2"])
def test_libsvm_parser_and_compression(tmp_path, codec):
    path = write(tmp_path, "f", LIBSVM, codec)
    X, y, (indptr, idx) = datasets.parse_libsvm(datasets._read_bytes(path), n_features=4)
    np.testing.assert_array_equal(X, [[0.5, 0, 2, 0], [0, -1, 1.5, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(y, [-1, 1, 1])
    np.testing.assert_array_equal(indptr, [0, 2, 4, 5])
    np.testing.assert_array_equal(idx, [1, 3, 2, 3, 1])


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("1 1:2\nx 1:1\n", r"line 2: bad label 'x'"),
        ("1 1:2\n1 1:a\n", r"line 2: bad index:value pair '1:a'"),
        ("1 3:2 2:1\n", r"line 1: indices must be 1-based and increasing"),
        ("1 0:2\n", r"line 1: indices must be 1-based"),
        ("1 1:2 7:1\n", r"feature index 7 exceeds the 4 features"),
    ],
)
def test_libsvm_corruptions_name_file_and_line(text, pattern):
    with pytest.raises(DataError, match=pattern):
        datasets.parse_libsvm(text.encode(), n_features=4, path="bad.svm")


def test_delimited_arff_and_corruptions():
    rows = datasets.parse_delimited(b"1\t2\t3\t1\r\n4\t5\t6\t2", columns=4)  # CRLF, no final LF
    assert rows == [["1", "2", "3", "1"], ["4", "5", "6", "2"]]
    with pytest.raises(DataError, match=r"x.csv, line 2: expected 3 fields, found 2"):
        datasets.parse_delimited(b"1,2,3\n4,5\n", columns=3, delimiter=",", path="x.csv")
    arff = b"""% comment
@relation eeg
@attribute AF3 numeric
@attribute eyeDetection {0,1}
@data
4329.23,0
4324.62,1
"""
    names, values = datasets.parse_arff(arff)
    assert names == ["AF3", "eyeDetection"]
    np.testing.assert_array_equal(values, [[4329.23, 0], [4324.62, 1]])
    with pytest.raises(DataError, match="line 8: expected 2 values, found 1"):
        datasets.parse_arff(arff + b"12\n")
    with pytest.raises(DataError, match="no @data"):
        datasets.parse_arff(b"@attribute a numeric\n")


def test_every_loader_on_small_files(tmp_path):
    rng = np.random.default_rng(0)
    magic = "".join(
        ",".join(f"{v:.3f}" for v in rng.standard_normal(10)) + f",{'gh'[i % 2]}\n"
        for i in range(40)
    )
    write(tmp_path / "magic04", "magic04.data", magic)
    skin = "\r\n".join(
        f"{i % 256}\t{(3 * i) % 256}\t{(7 * i) % 256}\t{1 + i % 2}" for i in range(40)
    )
    write(tmp_path, "Skin_NonSkin.txt", skin, "gz")  # directly in the folder, compressed
    arff = (
        "@relation e\n@attribute a numeric\n@attribute b numeric\n"
        "@attribute eyeDetection {0,1}\n@data\n"
    )
    arff += "".join(f"{i},{2 * i % 7},{i % 2}\n" for i in range(40))
    write(tmp_path / "eeg", "EEG Eye State.arff", arff)
    letter = "".join(
        chr(65 + i % 26) + "," + ",".join(str((i * j) % 16) for j in range(16)) + "\n"
        for i in range(20000)
    )
    write(tmp_path / "letter", "letter-recognition.data", letter, "bz2")
    cov = "".join(
        ",".join(str((i + j) % 5) for j in range(54)) + f",{1 + i % 7}\n" for i in range(70)
    )
    write(tmp_path / "covtype", "covtype.data", cov, "gz")
    m = datasets.load("magic04", data_dir=tmp_path, download=False)
    assert m.X_train.shape == (20, 10) and set(np.unique(m.y_eval)) <= {0, 1}
    s = datasets.load("skin", data_dir=tmp_path, download=False)
    assert s.X_train.shape == (20, 3) and s.y_train.sum() + s.y_eval.sum() == 20
    e = datasets.load("eeg", data_dir=tmp_path, download=False)
    assert e.X_train.shape == (20, 2)
    le = datasets.load("letter", data_dir=tmp_path, download=False)
    assert le.X_train.shape == (16000, 16) and le.X_val.shape == (2000, 16)
    assert set(np.unique(le.y_train)) == {0, 1}
    l26 = datasets.load("letter", data_dir=tmp_path, download=False, letter_binary=False)
    assert len(np.unique(l26.y_train)) == 26
    c = datasets.load("covtype", data_dir=tmp_path, download=False)
    assert c.X_train.shape == (35, 54) and c.y_train.sum() + c.y_eval.sum() == 10
    # skin in its LIBSVM form
    write(tmp_path / "alt" / "skin", "Skin_NonSkin.txt", "1 1:10 2:20 3:30\n2 1:1 2:2 3:3\n" * 4)
    assert datasets.load("skin", data_dir=tmp_path / "alt", download=False).X_train.shape == (4, 3)


def test_loader_corruptions(tmp_path):
    write(tmp_path / "magic04", "magic04.data", "1,2,3,4,5,6,7,8,9,10,q\n")
    with pytest.raises(DataError, match="class must be 'g' or 'h'"):
        datasets.load("magic04", data_dir=tmp_path, download=False)
    (tmp_path / "skin").mkdir()
    (tmp_path / "skin" / "Skin_NonSkin.txt.gz").write_bytes(gzip.compress(b"1\t2\t3\t1\n")[:-6])
    with pytest.raises(DataError, match="corrupt or truncated gz"):
        datasets.load("skin", data_dir=tmp_path, download=False)


def test_missing_file_says_where_to_put_it(tmp_path, isolated_cache):
    with pytest.raises(DatasetNotFoundError, match=r"put the official file .*magic04\.data"):
        datasets.load("magic04", data_dir=tmp_path, download=False)
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("mnist")


# --- downloads ---------------------------------------------------------------------


@pytest.fixture
def http_server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www (stopped after the test)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_checks_sha_and_caches_atomically(data_dir, http_server, isolated_cache):
    root, url = http_server
    raw = gzip.decompress((Path(data_dir) / "magic04" / "magic04.data.gz").read_bytes())
    (root / "magic04.data").write_bytes(raw)
    d = datasets.load("magic04", base_url=url)
    assert d.X_train.shape == (9510, 10)
    cached = isolated_cache / "magic04" / "magic04.data"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == datasets.FILES["magic04"][0].sha256
    assert not list(cached.parent.glob("*.part"))
    # Served again from the cache: no network needed.
    (root / "magic04.data").unlink()
    assert datasets.load("magic04", base_url=url).X_train.shape == (9510, 10)


def test_download_of_compressed_files(data_dir, http_server, isolated_cache):
    root, url = http_server
    for name in ("ijcnn1.tr", "ijcnn1.val", "ijcnn1.t"):
        raw = gzip.decompress((Path(data_dir) / "ijcnn1" / f"{name}.gz").read_bytes())
        (root / f"{name}.bz2").write_bytes(bz2.compress(raw))
    d = datasets.load("ijcnn1", base_url=url)
    assert d.X_test.shape == (91701, 13)


def test_sha_mismatch_leaves_nothing_in_the_cache(http_server, isolated_cache):
    root, url = http_server
    (root / "magic04.data").write_bytes(b"1,2,3,4,5,6,7,8,9,10,g\n")
    with pytest.raises(DataError, match="SHA-256"):
        datasets.load("magic04", base_url=url)
    assert not (isolated_cache / "magic04").exists() or not any(
        (isolated_cache / "magic04").iterdir()
    )


def test_no_network_error_names_the_file(isolated_cache):
    with pytest.raises(DatasetNotFoundError, match=r"magic04\.data.*ANALOGKERNELS_DATA"):
        datasets.load("magic04", base_url="http://127.0.0.1:9")  # nothing listens on port 9


def test_remote_file_table_is_complete():
    for name, files in datasets.FILES.items():
        assert files and all(isinstance(f, RemoteFile) for f in files), name


# --- robustness (issue 12) ------------------------------------------------------------

COVTYPE_ROWS = 70


def covtype_text(rows: int = COVTYPE_ROWS) -> bytes:
    return "".join(
        ",".join(str((i + j) % 5) for j in range(54)) + f",{1 + i % 7}\n" for i in range(rows)
    ).encode()


@pytest.fixture
def small_covtype(monkeypatch):
    """covtype's table entry with a 70-row file (its check is the row count)."""
    remote = RemoteFile("covtype.data", "http://x/covtype.data.gz", None, "gz", rows=COVTYPE_ROWS)
    monkeypatch.setitem(datasets.FILES, "covtype", [remote])
    return remote


@pytest.mark.parametrize(
    ("dataset", "name"),
    [
        ("magic04", "magic04.data"),
        ("skin", "Skin_NonSkin.txt"),
        ("eeg", "EEG Eye State.arff"),
        ("letter", "letter-recognition.data"),
        ("covtype", "covtype.data"),
        ("cod-rna", "cod-rna"),
    ],
)
@pytest.mark.parametrize("content", [b"", b"\n\n"])
def test_empty_files_are_a_data_error(tmp_path, isolated_cache, dataset, name, content):
    write(tmp_path / dataset, name, content)
    write(tmp_path / dataset, "cod-rna.t", content)
    with pytest.raises(DataError, match=r"no data rows|no @data"):
        datasets.load(dataset, data_dir=tmp_path, download=False)
    # an ARFF header without rows
    arff = b"@relation e\n@attribute a numeric\n@attribute eyeDetection {0,1}\n@data\n"
    with pytest.raises(DataError, match="no data rows after @data"):
        datasets.parse_arff(arff + content)


def test_corrupt_gzip_is_a_data_error(tmp_path):
    packed = bytearray(gzip.compress(b"1,2,3,4,5,6,7,8,9,10,g\n" * 500))
    packed[20:30] = b"\xff" * 10  # a broken deflate stream (zlib.error before)
    write(tmp_path / "magic04", "magic04.data.gz", bytes(packed))
    with pytest.raises(DataError, match="corrupt or truncated gz"):
        datasets.load("magic04", data_dir=tmp_path, download=False)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_non_finite_fields_are_a_data_error_naming_the_row(tmp_path, value):
    rows = ["1,2,3,4,5,6,7,8,9,10,g"] * 3
    rows[1] = f"1,2,{value},4,5,6,7,8,9,10,h"
    write(tmp_path / "magic04", "magic04.data", "\n".join(rows))
    with pytest.raises(DataError, match="data row 2: NaN or infinite"):
        datasets.load("magic04", data_dir=tmp_path, download=False)
    with pytest.raises(DataError, match="data row 1: NaN or infinite"):
        datasets.parse_libsvm(f"1 1:{value}\n".encode(), n_features=2)
    arff = f"@attribute a numeric\n@attribute eyeDetection {{0,1}}\n@data\n1,0\n{value},1\n"
    with pytest.raises(DataError, match="data row 2"):
        datasets.parse_arff(arff.encode())


def test_a_decompression_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_FILE_BYTES", 10_000)
    write(tmp_path / "magic04", "magic04.data", b"1,2,3,4,5,6,7,8,9,10,g\n" * 1000, "gz")
    with pytest.raises(DataError, match="decompresses to more than 10000 bytes"):
        datasets.load("magic04", data_dir=tmp_path, download=False)
    write(tmp_path / "plain" / "magic04", "magic04.data", b"1,2,3,4,5,6,7,8,9,10,g\n" * 1000)
    with pytest.raises(DataError, match="more than any dataset file"):
        datasets.load("magic04", data_dir=tmp_path / "plain", download=False)


def test_downloads_are_bounded(http_server, isolated_cache, small_covtype, monkeypatch):
    root, url = http_server
    (root / "covtype.data.gz").write_bytes(os.urandom(5000))
    monkeypatch.setattr(datasets, "MAX_FILE_BYTES", 1000)
    with pytest.raises(DataError, match="exceeds 1000 bytes"):
        datasets.load("covtype", base_url=url)
    assert not (isolated_cache / "covtype" / "covtype.data").exists()


def test_truncated_download_without_sha_is_caught_by_its_row_count(
    http_server, isolated_cache, small_covtype
):
    root, url = http_server
    (root / "covtype.data.gz").write_bytes(gzip.compress(covtype_text(COVTYPE_ROWS - 3)))
    with pytest.raises(DataError, match=f"has {COVTYPE_ROWS - 3} rows, expected {COVTYPE_ROWS}"):
        datasets.load("covtype", base_url=url)
    assert not (isolated_cache / "covtype" / "covtype.data").exists()


def test_letter_and_eeg_have_their_published_sha256():
    sha = {f.name: f.sha256 for files in datasets.FILES.values() for f in files}
    assert sha["letter-recognition.data"] == (
        "2b89f3602cf768d3c8355267d2f13f2417809e101fc2b5ceee10db19a60de6e2"
    )
    assert sha["EEG Eye State.arff"] == (
        "693c689be416df0b487b45b5b58a44896fbcd0be72b4ef161d5cc34e2c66c928"
    )
    # every file has a SHA-256 or a row count
    for files in datasets.FILES.values():
        assert all(f.sha256 or f.rows for f in files)


def test_damaged_cache_files_are_downloaded_again(http_server, isolated_cache, small_covtype):
    root, url = http_server
    (root / "covtype.data.gz").write_bytes(gzip.compress(covtype_text()))
    assert datasets.load("covtype", base_url=url).X_train.shape == (35, 54)
    cached = isolated_cache / "covtype" / "covtype.data"
    cached.write_bytes(covtype_text(10))  # truncated after the fact
    with pytest.raises(DataError, match=r"has 10 rows, expected 70 .*; delete it"):
        datasets.load("covtype", base_url=url, download=False)
    assert datasets.load("covtype", base_url=url).X_train.shape == (35, 54)
    assert cached.read_bytes() == covtype_text()


def test_orphan_part_files_are_removed(http_server, isolated_cache, small_covtype):
    root, url = http_server
    (root / "covtype.data.gz").write_bytes(gzip.compress(covtype_text()))
    folder = isolated_cache / "covtype"
    folder.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    orphan = folder / f".covtype.data.{int(dead.stdout)}.abcd1234.part"
    orphan.write_bytes(b"half")
    live = folder / f".covtype.data.{os.getpid()}.efgh5678.part"  # a download in progress
    live.write_bytes(b"half")
    datasets.load("covtype", base_url=url)
    assert not orphan.exists() and live.exists()


def test_download_cut_short_is_a_data_error(isolated_cache, small_covtype):
    class Short(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + b"x" * 100)  # then the connection closes

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Short)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        with pytest.raises(DataError, match="cut short"):
            datasets.load("covtype", base_url=f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        thread.join(10)
        server.server_close()
    assert not (isolated_cache / "covtype").exists() or not any(
        (isolated_cache / "covtype").iterdir()
    )


def test_unwritable_cache_is_a_clear_error(http_server, tmp_path, monkeypatch, small_covtype):
    root, url = http_server
    (root / "covtype.data.gz").write_bytes(gzip.compress(covtype_text()))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.delenv("ANALOGKERNELS_DATA", raising=False)
    with pytest.raises(DataError, match=r"cannot write the download cache .*XDG_CACHE_HOME"):
        datasets.load("covtype", base_url=url)


def test_skin_rows_paper_is_the_head_of_the_file_the_paper_evaluated(data_dir):
    # The paper's skin accuracies are whole counts of 87,697 evaluation rows:
    # the validation ∪ test half of the first 175,394 rows of the file.
    paper = datasets.load("skin", data_dir=data_dir)
    full = datasets.load("skin", data_dir=data_dir, skin_rows="full")
    assert paper.X_train.shape[0] + paper.X_eval.shape[0] == 175_394
    assert paper.X_eval.shape[0] == 87_697
    assert full.X_train.shape[0] + full.X_eval.shape[0] == 245_057
    # The UCI file lists the 50,859 skin rows first: the head holds all of them.
    assert paper.y_train.sum() + paper.y_eval.sum() == 50_859
    with pytest.raises(datasets.ConfigError, match="skin_rows"):
        datasets.load("skin", data_dir=data_dir, skin_rows="half")


def test_loaders_give_the_widths_of_the_metadata_table(data_dir, tmp_path):
    # WIDTHS is the one table of input widths (the energy model reads it too).
    for name in ("ijcnn1", "cod-rna", "skin", "magic04"):
        assert (
            datasets.load(name, data_dir=data_dir, download=False).n_features
            == (datasets.WIDTHS[name])
        )
    full = datasets.load("ijcnn1", data_dir=data_dir, download=False, ijcnn1_encoding="full")
    assert full.n_features == datasets.IJCNN1_FULL_WIDTH
    from analogkernels.paper.energy import PAPER_WIDTHS

    assert all(datasets.WIDTHS[name] == d for name, d in PAPER_WIDTHS.items())


def test_choices_of_the_loaders_are_their_constants(tmp_path, isolated_cache):
    with pytest.raises(ValueError, match="encoding must be 'paper' or 'full', got 'x'"):
        datasets.load("ijcnn1", data_dir=tmp_path, download=False, ijcnn1_encoding="x")
    assert datasets.IJCNN1_ENCODINGS == datasets.SKIN_ROWS == ("paper", "full")
    assert datasets.DEFAULT_IJCNN1_ENCODING in datasets.IJCNN1_ENCODINGS
    assert datasets.DEFAULT_SKIN_ROWS in datasets.SKIN_ROWS


def test_data_folder_is_the_argument_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("ANALOGKERNELS_DATA", raising=False)
    assert datasets.data_folder() is None
    monkeypatch.setenv("ANALOGKERNELS_DATA", "")
    assert datasets.data_folder() is None  # empty counts as unset
    monkeypatch.setenv("ANALOGKERNELS_DATA", str(tmp_path / "env"))
    assert datasets.data_folder() == tmp_path / "env"
    assert datasets.data_folder(tmp_path / "arg") == tmp_path / "arg"
