"""The extraction workers: the same analysis as in-process, errors carried back with
their reason, and a dead worker recorded as one failed page, not a stuck poll."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from monitor.analysis import Analyser, WorkerCrashed, analyse, workers_for
from monitor.errors import ExtractionError
from monitor.records import FeedEntry, FetchedPage

REPO = Path(__file__).resolve().parent.parent
URL = "https://news.example/2024/raid.html"
ENTRY = FeedEntry(link=URL, url=URL, title="Raid")


def page(body: str) -> FetchedPage:
    return FetchedPage(
        url=URL,
        final_url=URL,
        status=200,
        content_type="text/html; charset=utf-8",
        body=body.encode(),
        fetched_at=datetime(2024, 5, 1, tzinfo=UTC),
    )


ARTICLE = page(
    "<html><body><article><h1>Police raid a Sihanoukville compound</h1>"
    + "".join(
        f"<p>Paragraph {n}: police freed workers held in a scam compound in Sihanoukville,"
        " officials of the National Committee for Counter Trafficking said.</p>"
        for n in range(10)
    )
    + "</article></body></html>"
)


def test_workers_give_the_same_analysis_as_the_calling_thread() -> None:
    inline = analyse(ARTICLE, ENTRY)
    with Analyser(workers=2) as analyser:
        futures = [analyser.submit(ARTICLE, ENTRY) for _ in range(4)]
        results = [analyser.result(future) for future in futures]
    for result in results:
        assert result.cleaned == inline.cleaned
        assert result.dedup.buckets == inline.dedup.buckets
        assert np.array_equal(result.dedup.skeleton_signature, inline.dedup.skeleton_signature)


def test_a_stage_error_comes_back_with_its_reason() -> None:
    with Analyser(workers=1) as analyser, pytest.raises(ExtractionError) as caught:
        analyser.result(analyser.submit(page("<html><body><p>Hi</p></body></html>"), ENTRY))
    assert caught.value.reason == "no_article_text"


def test_a_dead_worker_fails_its_page_and_new_workers_take_over() -> None:
    slow = page(
        "<html><body>"
        + "".join(
            f"<div><p>Filler paragraph number {n} of a very long page.</p></div>"
            for n in range(60_000)
        )
        + "</body></html>"
    )
    with Analyser(workers=1) as analyser:
        analyser.result(analyser.submit(ARTICLE, ENTRY))  # the pool is up
        doomed = analyser.submit(slow, ENTRY)
        time.sleep(0.5)
        workers = list(analyser._pool._processes)  # type: ignore[union-attr]
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerCrashed) as caught:
            analyser.result(doomed)
        assert caught.value.reason == "worker_crashed"
        assert analyser.result(analyser.submit(ARTICLE, ENTRY)).cleaned.text


def test_auto_is_one_worker_per_core_or_none_on_one_core() -> None:
    assert workers_for(0) == 0 and workers_for(3) == 3
    cores = len(os.sched_getaffinity(0))
    assert workers_for("auto") == (cores if cores >= 2 else 0)


def test_workers_exit_when_the_daemon_is_killed(tmp_path: Path) -> None:
    """SIGKILL gives the daemon no chance to stop its workers: they see it go."""
    script = (
        "import os, sys, time\n"
        "from tests.test_analysis import ARTICLE, ENTRY\n"
        "from monitor.analysis import Analyser\n"
        "analyser = Analyser(workers=2)\n"
        "analyser.result(analyser.submit(ARTICLE, ENTRY))\n"
        "print(*analyser._pool._processes, flush=True)\n"
        "time.sleep(600)\n"
    )
    daemon = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert daemon.stdout is not None
    with daemon.stdout:
        workers = [int(pid) for pid in daemon.stdout.readline().split()]
        daemon.kill()
        daemon.wait()
    assert workers
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_workers_do_not_run_the_main_script_again(tmp_path: Path) -> None:
    """The `monitor` command is a script that imports monitor.cli first: a worker that
    ran it again would load everything the daemon's process uses (tens of MiB each)."""
    ran = tmp_path / "ran"
    script = tmp_path / "command.py"
    script.write_text(
        "import os\n"
        "with open(os.environ['RAN'], 'a') as ran:\n"
        "    ran.write(f'{os.getpid()}\\n')\n"
        "from monitor.analysis import Analyser\n"
        "from tests.test_analysis import ARTICLE, ENTRY\n"
        "if __name__ == '__main__':\n"
        "    with Analyser(workers=2) as analyser:\n"
        "        futures = [analyser.submit(ARTICLE, ENTRY) for _ in range(4)]\n"
        "        texts = [analyser.result(future).cleaned.text for future in futures]\n"
        "        workers = set(analyser._pool._processes)\n"
        "    print(len(workers), all(texts))\n"
    )
    done = run_main_script(script, RAN=str(ran))
    assert done.stdout.split() == ["2", "True"]
    assert len(ran.read_text().split()) == 1, "the script ran again in the workers"


TEASERS = "".join(
    f'<div class="card"><span>Region</span><span>Story {n}: a teaser about something else'
    " that happened this week in the region</span></div>"
    for n in range(150)
)
# Two short paragraphs in a page of teasers: trafilatura, finding little, ends with jusText.
SHORT_ARTICLE_IN_A_BUSY_PAGE = page(
    f"<html><head><title>Raid</title></head><body><nav>{TEASERS}</nav><main><article>"
    "<h1>Police raid a compound</h1><p>Police freed 40 workers from a compound in"
    " Sihanoukville on Tuesday, officials of the province said.</p><p>The workers, from"
    " five countries, had been forced to run online scams, the National Committee for"
    " Counter Trafficking said on Wednesday.</p></article></main>"
    f"<aside>{TEASERS}</aside></body></html>"
)


def _private_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Private_Dirty:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no Private_Dirty for {pid}")


def test_workers_share_the_stop_word_lists_of_trafilaturas_last_resort() -> None:
    """jusText's stop words of every language (35 MB) are built once, in the fork
    server, not in each worker on its first page that needs them."""
    with Analyser(workers=1) as analyser:
        analyser.result(analyser.submit(ARTICLE, ENTRY))  # the worker is up
        (worker,) = analyser._pool._processes  # type: ignore[union-attr]
        before = _private_mib(worker)
        analysis = analyser.result(analyser.submit(SHORT_ARTICLE_IN_A_BUSY_PAGE, ENTRY))
        grown = _private_mib(worker) - before
    assert "Police freed 40 workers" in analysis.cleaned.text
    assert grown < 15, f"the worker's own memory grew {grown:.1f} MiB"


def test_the_workers_log_as_the_daemon_does(tmp_path: Path) -> None:
    """A warning in the workers' fork server (here: no cache directory for the language
    model) is a JSON line like the daemon's, not a bare message among them."""
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("where the cache directory should be")
    script = tmp_path / "daemon.py"
    script.write_text(
        "from monitor.analysis import Analyser\n"
        "from monitor.logs import configure_logging\n"
        "from tests.test_analysis import ARTICLE, ENTRY\n"
        "if __name__ == '__main__':\n"
        "    configure_logging('INFO', 'json')\n"
        "    with Analyser(workers=1) as analyser:\n"
        "        print(analyser.result(analyser.submit(ARTICLE, ENTRY)).cleaned.article.language)\n"
    )
    done = run_main_script(script, XDG_CACHE_HOME=str(blocked))
    assert done.stdout.split() == ["en"]
    records = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert any(
        record["logger"] == "monitor.language"
        and record["level"] == "WARNING"
        and "loading it into memory instead" in record["message"]
        for record in records
    ), done.stderr


def run_main_script(script: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    """`script` run as a daemon's main script, beside it, with this checkout importable."""
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=script.parent,
        env={**os.environ, "PYTHONPATH": str(REPO), **environment},
        timeout=120,
        check=True,
    )


def test_an_auto_blogs_link_to_its_source_marks_the_repost() -> None:
    # An audit: WordPress auto-blogs close a scraped article with a paragraph that is all
    # link, "<p><a href=…>Source link</a></p>"; trafilatura drops it, and the repost
    # went without its `source_link` signal.
    wrapped = page(
        "<html><body><article><h1>Police raid a Sihanoukville compound</h1><p>[ad_1]</p>"
        + "".join(
            f"<p>Paragraph {n}: police freed workers held in a scam compound in Sihanoukville,"
            " officials of the National Committee for Counter Trafficking said.</p>"
            for n in range(6)
        )
        + "<p>[ad_2]</p>"
        + '<p><a href="https://news.example/raid">Source link</a></p>'
        + "</article></body></html>"
    )
    analysis = analyse(wrapped, ENTRY)
    assert "Source link" not in analysis.cleaned.text
    assert analysis.cleaned.text.endswith("National Committee for Counter Trafficking said.")
    assert analysis.dedup.repost_signals == ("ad_markers", "source_link")
    assert analyse(ARTICLE, ENTRY).dedup.repost_signals == ()
