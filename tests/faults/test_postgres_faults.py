"""The PostgreSQL index when things go wrong, against a real server (pgserver): a builder
killed with SIGKILL while embedding and while publishing (the previous generation keeps
answering, the next build resumes), readers asking while another process rebuilds (every
answer from one generation), and the server stopped under an open session and started again.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.build import build_index
from assistant.build.server import staging_dir
from assistant.errors import ServerError
from assistant.index.layout import IndexLayout
from assistant.index.postgres import read_server_manifest
from assistant.index.postgres.reader import PgConnection
from assistant.session import Session
from assistant.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BRIEFING = ROOT / "corpus" / "nvidia-h200-china.txt"
VENDOR_QUESTION = "Which of the vendors deploy rack-scale systems?"
TALLINN_QUESTION = "When did the Tallinn data centre open?"
TALLINN = ["Tallinn note\n\nThe Tallinn data centre opened in March 2031 with 40 racks.\n",
           "Tallinn note\n\nThe Tallinn data centre opened in May 2032 with 75 racks.\n"]

_PLACES = ["Lisbon", "Osaka", "Nairobi", "Quito", "Reykjavik", "Hanoi", "Perth", "Oslo"]
_THINGS = ["memory chips", "rack servers", "export licences", "power contracts",
           "cooling systems", "fibre links", "design software", "wafer stocks"]


def generated_doc(seed: int, paragraphs: int = 8) -> str:
    rng = random.Random(seed)
    lines = [f"Desk note {seed}: {rng.choice(_THINGS)} in {rng.choice(_PLACES)}"]
    for p in range(paragraphs):
        lines.append(f"Section {p + 1}")
        lines.append(" ".join(
            f"Officials in {rng.choice(_PLACES)} said {rng.choice(_THINGS)} shipments rose "
            f"{rng.randint(2, 90)}% in quarter {rng.randint(1, 4)} of {rng.randint(2019, 2030)}."
            for _ in range(6)))
    return "\n\n".join(lines) + "\n"


def start_server(folder: Path) -> Any:
    import pgserver

    server = pgserver.get_server(folder, cleanup_mode="stop")
    server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    return server


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = start_server(tmp_path_factory.mktemp("pgf") / "data")
    yield server
    server.cleanup()


@pytest.fixture()
def server_url(pg: Any) -> Iterator[str]:
    name = "f_" + uuid.uuid4().hex[:12]
    pg.psql(f"CREATE DATABASE {name};")
    url = str(pg.get_uri(database=name))
    yield url
    shutil.rmtree(staging_dir(url), ignore_errors=True)


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def _ask_cli(url: str, question: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "assistant", "ask", question, "--json",
                           "--server", url], capture_output=True, text=True, timeout=300,
                          env=_env())
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
import assistant.build.embedding as embedding
import assistant.index.postgres.publish as publish
from assistant.build import build_index
from assistant.settings import Settings

where = sys.argv[3]
if where == "embedding":
    real = embedding.embed_and_store
    calls = []
    def embed_then_die(*args, **kwargs):
        out = real(*args, **kwargs)  # this batch is committed to the staging database
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    embedding.embed_and_store = embed_then_die
else:
    real_send = publish._send_document
    sent = []
    def send_then_die(*args, **kwargs):
        real_send(*args, **kwargs)  # rows are in the server's open transaction
        sent.append(1)
        if len(sent) == 3:
            os.kill(os.getpid(), signal.SIGKILL)
    publish._send_document = send_then_die
build_index(Settings(corpus_dir=Path(sys.argv[1]), server=sys.argv[2], embed_batch_size=8))
print("not killed")
"""


@pytest.mark.slow
@pytest.mark.parametrize("where", ["embedding", "publishing"])
def test_builder_killed_leaves_the_previous_generation_answering_and_the_next_resumes(
        where: str, server_url: str, workspace: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, _ = workspace
    settings = Settings(corpus_dir=corpus, server=server_url)
    first = build_index(settings)
    assert first.generation == 1
    for seed in range(12):
        (corpus / f"desk-{seed:02d}.txt").write_text(generated_doc(seed), encoding="utf-8")
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script), str(corpus), server_url, where],
                          env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]

    manifest = read_server_manifest(server_url)
    assert manifest is not None and manifest.generation == 1  # nothing was published
    assert set(manifest.documents) == {BRIEFING.name}
    answer = _ask_cli(server_url, VENDOR_QUESTION)
    assert "rack-scale systems" in answer["answer"]["text"]

    staging = IndexLayout(staging_dir(server_url))
    if where == "embedding":
        assert staging.staging.is_dir()  # the interrupted local build, to be resumed
    resumed = build_index(settings)
    assert resumed.generation == 2 and resumed.documents_sent == 12
    if where == "embedding":
        assert resumed.chunks_reused > 0  # the batches committed before the kill
    else:
        assert resumed.chunks_embedded == 0  # all embedded before the publish was killed
    manifest = read_server_manifest(server_url)
    assert manifest is not None and len(manifest.documents) == 13
    session = Session.open(Settings(server=server_url))
    try:
        reply = session.ask("What happened to cooling systems shipments in Osaka?")
        assert reply.answer.citations
        assert session.index.meta.documents()  # every row of generation 2 is there
        total = sum(r.chunks for r in manifest.documents.values())
        assert session.index.vectors.count == total == manifest.chunk_count
    finally:
        session.close()


READER_SCRIPT = """
import json, sys
from pathlib import Path
from assistant.session import Session
from assistant.settings import Settings

url, question, stop = sys.argv[1], sys.argv[2], Path(sys.argv[3])
last = False
while not last:
    last = stop.exists()  # one more answer after the rebuild was published
    session = Session.open(Settings(server=url))
    try:
        answer = session.ask(question).answer
        print(json.dumps({"generation": session.generation,
                          "citations": [[c.doc_id, c.start, c.end, c.quote]
                                        for c in answer.citations],
                          "text": session.document("tallinn.txt").text}), flush=True)
    finally:
        session.close()
"""


@pytest.mark.slow
def test_two_readers_while_a_third_process_rebuilds_see_one_generation_each(
        server_url: str, workspace: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, _ = workspace
    (corpus / "tallinn.txt").write_text(TALLINN[0], encoding="utf-8")
    settings = Settings(corpus_dir=corpus, server=server_url)
    build_index(settings)
    texts = {1: BRIEFING.read_text(encoding="utf-8")}
    held = Session.open(Settings(server=server_url))  # a long-lived reader of generation 1
    script = tmp_path / "reader.py"
    script.write_text(READER_SCRIPT, encoding="utf-8")
    stop = tmp_path / "stop"
    readers = [subprocess.Popen([sys.executable, str(script), server_url, TALLINN_QUESTION,
                                 str(stop)], env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        time.sleep(8)
        (corpus / "tallinn.txt").write_text(TALLINN[1], encoding="utf-8")
        for seed in range(6):  # a rebuild with some work in it
            (corpus / f"desk-{seed:02d}.txt").write_text(generated_doc(seed), encoding="utf-8")
        builder = subprocess.run([sys.executable, "-m", "assistant", "index", "--corpus",
                                  str(corpus), "--server", server_url, "--json"],
                                 capture_output=True, text=True, timeout=600, env=_env())
        assert builder.returncode == 0, builder.stderr
        assert json.loads(builder.stdout)["generation"] == 2
        stop.touch()
        outputs = [r.communicate(timeout=300) for r in readers]
    finally:
        for r in readers:
            if r.poll() is None:
                r.kill()
    seen: set[int] = set()
    for out, err in outputs:
        records = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert records, err[-2000:]
        for rec in records:
            g = rec["generation"]
            seen.add(g)
            tallinn = TALLINN[0] if g == 1 else TALLINN[1]
            assert rec["text"] == tallinn  # the document as that generation holds it
            for doc_id, start, end, quote in rec["citations"]:
                whole = tallinn if doc_id == "tallinn.txt" else texts[1]
                if doc_id.startswith("desk-"):
                    assert g == 2
                    continue
                assert quote == whole[start:end], (g, doc_id, quote)
    assert seen == {1, 2}
    # the reader opened before the rebuild still answers from generation 1
    try:
        reply = held.ask(TALLINN_QUESTION)
        assert held.generation == 1
        assert reply.answer.answer is not None and "March 2031" in reply.answer.answer.text
        assert held.document("tallinn.txt").text == TALLINN[0]
    finally:
        held.close()
    after = Session.open(Settings(server=server_url))
    try:
        reply = after.ask(TALLINN_QUESTION)
        assert after.generation == 2 and reply.answer.answer is not None
        assert "May 2032" in reply.answer.answer.text
    finally:
        after.close()


@pytest.mark.slow
def test_server_stopped_under_an_open_session_then_started_again(
        tmp_path_factory: pytest.TempPathFactory, workspace: tuple[Path, Path]) -> None:
    from pgserver import _commands

    corpus, _ = workspace
    server = start_server(tmp_path_factory.mktemp("pgstop") / "data")
    url = str(server.get_uri())
    try:
        build_index(Settings(corpus_dir=corpus, server=url))
        session = Session.open(Settings(server=url))
        try:
            assert session.ask(VENDOR_QUESTION).answer.answer is not None
            # as the user pgserver runs the server as (itself when not root)
            _commands.pg_ctl(["-m", "fast", "-w", "stop"], pgdata=server.pgdata,
                             user=server.system_user)
            with pytest.raises(ServerError) as caught:
                session.ask(VENDOR_QUESTION)
            assert "cannot reach the index server" in caught.value.message
            assert "\n" not in caught.value.message
            down = subprocess.run([sys.executable, "-m", "assistant", "ask", VENDOR_QUESTION,
                                   "--server", url], capture_output=True, text=True,
                                  timeout=300, env=_env())
            assert down.returncode == 4 and down.stderr.count("\n") == 1
            assert "Traceback" not in down.stderr

            server.ensure_postgres_running()
            assert str(server.get_uri()) == url
            # a connection found down is tried afresh every PROBE_EVERY_S (one that was
            # still retrying while the server was down may have given up a moment ago)
            time.sleep(PgConnection.PROBE_EVERY_S)
            reply = session.ask(VENDOR_QUESTION)  # the same session, connected again
            assert reply.answer.answer is not None
            assert "rack-scale systems" in reply.answer.answer.text
        finally:
            session.close()
    finally:
        server.cleanup()
        shutil.rmtree(staging_dir(url), ignore_errors=True)


# --- a team server that survives: publishes, restarts, a frozen server (issue 29) ----------

def _edit(corpus: Path, round_: int) -> None:
    """A change worth publishing: the Tallinn note and one more generated report."""
    (corpus / "tallinn.txt").write_text(TALLINN[round_ % 2], encoding="utf-8")
    (corpus / f"desk-{round_:02d}.txt").write_text(generated_doc(round_), encoding="utf-8")


@pytest.mark.slow
def test_a_session_answers_from_its_generation_through_many_publishes(
        server_url: str, workspace: tuple[Path, Path]) -> None:
    """A batch holds the generation it opened: four publishes while it runs cost it nothing
    (its rows used to be deleted by the third: "rebuilt three times… open it again"). Once
    no reader holds it, a build deletes its rows as before."""
    import psycopg

    corpus, _ = workspace
    _edit(corpus, 0)
    settings = Settings(corpus_dir=corpus, server=server_url)
    build_index(settings)
    held = Session.open(Settings(server=server_url))
    try:
        first = held.ask(TALLINN_QUESTION).answer
        for round_ in range(1, 5):
            _edit(corpus, round_)
            assert build_index(settings).generation == round_ + 1
            reply = held.ask(TALLINN_QUESTION).answer
            assert held.generation == 1
            assert reply.answer == first.answer and reply.citations == first.citations
            assert held.document("tallinn.txt").text == TALLINN[0]
    finally:
        held.close()
    _edit(corpus, 5)
    build_index(settings)
    with psycopg.connect(server_url, autocommit=True) as conn:
        kept = [r[0] for r in conn.execute(
            "SELECT generation FROM briefing_assistant.generations ORDER BY 1")]
        tallinn_at_1 = conn.execute(
            "SELECT count(*) FROM briefing_assistant.documents WHERE doc_id = 'tallinn.txt' "
            "AND born <= 1 AND coalesce(dies, 2147483647) > 1").fetchone()[0]
    assert kept == [4, 5, 6] and tallinn_at_1 == 0  # let go: cleaned up by the next build


def _stop(server: Any) -> None:
    from pgserver import _commands

    _commands.pg_ctl(["-m", "fast", "-w", "stop"], pgdata=server.pgdata,
                     user=server.system_user)


@pytest.fixture()
def own_server(tmp_path_factory: pytest.TempPathFactory, workspace: tuple[Path, Path]
               ) -> Iterator[tuple[Any, str, Path]]:
    """A server of this test's own (it is stopped, restarted or frozen), with the briefing
    built into it."""
    corpus, _ = workspace
    server = start_server(tmp_path_factory.mktemp("pgown") / "data")
    url = str(server.get_uri())
    try:
        build_index(Settings(corpus_dir=corpus, server=url))
        yield server, url, corpus
    finally:
        server.cleanup()
        shutil.rmtree(staging_dir(url), ignore_errors=True)


def _questions(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "questions.txt"
    path.write_text("\n".join([VENDOR_QUESTION, "What share of H200 revenue goes to the US?",
                               "Which Chinese vendors are mentioned?"] * n) + "\n")
    return path


@pytest.mark.slow
def test_a_server_restart_during_a_batch_costs_no_answer(
        own_server: tuple[Any, str, Path], tmp_path: Path) -> None:
    """The server goes away for a few seconds in the middle of a batch: the questions asked
    meanwhile wait for it (retried with backoff) and are answered; none is an error."""
    from assistant.batch import run_batch

    server, url, _ = own_server
    session = Session.open(Settings(server=url))
    try:
        records = run_batch(session.answerer, _questions(tmp_path, 4))
        out = [next(records), next(records)]
        _stop(server)
        restart = threading.Timer(4.0, server.ensure_postgres_running)
        restart.start()
        started = time.monotonic()
        out.extend(records)
        restart.join()
    finally:
        session.close()
    errors = [r for r in out if not hasattr(r, "citations")]
    assert errors == [] and len(out) == 12
    assert time.monotonic() - started >= 3.5  # they did wait for the server


@pytest.mark.slow
def test_a_server_gone_for_good_gives_one_error_line_per_question_without_long_waits(
        own_server: tuple[Any, str, Path], tmp_path: Path) -> None:
    from assistant.batch import run_batch
    from assistant.models import BatchErrorRecord

    server, url, _ = own_server
    session = Session.open(Settings(server=url, server_retry_s=3))
    try:
        records = run_batch(session.answerer, _questions(tmp_path, 10))
        first = next(records)
        assert not isinstance(first, BatchErrorRecord)
        _stop(server)
        started = time.monotonic()
        rest = list(records)
        took = time.monotonic() - started
    finally:
        session.close()
    assert len(rest) == 29 and all(isinstance(r, BatchErrorRecord) for r in rest)
    assert all("cannot reach the index server" in r.error and "\n" not in r.error
               for r in rest if isinstance(r, BatchErrorRecord))
    assert 2.5 <= took < 20, took  # the retry window once, then at once but for a probe


def _postgres_processes(server: Any) -> list[int]:
    """The postmaster of ``server`` and every process it started."""
    postmaster = int((Path(server.pgdata) / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.slow
def test_a_frozen_server_gives_a_clear_error_within_the_timeout(
        own_server: tuple[Any, str, Path]) -> None:
    """The server stopped with SIGSTOP (it accepts connections and answers nothing): the
    question fails with its own message within ``server_timeout_s`` and a little, instead of
    hanging; once the server runs again, the session answers again."""
    server, url, _ = own_server
    session = Session.open(Settings(server=url, server_timeout_s=2, server_retry_s=2))
    outcome: list[BaseException | object] = []

    def ask() -> None:
        try:
            outcome.append(session.ask(VENDOR_QUESTION))
        except BaseException as exc:
            outcome.append(exc)

    pids = _postgres_processes(server)
    try:
        assert session.ask(VENDOR_QUESTION).answer.answer is not None
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        asker = threading.Thread(target=ask, daemon=True)
        asker.start()
        asker.join(timeout=30)
        took = time.monotonic() - started
        assert not asker.is_alive(), "the question hung on the frozen server"
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    try:
        assert isinstance(outcome[0], ServerError), outcome
        assert "did not answer within 2 s" in outcome[0].message
        assert "server_timeout_s" in outcome[0].message
        assert took < 10, took
        time.sleep(PgConnection.PROBE_EVERY_S)
        assert session.ask(VENDOR_QUESTION).answer.answer is not None
    finally:
        session.close()


HOSTILE_TITLE = "Grazing \x1b]0;pwned-title\x07 \x1b]52;c;ZWNobyBwd25lZA==\x07 \x9b31m \u202eevil"
RAW_CONTROL = ("\x1b", "\x07", "\x9b", "\u202e")


@pytest.mark.slow
def test_info_server_shows_a_hostile_title_visibly_to_every_analyst(server_url: str,
                                                                   tmp_path: Path) -> None:
    """A document title holding terminal escapes (window title, OSC 52 clipboard), a C1
    control and the right-to-left override, read from the team server by ``info --server``
    (the trial: every analyst's terminal obeyed them) and ``ask --server``: shown visibly,
    escaped in JSON, never raw."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "meadow\u202etxt.md").write_text(
        f"# {HOSTILE_TITLE}\n\nCattle graze in the northern meadow for nine hours a day.\n",
        encoding="utf-8")
    build_index(Settings(corpus_dir=corpus, server=server_url))
    shown = {}
    for args in (["info"], ["info", "--json"],
                 ["ask", "How many hours a day do cattle graze in the meadow?"]):
        done = subprocess.run([sys.executable, "-m", "assistant", *args, "--server", server_url],
                              capture_output=True, text=True, timeout=300, env=_env(),
                              cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        shown[" ".join(args[:2])] = done.stdout + done.stderr
    assert "␛]0;pwned-title␇" in shown["info"] and "\\u202e" in shown["info"]
    titles = [d["title"] for d in json.loads(shown["info --json"])["documents"]]
    assert any("\x1b]0;pwned-title\x07" in t for t in titles)  # the exact text, escaped
    for where, text in shown.items():
        raw = [f"U+{ord(c):04X}" for c in RAW_CONTROL if c in text]
        assert not raw, f"raw {raw} in {where}: {text[:300]!r}"
