"""The PostgreSQL index against a real server (pgserver: PostgreSQL with pgvector, started in a
temporary folder, reached by a Unix socket only): a build and an answer with no local index
folder, an incremental edit and delete, answers equal to the local index's on the briefing
dev set, a refused login, a stale or foreign schema.

Each test gets a database of its own on the session's server (a distinct URL, so a distinct
local staging folder too).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.build import build_index
from assistant.build.server import staging_dir
from assistant.index.postgres import open_server_index, read_server_manifest
from assistant.index.store import open_index
from assistant.model_export import shared_cache_dir
from assistant.qa.pipeline import Answerer
from assistant.session import Session
from assistant.settings import Settings

pytestmark = pytest.mark.slow  # a real server per session: in scripts/test --all, not the fast loop

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[1] / "data"
BRIEFING = ROOT / "corpus" / "nvidia-h200-china.txt"
VENDOR_QUESTION = "Which of the vendors deploy rack-scale systems?"
MEMO = DATA / "formats" / "memo.md"


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A PostgreSQL server with pgvector for the session, on a Unix socket (no TCP port)."""
    import pgserver

    data = tmp_path_factory.mktemp("pg") / "data"
    server = pgserver.get_server(data, cleanup_mode="stop")
    server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    yield server
    server.cleanup()


def fresh_database(server: Any) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    server.psql(f"CREATE DATABASE {name};")
    return str(server.get_uri(database=name))


@pytest.fixture()
def server_url(pg: Any) -> Iterator[str]:
    url = fresh_database(pg)
    yield url
    shutil.rmtree(staging_dir(url), ignore_errors=True)


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})}, cwd=cwd)


def psql(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def comparable(answer: Any) -> dict[str, Any]:
    data: dict[str, Any] = answer.model_dump(exclude={"timings_ms", "id"})
    return data


# --- build and answer -----------------------------------------------------------------------


def test_build_into_the_server_and_ask_without_a_local_index(
        server_url: str, workspace: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, _ = workspace
    built = run_cli("index", "--corpus", str(corpus), "--server", server_url, "--json")
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    assert summary["generation"] == 1 and summary["documents_sent"] == 1
    assert "password" not in summary["index_dir"]

    elsewhere = tmp_path / "elsewhere"  # no index folder here, nor a corpus
    elsewhere.mkdir()
    asked = run_cli("ask", VENDOR_QUESTION, "--json", "--server", server_url, cwd=elsewhere)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert not answer["abstained"]
    assert "rack-scale systems" in answer["answer"]["text"]
    assert not (elsewhere / "index").exists()
    text = BRIEFING.read_text(encoding="utf-8")
    assert answer["answer"]["text"] == text[answer["answer"]["start"]:answer["answer"]["end"]]
    for c in answer["citations"]:
        assert c["quote"] == text[c["start"]:c["end"]]

    by_env = run_cli("info", "--json", env={"ASSISTANT_SERVER": server_url}, cwd=elsewhere)
    assert by_env.returncode == 0, by_env.stderr
    status = json.loads(by_env.stdout)
    assert status["exists"] and status["vectors"]["store"] == "postgres"
    assert status["vectors"]["kind"] == "flat" and status["chunk_count"] == summary["chunk_count"]

    again = run_cli("index", "--corpus", str(corpus), "--server", server_url, "--json")
    assert json.loads(again.stdout)["up_to_date"] is True
    assert read_server_manifest(server_url).generation == 1  # type: ignore[union-attr]


def test_server_index_needs_no_index_folder_and_answers_in_the_session(
        server_url: str, workspace: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, _ = workspace
    shutil.copy(MEMO, corpus / MEMO.name)
    build_index(Settings(corpus_dir=corpus, server=server_url))
    session = Session.open(Settings(index_dir=tmp_path / "none", server=server_url))
    try:
        reply = session.ask(VENDOR_QUESTION)
        assert reply.answer.answer is not None
        assert "rack-scale systems" in reply.answer.answer.text
        doc = session.document(BRIEFING.name)
        assert doc.text == BRIEFING.read_text(encoding="utf-8")
        # a Markdown file's readable text is not the file: its map to the lines is kept too
        memo = session.document_map(MEMO.name)
        assert memo.place(memo.text.index("In October")) == (9, None)
        assert memo.place(memo.text.index("Fenby Storage")) == (26, None)
        assert memo.label(memo.text.index("In October")) == "Leakage"
    finally:
        session.close()
    assert not (tmp_path / "none").exists()


# --- incremental ----------------------------------------------------------------------------


def assert_term_counts_equal_the_local_build(url: str) -> None:
    """Every word's sentence count on the server (``term_df``, kept by deltas) equals the
    local staging build's, and no word the local build lacks is counted; the sentence and
    token totals (also kept by deltas) give the local BM25 scores."""
    local = open_index(staging_dir(url))
    remote = open_server_index(url, shared_cache_dir())
    try:
        terms = [str(r[0]) for r in local.meta.conn.execute("SELECT term FROM term_df")]
        assert len(terms) > 20
        local_df = local.meta.document_frequencies(terms)
        assert remote.meta.document_frequencies(terms) == local_df
        words = ["quito", "tallinn", "2031", "2032"]  # a word gone from the corpus is 0 on both
        assert remote.meta.document_frequencies(words) == local.meta.document_frequencies(words)
        words += ["racks", "data", "lithography", "chips"]
        assert remote.meta.lexical(words, 20) == pytest.approx(local.meta.lexical(words, 20),
                                                                rel=1e-9)
    finally:
        local.close()
        remote.close()


def test_incremental_edit_and_delete_send_only_what_changed(
        server_url: str, workspace: tuple[Path, Path]) -> None:
    corpus, _ = workspace
    (corpus / "tallinn.txt").write_text(
        "Tallinn note\n\nThe Tallinn data centre opened in March 2031 with 40 racks.\n",
        encoding="utf-8")
    (corpus / "quito.txt").write_text(
        "Quito note\n\nThe Quito lab ordered 12 lithography tools in 2029.\n", encoding="utf-8")
    settings = Settings(corpus_dir=corpus, server=server_url)
    first = build_index(settings)
    assert first.documents_sent == 3
    assert_term_counts_equal_the_local_build(server_url)

    (corpus / "tallinn.txt").write_text(
        "Tallinn note\n\nThe Tallinn data centre opened in May 2032 with 75 racks.\n",
        encoding="utf-8")
    edited = build_index(settings)
    assert edited.documents_sent == 1 and edited.changed == ["tallinn.txt"]
    assert 0 < edited.chunks_embedded <= 2 and edited.generation == 2
    assert_term_counts_equal_the_local_build(server_url)  # 2031 gone, 2032 counted
    index = open_server_index(server_url, shared_cache_dir())
    try:
        answerer = Answerer(index, settings)
        reply = answerer.ask("When did the Tallinn data centre open?")
        assert reply.answer.answer is not None and "May 2032" in reply.answer.answer.text
    finally:
        index.close()

    (corpus / "quito.txt").unlink()
    deleted = build_index(settings)
    assert deleted.removed == ["quito.txt"] and deleted.documents_sent == 0
    assert_term_counts_equal_the_local_build(server_url)
    manifest = read_server_manifest(server_url)
    assert manifest is not None and set(manifest.documents) == {BRIEFING.name, "tallinn.txt"}
    index = open_server_index(server_url, shared_cache_dir())
    try:
        assert {d for d, _, _ in index.meta.documents()} == {BRIEFING.name, "tallinn.txt"}
        assert index.meta.lexical(["quito"], 10) == []
    finally:
        index.close()


# --- the same answers as the local index -----------------------------------------------------


def test_answers_equal_the_local_index_on_the_briefing_dev_set(
        pg: Any, briefing_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.index.postgres import reader

    url = fresh_database(pg)
    try:
        corpus = briefing_index.parent / "corpus"
        build_index(Settings(corpus_dir=corpus, server=url))
        local = open_index(briefing_index)
        remote = open_server_index(url, shared_cache_dir())
        try:
            ours = Answerer(local, Settings(index_dir=briefing_index))
            theirs = Answerer(remote, Settings(server=url))
            questions = [json.loads(line)["question"] for line in
                         (DATA / "dev_questions.jsonl").read_text().splitlines() if line.strip()]
            assert len(questions) >= 40
            for q in questions:
                a, b = ours.ask(q).answer, theirs.ask(q).answer
                assert comparable(a) == comparable(b), q
            # the lexical scores themselves, not only the answers they lead to
            forms = ["rack", "scale", "systems", "vendors", "huawei", "revenue"]
            assert remote.meta.lexical(forms, 50) == pytest.approx(
                local.meta.lexical(forms, 50), rel=1e-9)
            # the server sends a shortlist, cut here: with no margin, the cut is the local one
            monkeypatch.setattr(reader, "SHORTLIST_MARGIN", 0)
            for words in (forms, ["china", "chips", "the"], ["nvidia", "h200", "china", "us"]):
                for limit in (1, 2, 3, 5):
                    assert remote.meta.lexical(words, limit) == pytest.approx(
                        local.meta.lexical(words, limit), rel=1e-9), (words, limit)
        finally:
            local.close()
            remote.close()
    finally:
        shutil.rmtree(staging_dir(url), ignore_errors=True)


# --- what can go wrong ----------------------------------------------------------------------


def test_a_wrong_password_is_one_line_and_never_echoed(
        pg: Any, server_url: str, workspace: tuple[Path, Path]) -> None:
    corpus, _ = workspace
    build_index(Settings(corpus_dir=corpus, server=server_url))
    pg.psql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'analyst') THEN "
            "CREATE ROLE analyst LOGIN PASSWORD 'right-horse'; END IF; END $$;")
    data = Path(pg.pgdata)
    hba = data / "pg_hba.conf"
    if "analyst" not in hba.read_text():
        hba.write_text("local all analyst scram-sha-256\n" + hba.read_text())
        pg.psql("SELECT pg_reload_conf();")
    wrong = server_url.replace("postgres:@", "analyst:wrong-battery@", 1).replace(
        "postgres@", "analyst:wrong-battery@", 1)
    assert "analyst:wrong-battery@" in wrong
    result = run_cli("ask", VENDOR_QUESTION, "--server", wrong)
    assert result.returncode == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "refused the login" in lines[0] and "wrong-battery" not in lines[0]
    assert "Traceback" not in result.stderr

    no_password = wrong.replace(":wrong-battery@", "@")
    denied = run_cli("info", "--server", no_password, env={"PGPASSWORD": "right-horse"})
    assert denied.returncode == 4 and "does not let this user read" in denied.stderr
    psql(server_url, "GRANT USAGE ON SCHEMA briefing_assistant TO analyst; "
                     "GRANT SELECT ON ALL TABLES IN SCHEMA briefing_assistant TO analyst")
    right = run_cli("info", "--json", "--server", no_password,
                    env={"PGPASSWORD": "right-horse"})
    assert right.returncode == 0, right.stderr  # the password from PGPASSWORD works
    assert "right-horse" not in right.stdout


def test_a_stale_or_foreign_schema_is_the_incompatible_index_error(
        pg: Any, server_url: str, workspace: tuple[Path, Path]) -> None:
    corpus, _ = workspace
    build_index(Settings(corpus_dir=corpus, server=server_url))
    psql(server_url, "UPDATE briefing_assistant.info SET value = '0' WHERE key = 'version'")
    stale = run_cli("ask", VENDOR_QUESTION, "--server", server_url)
    assert stale.returncode == 4
    assert stale.stderr.count("\n") == 1 and "schema version" in stale.stderr
    assert "--full" in stale.stderr
    repaired = run_cli("index", "--corpus", str(corpus), "--server", server_url, "--full")
    assert repaired.returncode == 0, repaired.stderr
    assert run_cli("ask", VENDOR_QUESTION, "--server", server_url).returncode == 0

    foreign = fresh_database(pg)
    psql(foreign, "CREATE SCHEMA briefing_assistant; CREATE TABLE briefing_assistant.info "
                  "(key text, value text); INSERT INTO briefing_assistant.info "
                  "VALUES ('owner', 'someone-else')")
    for args in (("ask", VENDOR_QUESTION), ("index", "--corpus", str(corpus), "--full")):
        result = run_cli(*args, "--server", foreign)
        assert result.returncode == 4, result.stderr
        assert result.stderr.count("\n") == 1 and "did not make" in result.stderr
    shutil.rmtree(staging_dir(foreign), ignore_errors=True)


def test_a_server_that_is_not_running_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql://postgres@/postgres?host={tmp_path}"
    result = run_cli("ask", VENDOR_QUESTION, "--server", url)
    assert result.returncode == 4
    assert result.stderr.count("\n") == 1 and "cannot reach the index server" in result.stderr
    bad = run_cli("ask", VENDOR_QUESTION, "--server", "http://example.invalid/")
    assert bad.returncode == 2 and "not a PostgreSQL URL" in bad.stderr


def test_above_its_ann_threshold_the_server_searches_by_hnsw_with_the_same_answer(
        server_url: str, workspace: tuple[Path, Path]) -> None:
    corpus, _ = workspace
    settings = Settings(corpus_dir=corpus, server=server_url, server_ann_threshold=3)
    build_index(settings)
    index = open_server_index(server_url, shared_cache_dir())
    try:
        assert index.manifest.vectors.kind == "hnsw"
        found = index.meta.db.rows(  # type: ignore[attr-defined]
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'briefing_assistant'", {})
        assert ("chunks_hnsw",) in found
        exact = index.meta.chunk_vectors(range(1, index.manifest.chunk_count + 1))
        query = exact[1]
        hits = index.vectors.search(query, 3)
        assert hits[0][0] == 1 and hits[0][1] == pytest.approx(float(query @ query), abs=1e-5)
        reply = Answerer(index, settings).ask(VENDOR_QUESTION)
        assert reply.answer.answer is not None
        assert "rack-scale systems" in reply.answer.answer.text
    finally:
        index.close()


def test_a_password_in_the_url_is_never_written(
        server_url: str, workspace: tuple[Path, Path]) -> None:
    corpus, _ = workspace
    # the test server trusts local connections, so any password is accepted
    with_password = server_url.replace("postgres:@", "postgres:sekrit-9f2@", 1).replace(
        "postgres@", "postgres:sekrit-9f2@", 1)
    assert "sekrit-9f2" in with_password
    built = run_cli("index", "--corpus", str(corpus), "--server", with_password, "--json")
    assert built.returncode == 0, built.stderr
    assert "sekrit-9f2" not in built.stdout + built.stderr
    manifest = read_server_manifest(server_url)
    assert manifest is not None and manifest.vectors.server_url is not None
    assert "sekrit" not in manifest.model_dump_json()
    staging = staging_dir(with_password)
    assert staging == staging_dir(server_url)  # keyed by the URL without its password
    for path in staging.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert b"sekrit-9f2" not in path.read_bytes(), path


def test_the_chat_start_up_on_a_server_without_the_corpus_answers_without_building(
        server_url: str, workspace: tuple[Path, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant import session as sessions

    corpus, _ = workspace
    build_index(Settings(corpus_dir=corpus, server=server_url))
    shutil.rmtree(corpus)  # a team member's machine: no corpus here
    monkeypatch.chdir(tmp_path)
    outcome = sessions.load(Settings(server=server_url), lambda stage, done, total: None)
    try:
        assert outcome.error is None and outcome.summary is None and not outcome.warnings
        assert outcome.session is not None and outcome.session.generation == 1
        assert outcome.session.ask(VENDOR_QUESTION).answer.answer is not None
    finally:
        if outcome.session is not None:
            outcome.session.close()


def test_a_session_outlived_by_three_rebuilds_still_answers_from_its_generation(
        server_url: str, workspace: tuple[Path, Path]) -> None:
    """An open session holds its generation (a shared advisory lock): publishes keep its
    rows however many rebuilds come, so it answers as when it opened, never from nothing."""
    corpus, _ = workspace
    settings = Settings(corpus_dir=corpus, server=server_url)
    build_index(settings)
    held = Session.open(Settings(server=server_url))
    try:
        first = held.ask(VENDOR_QUESTION).answer
        for n in (1, 2, 3):
            (corpus / "extra.txt").write_text(f"Extra note\n\nThe depot holds {n} crates.\n",
                                              encoding="utf-8")
            build_index(settings)
            again = held.ask(VENDOR_QUESTION).answer
            assert again.answer is not None and first.answer is not None
            assert again.answer.text == first.answer.text
        assert "depot" not in " ".join(c.quote for c in
                                       held.ask("How many crates does the depot hold?")
                                       .answer.citations), "its generation, not a newer one"
    finally:
        held.close()


# --- TLS ------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_tls_url_works_unchanged_and_a_wrong_certificate_is_one_line(
        pg: Any, server_url: str, workspace: tuple[Path, Path], tmp_path: Path) -> None:
    from helpers.tls_proxy import TlsFront, make_certificate

    corpus, _ = workspace
    cert, key = make_certificate(tmp_path)
    front = TlsFront(Path(pg.pgdata) / ".s.PGSQL.5432", cert, key)
    try:
        database = server_url.split("?", 1)[0].rsplit("/", 1)[1]
        tls = (f"postgresql://postgres@localhost:{front.port}/{database}"
               f"?sslmode=verify-full&sslrootcert={cert}")
        built = run_cli("index", "--corpus", str(corpus), "--server", tls, "--json")
        assert built.returncode == 0, built.stderr
        assert json.loads(built.stdout)["generation"] == 1
        asked = run_cli("ask", VENDOR_QUESTION, "--json", "--server", tls)
        assert asked.returncode == 0, asked.stderr
        assert "rack-scale systems" in json.loads(asked.stdout)["answer"]["text"]
        assert front.tls_sessions >= 2 and front.refused_plain == 0  # all of it over TLS

        # the same database, whatever the URL's options: one staging folder, nothing re-embedded
        assert staging_dir(tls) == staging_dir(tls.split("?", 1)[0])
        again = run_cli("index", "--corpus", str(corpus), "--server",
                        tls + "&connect_timeout=20", "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["up_to_date"] is True
        assert json.loads(again.stdout)["chunks_embedded"] == 0

        other, _ = make_certificate(tmp_path, "other")  # a CA that did not sign the server's
        wrong = tls.replace(str(cert), str(other))
        refused = run_cli("ask", VENDOR_QUESTION, "--server", wrong)
        assert refused.returncode == 4
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: cannot reach the index server")
        assert "certificate verify failed" in lines[0]
    finally:
        front.close()
        shutil.rmtree(staging_dir(server_url), ignore_errors=True)
