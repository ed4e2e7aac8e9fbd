"""How good and how fast the project's stand-in text encoders are: pre-train the DAMSM pair and/or the
small CLIP on `shapes` from scratch (nothing cached is reused) and print a table of epochs, seconds,
text->image top-1 among 100 on the test split (mean over 3 candidate draws) and first/last loss.

Two more columns put top-1 in context. `ceiling`: the top-1 of an oracle that knows every image's ground
truth and ranks by what the caption says (main colour, shape, and size/position/background/extras when
mentioned), ties broken at random: captions that omit attributes make some candidates indistinguishable,
so no encoder can expect more. `cs-top1`: how often the top-ranked image has the caption's main colour
and shape (the retrieval the small CLIP must bring to 0.9 to stand in for OpenAI's); both use the
candidate draws of the CLIP retrieval function. `pos` and `count`: when that top-ranked image has the right main colour and shape,
how often it also has the main position the caption names, and the object count of a caption that states
it by listing the extras or saying the main object is alone (what a generator conditioned on the encoder
can learn about placement and number).
`--checkpoint` scores a saved encoder (e.g. the one a bench cached) without training.

    python benchmarks/encoder_retrieval.py --kind both --threads 2
    python benchmarks/encoder_retrieval.py --kind clip --seconds 240 --config epochs=20
    python benchmarks/encoder_retrieval.py --kind clip --checkpoint $T2IGAN_CACHE/encoders/clip/shapes-<key>.pt
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

CANDIDATES = 100
DRAWS = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("damsm", "clip", "both"), default="both")
    parser.add_argument(
        "--data", default="shapes", help="dataset reference, e.g. shapes or shapes:size=small"
    )
    parser.add_argument("--seconds", type=float, default=None, help="wall-clock budget per encoder")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", action="append", default=[], help="KEY=VALUE override (repeatable)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument(
        "--checkpoint", default=None, help="score this saved encoder (of --kind) instead of training one"
    )
    return parser.parse_args(argv)


def _queries_and_others(captions: list[list[str]], seed: int) -> tuple[list[str], np.ndarray]:
    """One caption per image and 99 other images each, drawn as clip_pretrain.retrieval_accuracy does."""
    rng = np.random.default_rng(seed)
    count = len(captions)
    queries = [c[rng.integers(len(c))] for c in captions]
    others = np.stack([rng.choice(count - 1, CANDIDATES - 1, replace=False) for _ in range(count)])
    return queries, others + (others >= np.arange(count)[:, None])


def _mentions(caption: str, words: tuple[str, ...]) -> bool:
    return any(re.search(rf"\b{re.escape(w)}\b", caption) for w in words)


def _consistent(caption: str, a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Would image b fit `caption` (written for image a) as well as a does, going by its ground truth?"""
    from t2igan.data import shapes

    if (a["main_colour"], a["main_shape"]) != (b["main_colour"], b["main_shape"]):
        return False
    for key, table in (
        ("main_size", shapes.SIZE_WORDS),
        ("main_position", shapes.POSITION_WORDS),
        ("background", shapes.BACKGROUND_WORDS),
    ):
        if a[key] != b[key] and _mentions(caption, table[a[key]]):
            return False
    names_extras = bool(re.search(r"\bto the (north|south|east|west)", caption))  # "a blue star to the north"
    states_count = names_extras or caption.startswith(shapes.COUNT_WORDS[1])  # "a lone red circle ..."
    if states_count and a["object_count"] != b["object_count"]:
        return False
    extras = [sorted((o["colour"], o["shape"], o["position"]) for o in x["objects"][:-1]) for x in (a, b)]
    return not (names_extras and extras[0] != extras[1])


def oracle_ceiling(test: Any, seed: int) -> float:
    """Expected top-1 of the ground-truth oracle (random tie-breaking), mean over the same draws."""
    attributes = [r.attributes for r in test.records]
    captions = [list(r.captions) for r in test.records]
    scores = []
    for draw in range(DRAWS):
        queries, others = _queries_and_others(captions, seed + draw)
        for i, query in enumerate(queries):
            ties = sum(_consistent(query, attributes[i], attributes[j]) for j in others[i])
            scores.append(1.0 / (1 + ties))
    return float(np.mean(scores))


def breakdown(kind: str, encoder: Any, images: np.ndarray, test: Any, seed: int) -> dict[str, float]:
    """`cs_top1`: how often the best of the 100 candidates has the query's main colour and shape; the exact
    top-1 on queries whose main pair is held out of train (`top1_heldout`) or not (`top1_seen`); and, among
    queries whose best candidate has the right main colour and shape, how often it also has the main
    position the query names (`pos_top1`, queries that name it) and the object count the query implies
    (`count_top1`, queries that name the extras) - what a generator conditioned on this encoder can learn
    about where the main object goes and how many objects to draw."""
    import torch

    from t2igan.data import shapes

    captions = [list(r.captions) for r in test.records]
    attrs = [r.attributes for r in test.records]
    pair = np.array([hash((a["main_colour"], a["main_shape"])) for a in attrs])
    position = np.array([a["main_position"] for a in attrs])
    count = np.array([a["object_count"] for a in attrs])
    heldout = np.array([bool(a.get("heldout_combo")) for a in attrs])
    with torch.no_grad():
        image_emb, embed_text = _embedders(kind, encoder, images)
        hits, exact, pos_hits, count_hits = [], [], [], []
        for draw in range(DRAWS):
            queries, others = _queries_and_others(captions, seed + draw)
            candidates = np.concatenate([np.arange(len(images))[:, None], others], axis=1)
            scores = torch.einsum("nd,nkd->nk", embed_text(queries), image_emb[torch.from_numpy(candidates)])
            ranked_first = scores.argmax(dim=1).numpy()
            best = candidates[np.arange(len(images)), ranked_first]
            hits.append(pair[best] == pair)
            exact.append(ranked_first == 0)
            for i, query in enumerate(queries):
                if pair[best[i]] != pair[i]:
                    continue
                if _mentions(query, shapes.POSITION_WORDS[position[i]]):
                    pos_hits.append(position[best[i]] == position[i])
                if re.search(r"\bto the (north|south|east|west)", query):
                    count_hits.append(count[best[i]] == count[i])
    hits_all, exact_all = np.stack(hits), np.stack(exact)
    return {
        "cs_top1": float(hits_all.mean()),
        "top1_heldout": float(exact_all[:, heldout].mean()),
        "top1_seen": float(exact_all[:, ~heldout].mean()),
        "pos_top1": float(np.mean(pos_hits)) if pos_hits else float("nan"),
        "count_top1": float(np.mean(count_hits)) if count_hits else float("nan"),
    }


def _embedders(kind: str, encoder: Any, images: np.ndarray) -> tuple[Any, Any]:
    import torch.nn.functional as F

    if kind == "damsm":
        from t2igan.text.damsm_pretrain import encode_images, encode_sentences

        return (
            F.normalize(encode_images(encoder.image_encoder, images), dim=1),
            lambda q: F.normalize(encode_sentences(encoder, q), dim=1),
        )
    from t2igan.text.clip_pretrain import embed_images, embed_texts

    return embed_images(encoder, images), lambda q: embed_texts(encoder, q)


def run(kind: str, args: argparse.Namespace, train: Any, test: Any, work: Path) -> dict[str, Any]:
    from t2igan.cli.commands import parse_overrides
    from t2igan.text.pretrained import load_encoder, split_arrays, train_and_save

    config = parse_overrides(args.config)
    if args.seconds is not None:
        config["max_seconds"] = args.seconds
    if args.checkpoint:
        path = Path(args.checkpoint)
        meta = json.loads(path.with_suffix(".json").read_text())
    else:
        path = work / f"{kind}.pt"
        meta = train_and_save(
            kind, args.data, train, test, path, config, "cpu", args.seed, args.progress, None
        )
    stats = meta["stats"]
    encoder = load_encoder(kind, path).encoder
    images, _ = split_arrays(test, int(stats["config"]["data_image_size"]), progress=False)
    losses = stats.get("epoch_losses") or [float("nan")]
    return {
        "kind": kind,
        "threads": args.threads,
        "epochs": stats.get("epochs"),
        "steps": stats.get("steps"),
        "train_seconds": round(float(stats.get("seconds", 0.0)), 1),
        "wall_seconds": round(float(stats.get("wall_seconds", 0.0)), 1),
        "top1": meta.get("retrieval_top1"),
        "train_top1": stats.get("train_retrieval_top1"),
        **breakdown(kind, encoder, images, test, args.seed),
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "overrides": config,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from t2igan.data.commands import load_split
    from t2igan.training.session import parse_dataset_ref

    torch.set_num_threads(args.threads)
    name, options = parse_dataset_ref(args.data)
    train, test = load_split(name, "train", **options), load_split(name, "test", **options)
    kinds = ("damsm", "clip") if args.kind == "both" else (args.kind,)
    if args.checkpoint and len(kinds) > 1:
        sys.exit("--checkpoint scores one encoder: give --kind damsm or --kind clip")
    rows = []
    with tempfile.TemporaryDirectory(prefix="encoder-retrieval-") as work:
        for kind in kinds:
            rows.append(run(kind, args, train, test, Path(work)))
            print(json.dumps(rows[-1]), file=sys.stderr)
    ceiling = oracle_ceiling(test, args.seed) if name == "shapes" else float("nan")
    print(f"{args.data}: {len(train)} train / {len(test)} test images; top-1 text->image among 100 (3 draws)")
    print(
        f"{'kind':<6} {'threads':>7} {'epochs':>6} {'seconds':>8} {'top-1':>6} {'ceiling':>7} {'seen':>6} "
        f"{'heldout':>7} {'cs-top1':>7} {'pos':>6} {'count':>6} {'loss first':>10} {'last':>7}"
    )
    for r in rows:
        top1 = float("nan") if r["top1"] is None else r["top1"]
        r["ceiling"] = ceiling
        print(
            f"{r['kind']:<6} {r['threads']:>7} {r['epochs']:>6} {r['wall_seconds']:>8.1f} {top1:>6.3f} "
            f"{ceiling:>7.3f} {r['top1_seen']:>6.3f} {r['top1_heldout']:>7.3f} {r['cs_top1']:>7.3f} "
            f"{r['pos_top1']:>6.3f} {r['count_top1']:>6.3f} "
            f"{r['loss_first']:>10.3f} {r['loss_last']:>7.3f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
