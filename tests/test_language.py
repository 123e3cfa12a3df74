"""The language classifier: py3langid's answers, with its model mapped from a copy
unpacked once into the cache directory rather than unpacked into every process."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from monitor.language import cache_directory, load_identifier

REPO = Path(__file__).resolve().parent.parent
SEED = (Path(__file__).parent / "fixtures" / "seed_repost.txt").read_text()

TEXTS = [
    SEED[:1000],
    "Police in Sihanoukville freed 312 workers from a compound on Tuesday.",
    "Die Polizei hat am Dienstag in Sihanoukville 312 Arbeiter aus einem Gelände befreit.",
    "La police a libéré mardi 312 travailleurs d'un complexe à Sihanoukville.",
    "Cảnh sát đã giải cứu 312 công nhân khỏi một khu phức hợp ở Sihanoukville.",
    "ប៉ូលិសបានជួយសង្គ្រោះកម្មករ ៣១២ នាក់ ពីបរិវេណមួយ នៅក្រុងព្រះសីហនុ កាលពីថ្ងៃអង្គារ។",
    "警方周二在西哈努克城的一个园区解救了312名工人，他们被迫从事网络诈骗。",
    "ตำรวจช่วยเหลือคนงาน 312 คนจากอาคารแห่งหนึ่งในสีหนุวิลล์เมื่อวันอังคาร",
    "",
]


@pytest.fixture(scope="module")
def bundled() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE)


def test_the_mapped_model_answers_as_py3langids_own(
    tmp_path: Path, bundled: LanguageIdentifier
) -> None:
    mapped = load_identifier(tmp_path)
    assert [mapped.classify(text) for text in TEXTS] == [bundled.classify(text) for text in TEXTS]
    assert [mapped.classify(text)[0] for text in TEXTS[:8]] == [
        "en", "en", "de", "fr", "vi", "km", "zh", "th",
    ]  # fmt: skip
    mapped_files = {Path(line.split()[-1]).name for line in _maps_under(tmp_path)}
    assert mapped_files == {"nextmove.npy", "ptc.npy"}


def test_the_model_is_unpacked_once_and_then_reused(tmp_path: Path) -> None:
    load_identifier(tmp_path)
    (unpacked,) = tmp_path.iterdir()
    written = {path.name: path.stat().st_mtime_ns for path in unpacked.iterdir()}
    assert set(written) == {"nextmove.npy", "ptc.npy", "small.npz"}

    load_identifier(tmp_path)
    assert list(tmp_path.iterdir()) == [unpacked], "nothing left over beside the model"
    assert {path.name: path.stat().st_mtime_ns for path in unpacked.iterdir()} == written


def test_a_damaged_copy_is_unpacked_again(tmp_path: Path, bundled: LanguageIdentifier) -> None:
    load_identifier(tmp_path)
    (unpacked,) = tmp_path.iterdir()
    table = unpacked / "ptc.npy"
    size = table.stat().st_size
    with table.open("r+b") as file:  # as a full disk or a killed copy would leave it
        file.truncate(size // 2)

    mapped = load_identifier(tmp_path)
    assert table.stat().st_size == size
    assert [mapped.classify(text) for text in TEXTS] == [bundled.classify(text) for text in TEXTS]


def test_processes_starting_together_unpack_one_copy(tmp_path: Path) -> None:
    """Two daemons (or a daemon and `monitor` commands) started at once on an empty
    cache: each gets the model, one copy stays, nothing is left half-written."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from monitor.language import load_identifier\n"
        "print(load_identifier(Path(sys.argv[1])).classify(sys.argv[2])[0])\n"
    )
    started = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path), TEXTS[2]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        for _ in range(3)
    ]
    results = [process.communicate(timeout=120) for process in started]
    assert [stdout.strip() for stdout, _ in results] == ["de"] * 3
    assert not any("into memory instead" in stderr for _, stderr in results)
    assert [path.name for path in tmp_path.iterdir()] == [next(tmp_path.glob("py3langid-*")).name]


def test_what_a_killed_unpacking_left_is_removed(tmp_path: Path) -> None:
    abandoned = tmp_path / ".unpacking-abandoned"
    abandoned.mkdir()
    (abandoned / "ptc.npy").write_bytes(b"half")
    an_hour_ago = time.time() - 3600
    os.utime(abandoned, (an_hour_ago, an_hour_ago))
    load_identifier(tmp_path)
    assert not abandoned.exists()


def test_a_cache_that_cannot_be_written_costs_memory_not_answers(
    tmp_path: Path, bundled: LanguageIdentifier, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory should be")
    with caplog.at_level(logging.WARNING, logger="monitor.language"):
        identifier = load_identifier(blocked / "monitor")
    assert [identifier.classify(text) for text in TEXTS] == [
        bundled.classify(text) for text in TEXTS
    ]
    assert "loading it into memory instead" in caplog.text
    assert not _maps_under(tmp_path)


def test_the_cache_directory_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_directory() == tmp_path / "monitor"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_directory() == Path.home() / ".cache" / "monitor"


def test_a_process_holds_only_the_pages_of_the_model_its_texts_reach(tmp_path: Path) -> None:
    """py3langid unpacks its model into 65 MiB of the process's own memory; mapped,
    the model's tables cost what the texts read of them."""
    load_identifier(tmp_path)  # unpacked here, so that the child only maps it
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from monitor.language import load_identifier\n"
        "def anonymous():\n"
        "    for line in open('/proc/self/smaps_rollup'):\n"
        "        if line.startswith('Anonymous:'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "before = anonymous()\n"
        "identifier = load_identifier(Path(sys.argv[1]))\n"
        "for text in sys.argv[2:]:\n"
        "    identifier.classify(text)\n"
        "mapped = 0\n"
        "inside = False\n"
        "for line in open('/proc/self/smaps'):\n"
        "    fields = line.split()\n"
        "    if '-' in fields[0] and len(fields) >= 5:\n"
        "        inside = fields[-1].startswith(sys.argv[1])\n"
        "    elif inside and fields[0] == 'Rss:':\n"
        "        mapped += int(fields[1]) / 1024\n"
        "print(anonymous() - before, mapped)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), *TEXTS[:3]],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
        check=True,
    )
    anonymous, mapped = map(float, done.stdout.split())
    assert anonymous < 20, f"the process's own memory grew {anonymous:.1f} MiB"
    assert 0 < mapped < 10, f"{mapped:.1f} MiB of the model resident for three short texts"


def _maps_under(directory: Path) -> list[str]:
    return [
        line
        for line in Path("/proc/self/maps").read_text().splitlines()
        if line.split()[-1].startswith(str(directory))
    ]
