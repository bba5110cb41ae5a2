"""The session both faces share: document reads that never wait on an answer in progress,
the one translation of a damaged model copy, and the abstention's wording."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from assistant.build import build_index
from assistant.errors import IndexCorruptError
from assistant.index.store import open_index
from assistant.preload import preload_embedder
from assistant.qa.analysis import QuestionAnalysis
from assistant.qa.candidates import Candidate
from assistant.qa.pipeline import Answerer, not_covered_message
from assistant.session import Session
from assistant.settings import Settings

HARBOUR = ("Harbour report\n\nThe new quay opened in March. Cargo volume rose by a tenth over "
           "the year. The harbour master retired in June.\n")


class SlowScorer:
    """The shipped scorer, after a pause: an answer that takes a while to work out."""

    def __init__(self, inner: Any, started: threading.Event, seconds: float) -> None:
        self.inner, self.started, self.seconds = inner, started, seconds

    def score(self, analysis: QuestionAnalysis, candidates: list[Candidate]
              ) -> npt.NDArray[np.float64]:
        self.started.set()
        time.sleep(self.seconds)
        out: npt.NDArray[np.float64] = self.inner.score(analysis, candidates)
        return out


def test_a_document_opens_while_an_answer_is_being_worked_out(briefing_index: Path) -> None:
    """Opening a source during an answer used to wait for the answer's lock (the chat froze
    until the answer came); the session reads documents through a reader of its own."""
    settings = Settings(index_dir=briefing_index)
    index = open_index(briefing_index)
    shipped = Answerer(index, settings)
    started = threading.Event()
    session = Session(index, Answerer(index, settings,
                                      scorer=SlowScorer(shipped.scorer, started, 3.0)))
    try:
        asker = threading.Thread(target=session.ask, args=("What does the US get?",))
        asker.start()
        assert started.wait(30)
        t0 = time.perf_counter()
        view = session.document("nvidia-h200-china.txt")
        waited = time.perf_counter() - t0
        assert asker.is_alive(), "the answer finished first: the test proves nothing"
        asker.join()
    finally:
        session.close()
    assert "H200" in view.text and view.title
    assert waited < 1.0, f"the document read waited {waited:.1f} s for the answer"


def test_a_damaged_model_copy_is_a_damaged_index_with_its_fix(tmp_path: Path,
                                                             workspace: tuple[Path, Path]
                                                             ) -> None:
    corpus, index = workspace
    build_index(Settings(corpus_dir=corpus, index_dir=index))
    onnx = open_index(index)
    onnx_file = onnx.onnx_file
    onnx.close()
    onnx_file.unlink()
    onnx_file.write_bytes(b"not a model")
    settings = Settings(index_dir=index)
    with pytest.raises(IndexCorruptError) as caught:
        Session.open(settings)
    assert "model.onnx is damaged" in caught.value.message
    assert "run `assistant index`" in caught.value.message
    # the same when the model was loading on a thread before the index was opened
    preload = preload_embedder(settings)
    assert preload is not None
    with pytest.raises(IndexCorruptError) as caught:
        Session.open(settings, preload)
    assert "run `assistant index`" in caught.value.message


def test_a_stale_answer_model_is_its_own_error_not_a_damaged_index(
        briefing_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model.json fitted on other features is an installation problem (exit 7, refit or
    reinstall): rebuilding the index, which the damaged-index error advises, would not help."""
    from assistant.errors import AnswerModelError
    from assistant.qa import pipeline
    from assistant.qa.scorer import load_model

    stale = load_model().model_copy(update={"features_hash": "0" * 16})
    monkeypatch.setattr(pipeline, "load_model", lambda: stale)
    with pytest.raises(AnswerModelError) as caught:
        Session.open(Settings(index_dir=briefing_index))
    assert caught.value.exit_code == 7
    assert "refit it with scripts/fit.py --write" in caught.value.message
    assert "assistant index" not in caught.value.message


def test_the_preloaded_embedder_is_the_one_that_answers(briefing_index: Path) -> None:
    settings = Settings(index_dir=briefing_index)
    preload = preload_embedder(settings)
    assert preload is not None
    session = Session.open(settings, preload)
    plain = Session.open(settings)
    try:
        encoder = session.answerer.embedder.encoder
        assert encoder is preload.take(session.index.onnx_file).encoder  # type: ignore[union-attr]
        question = "What revenue share does the US get?"
        ours, theirs = session.ask(question).answer, plain.ask(question).answer
        assert ours.answer is not None and theirs.answer is not None
        assert (ours.answer.text, ours.confidence) == (theirs.answer.text, theirs.confidence)
    finally:
        session.close()
        plain.close()


def test_no_preload_without_a_local_index_or_for_another_generation(tmp_path: Path,
                                                                      briefing_index: Path
                                                                      ) -> None:
    assert preload_embedder(Settings(index_dir=tmp_path / "nothing-here")) is None
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "CURRENT").write_text("gen-000009\n")
    assert preload_embedder(Settings(index_dir=tmp_path / "broken")) is None
    assert preload_embedder(Settings(server="postgresql://u@localhost/db")) is None
    preload = preload_embedder(Settings(index_dir=briefing_index))
    assert preload is not None
    # the live generation changed between the preload and the opening: not used
    assert preload.take(tmp_path / "models" / "other" / "model.onnx") is None


def test_a_one_document_corpus_is_not_called_a_briefing(tmp_path: Path) -> None:
    """The abstention named any one-document corpus "the briefing"; it names the corpus only
    as configured (``corpus_name``), else by what it is."""
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / "harbour.txt").write_text(HARBOUR, encoding="utf-8")
    build_index(Settings(corpus_dir=corpus, index_dir=index))
    session = Session.open(Settings(index_dir=index, corpus_name=None))
    try:
        a = session.ask("What's the weather in Paris tomorrow?").answer
    finally:
        session.close()
    assert a.abstained
    assert a.message == "The document does not cover this."
    assert not_covered_message("briefing", 1) == "The briefing does not cover this."
    assert not_covered_message(None, 3) == "The indexed documents do not cover this."


def test_the_chat_start_preloads_and_checks_once_unless_it_builds_first(
        workspace: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The chat's start-up (``session.load``) loads the model while it checks the corpus,
    checks the corpus once (each check stats every file, slow on a large corpus) and
    reports the generation it opened. When the corpus changed and a build runs first, the
    preload is set aside, the corpus is checked again, and the new generation is reported,
    opened and answers from the edited text."""
    import assistant.session as sessions

    corpus, index = workspace
    settings = Settings(corpus_dir=corpus, index_dir=index)
    build_index(settings)
    made: list[Any] = []
    checks: list[int] = []
    real_status = sessions.index_status

    def recording(s: Settings) -> Any:
        made.append(preload_embedder(s))
        return made[-1]

    def counting(s: Settings, **options: Any) -> Any:
        checks.append(1)
        return real_status(s, **options)

    monkeypatch.setattr(sessions, "preload_embedder", recording)
    monkeypatch.setattr(sessions, "index_status", counting)
    fresh = sessions.load(settings, lambda stage, done, total: None)
    assert fresh.session is not None and fresh.summary is None, fresh.error
    assert fresh.status is not None
    try:
        encoder = fresh.session.answerer.embedder.encoder
        assert made[0] is not None
        assert encoder is made[0].take(fresh.session.index.onnx_file).encoder
        first = fresh.session.generation
        assert len(checks) == 1
        assert fresh.status.generation == fresh.session.generation
        assert not fresh.status.stale and len(fresh.status.documents) == 1
    finally:
        fresh.session.close()

    (corpus / "harbour.txt").write_text(HARBOUR, encoding="utf-8")
    stale = sessions.load(settings, lambda stage, done, total: None)
    assert stale.session is not None and stale.summary is not None, stale.error
    assert stale.status is not None
    try:
        assert made[1] is not None  # started, then set aside for the build
        assert stale.session.answerer.embedder.encoder is not made[1]._encoder.result()
        assert stale.session.generation > first
        assert len(checks) == 3
        assert stale.status.generation == stale.session.generation
        assert not stale.status.stale
        assert "harbour.txt" in {d.doc_id for d in stale.status.documents}
        reply = stale.session.ask("When did the new quay open?")
        assert reply.answer.answer is not None and "March" in reply.answer.answer.text
    finally:
        stale.session.close()


def test_an_index_of_another_encoder_is_rebuilt_at_the_chat_start(
        workspace: tuple[Path, Path]) -> None:
    """An index embedded by the former encoder (after an upgrade that changed it) is stale:
    the answer model was fitted on the shipped encoder's evidence, so the chat's start
    rebuilds it instead of answering from it, and the new generation is of the shipped
    encoder."""
    import json

    import assistant.session as sessions
    from assistant.build.plan import configured_model_sha

    corpus, index = workspace
    settings = Settings(corpus_dir=corpus, index_dir=index)
    build_index(settings)
    manifest = next(index.glob("gen-*/manifest.json"))
    data = json.loads(manifest.read_text())
    data["model"]["weights_sha256"] = "0" * 64  # as an index of the former encoder reads
    manifest.write_text(json.dumps(data))
    status, _ = sessions.read_status(settings)
    assert status is not None and status.stale
    assert "the embedding model changed" in status.stale_reasons
    loaded = sessions.load(settings, lambda stage, done, total: None)
    assert loaded.session is not None and loaded.summary is not None, loaded.error
    try:
        assert loaded.session.index.manifest.model.weights_sha256 == configured_model_sha(settings)
        assert loaded.status is not None and not loaded.status.stale
    finally:
        loaded.session.close()
