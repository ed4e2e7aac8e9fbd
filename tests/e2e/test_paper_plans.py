"""The paper plans of benchmarks/plans, end to end, as a user runs them: a dataset tree in the official
on-disk layout, every external weights file as an official-format stand-in found through $T2IGAN_WEIGHTS,
`t2igan bench PLAN --steps 2`, through to table.csv, table.md and table.tex.

Kept small (a batch of 2, the first 10 protocol images, tiny JPEGs), but every model of a plan trains,
is scored on every metric of the protocol, and lands in the table beside its paper's numbers."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch

from t2igan.benchmarking.plan import load_plan_file
from t2igan.benchmarking.records import iter_records
from t2igan.benchmarking.report import CAVEAT_MARK, PAPER_NOTES, display_columns
from t2igan.cli import main
from t2igan.registry import get_registry
from tests.layouts import (
    CUB_CLASSES,
    Tree,
    write_captions_pickle,
    write_celeba,
    write_coco,
    write_cub,
    write_flowers,
)
from tests.standins import (
    write_cleanfid_inception,
    write_damsm,
    write_fidelity_inception,
    write_openai_clip,
    write_torchvision_inception,
)

pytestmark = pytest.mark.slow  # paper presets at 256 px: minutes per plan on a CPU

ROOT = Path(__file__).resolve().parents[2]
PLANS = ROOT / "benchmarks" / "plans"
EVAL_IMAGES = 10  # R-precision's 10 folds need 10 generated images; the paper protocol's batch needs 32 real
SMALL = ["--steps", "2", "--batch-size", "2", "--eval-images", str(EVAL_IMAGES), "--device", "cpu"]


@pytest.fixture(scope="session")
def shared_weights(tmp_path_factory) -> Path:
    """The dataset-independent files: three Inceptions and OpenAI's ViT-B/32, each under its official name."""
    folder = tmp_path_factory.mktemp("weights")
    write_torchvision_inception(folder)
    write_fidelity_inception(folder)
    write_cleanfid_inception(folder)
    write_openai_clip(folder)
    return folder


def _coco_keys(train: int, test: int) -> dict[str, list[str]]:
    return {
        "train": [f"COCO_train2014_{i:012d}" for i in range(1, train + 1)],
        "test": [f"COCO_val2014_{i:012d}" for i in range(1, test + 1)],
    }


def _extra_classes(count: int) -> tuple[str, ...]:
    return tuple(f"{i:03d}.Bird_{i}" for i in range(3, 3 + count))


@dataclass(frozen=True)
class PaperCase:
    """One plan file, the tree its dataset is written as, and the DAMSM its DAMSM-conditioned models use."""

    plan: str
    dataset: str
    write: Callable[[Path], Tree]
    damsm_tag: str | None  # an official DAMSM tag; None: a DAMSM checkpoint of ours (no official one exists)


CASES = {
    "cub": PaperCase(
        "cub",
        "cub",
        # the T2I split is by class; R-precision draws its mismatched captions from other test classes
        lambda root: write_cub(root, CUB_CLASSES[:1], (CUB_CLASSES[1], *_extra_classes(1)), per_class=16),
        "cub",
    ),
    "coco": PaperCase("coco", "coco", lambda root: write_coco(root, "galip", _coco_keys(4, 32)), "coco"),
    "flowers": PaperCase("flowers", "flowers", lambda root: write_flowers(root, "dfgan", (4, 32)), "flower"),
    "celeba-tiny": PaperCase("celeba-tiny", "celeba-tiny", lambda root: write_celeba(root, (4, 64)), None),
}


def _damsm_checkpoint_of_ours(folder: Path, dataset: str, tree: Tree) -> Path:
    """What `t2igan pretrain-encoder damsm --data celeba-tiny` writes, with untrained weights."""
    from t2igan.text.damsm import DAMSMTextEncoder, damsm_weights_ref, save_damsm_checkpoint
    from t2igan.text.vocab import Vocabulary

    captions = [line for path in tree.texts.values() for line in path.read_text().splitlines() if line]
    torch.manual_seed(0)
    text = DAMSMTextEncoder(Vocabulary.build(captions))
    path = folder / damsm_weights_ref(dataset, "text").filename
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_damsm_checkpoint(path, text)


@pytest.fixture
def paper_run(request, tmp_path, shared_weights, monkeypatch):
    case: PaperCase = CASES[request.param]
    tree = case.write(tmp_path / "data" / case.dataset)
    vocab_size = write_captions_pickle(tree)  # the official DAMSM vocabulary lives beside the data
    own = tmp_path / "weights"
    if case.damsm_tag:
        write_damsm(own, case.damsm_tag, vocab_size)
    else:
        _damsm_checkpoint_of_ours(own, case.dataset, tree)
    monkeypatch.setenv("T2IGAN_WEIGHTS", os.pathsep.join([str(own), str(shared_weights)]))
    monkeypatch.setenv("T2IGAN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "runs"
    plan_file = PLANS / f"{case.plan}.toml"
    argv = ["bench", str(plan_file), "--root", f"{case.dataset}={tree.root}", "--out", str(out), *SMALL]
    yield case, plan_file, out, argv
    _drop_checkpoints(tmp_path)


def _drop_checkpoints(folder: Path) -> None:
    """A paper preset's checkpoints are gigabytes: gone once the test has read the tables."""
    for path in folder.rglob("*.pt"):
        path.unlink()


@pytest.mark.parametrize("paper_run", sorted(CASES), indirect=True)
def test_a_paper_plan_runs_end_to_end(paper_run, capsys):
    case, plan_file, out, argv = paper_run
    assert main(argv) == 0, capsys.readouterr().err
    check_paper_table(case, plan_file, out)


def check_paper_table(case: PaperCase, plan_file: Path, out: Path) -> None:
    """What a plan's table must hold: every model, every metric of the protocol, the marks, the papers."""
    for name in ("table.csv", "table.md", "table.tex", "results.csv"):
        assert (out / name).is_file(), name
    registry = get_registry()
    plan = load_plan_file(plan_file)
    dataset = registry.dataset(case.dataset)
    protocol = dataset.protocols["paper"]
    table = pd.read_csv(out / "table.csv")
    rows = {ref.variant for ref in plan.models}
    assert set(table["model"]) == rows

    results = pd.read_csv(out / "results.csv")
    scored = results.dropna(subset=["metric"])
    # every metric of the protocol, for every model, labelled by the protocol and as capped
    for model in rows:
        mine = scored[scored["model"] == model]
        assert set(protocol.metrics) <= set(mine["metric"]), (model, sorted(mine["metric"]))
        quality = mine[mine["metric"].isin(protocol.metrics)]
        assert quality["value"].notna().all() and (quality["prov_n_fake"] == EVAL_IMAGES).all()
        assert (quality["protocol"] == "paper").all() and quality["prov_quick"].all()
    for _, record in iter_records(out):  # the flags that made the run small are in every record
        assert record.budget["batch_size"] == 2 and record.budget["steps"] == 2
        assert record.protocol["max_images"] == EVAL_IMAGES and record.protocol["name"] == "paper"
    # every column computed with stand-in weights says so: all of them here
    quality_columns = [
        c for c in display_columns(table) if any(c.split("[")[0].endswith(f"/{m}") for m in protocol.metrics)
    ]
    assert len(quality_columns) == len(protocol.metrics)
    markdown = (out / "table.md").read_text(encoding="utf-8")
    latex = (out / "table.tex").read_text(encoding="utf-8")
    header = markdown.splitlines()[0]
    for column in quality_columns:
        assert table[f"{column}/caveat"].notna().all(), column
        assert f"quick: scored on {EVAL_IMAGES} generated images" in table[f"{column}/caveat"].iloc[0]
        assert f"{column}{CAVEAT_MARK}" in header or f"{column} {CAVEAT_MARK}" in header, (column, header)
        assert re.search(rf"{CAVEAT_MARK}\s*{re.escape(column)}:", markdown), column
    assert "not the official torchvision weights" in markdown  # the FID's Inception, by its sha256
    if "r_precision" in protocol.metrics:  # the released DAMSM files have no published sha256
        assert "damsm weights not verified" in markdown
    latex_header = next(line for line in latex.splitlines() if line.startswith("Model &"))
    for column in quality_columns:
        escaped = column.replace("_", r"\_")
        assert f"{escaped}$^\\dagger$" in latex_header, (column, latex_header)
    # a paper-mode FID against our own statistics (no official npz given) says so
    fid = [c for c in quality_columns if c.split("[")[0].endswith("/fid")]
    assert fid and "own statistics of the test split" in str(table[f"{fid[0]}/caveat"].iloc[0])
    # the papers' numbers beside ours, with their sources
    expected = 0
    for ref in plan.models:
        spec = registry.model(ref.name)
        reported = [
            r for r in spec.paper_results if r.dataset == case.dataset and r.metric in protocol.metrics
        ]
        for metric in {r.metric for r in reported}:
            own = [r for r in reported if r.metric == metric]
            best = next((r for r in own if r.note in PAPER_NOTES), own[0])
            column = next(c for c in quality_columns if c.split("[")[0].endswith(f"/{metric}"))
            row = table[table["model"] == ref.variant].iloc[0]
            assert row[f"{column}/paper"] == pytest.approx(best.value), (ref.variant, metric)
            assert best.source in row[f"{column}/paper_source"]
            expected += 1
    assert expected > 0


def test_official_checkpoints_convert_evaluate_and_tabulate(tmp_path, shared_weights, monkeypatch, capsys):
    """Released DF-GAN and RAT-GAN checkpoints (official key layouts, seeded values as the parity script
    makes them) -> `t2igan convert` -> `t2igan eval --record` -> `t2igan report`: their rows carry the
    papers' numbers, the stand-in marks, and the file each row was converted from."""
    from tests.models.conftest import official_to_random
    from tests.models.test_dfgan import official_layout
    from tests.models.test_ratgan import official_checkpoint

    tree = CASES["cub"].write(tmp_path / "birds")
    own = tmp_path / "weights"
    write_damsm(own, "cub", write_captions_pickle(tree))
    monkeypatch.setenv("T2IGAN_WEIGHTS", os.pathsep.join([str(own), str(shared_weights)]))
    monkeypatch.setenv("T2IGAN_CACHE", str(tmp_path / "cache"))
    dfgan = {
        name: official_to_random(layout, seed=i) for i, (name, layout) in enumerate(official_layout().items())
    }
    torch.save({"model": dfgan}, tmp_path / "state_epoch_1220.pth")
    ratgan = official_checkpoint(nf=64, seed=5)  # the birds release: nf 64
    torch.save(ratgan["netG"], tmp_path / "netG_600.pth")
    torch.save(ratgan["netD"], tmp_path / "netD_600.pth")
    releases = {
        "dfgan.bird256": [tmp_path / "state_epoch_1220.pth"],
        "ratgan.bird256": [tmp_path / "netG_600.pth", tmp_path / "netD_600.pth"],
    }
    out = tmp_path / "table"
    for model, files in releases.items():
        converted = tmp_path / f"{model}.pt"
        assert main(["convert", *map(str, files), "--model", model, "--out", str(converted)]) == 0
        evaluate = [
            "eval",
            str(converted),
            "--root",
            str(tree.root),
            "--protocol",
            "paper",
            "--fid-mode",
            "paper",
        ]
        evaluate += ["--second-clip", f"ViT-B-32={shared_weights / 'clip' / 'ViT-B-32.pt'}"]
        code = main([*evaluate, "--eval-images", str(EVAL_IMAGES), "--record", str(out), "--device", "cpu"])
        assert code == 0, capsys.readouterr().err
    assert main(["report", str(out)]) == 0
    table = pd.read_csv(out / "table.csv")
    assert sorted(table["model"]) == ["dfgan", "ratgan"]
    fid = "cub/fid[paper]"
    dfgan_row = table[table["model"] == "dfgan"].iloc[0]
    assert dfgan_row[f"{fid}/paper"] == pytest.approx(14.81)  # DF-GAN README, the paper's own number
    assert "tobran/DF-GAN README.md" in dfgan_row[f"{fid}/paper_source"]
    protocol = get_registry().dataset("cub").protocols["paper"]
    for metric in protocol.metrics:
        column = next(c for c in display_columns(table) if c.split("[")[0].endswith(f"/{metric}"))
        assert table[column].notna().all() and table[f"{column}/caveat"].notna().all(), column
    header = (out / "table.md").read_text(encoding="utf-8").splitlines()[0]
    assert f"{fid}{CAVEAT_MARK}" in header
    # the second CLIP has its own column; here it is the same file, so it gives the CLIP score's numbers
    second = "cub/clip_score_2[paper]"
    assert f"{second}{CAVEAT_MARK}" in header
    assert table[f"{second}/mean"].tolist() == pytest.approx(table["cub/clip_score[paper]/mean"].tolist())
    results = pd.read_csv(out / "results.csv")
    assert set(results["protocol"]) == {"paper"} and results.dropna(subset=["metric"])["prov_quick"].all()
    _drop_checkpoints(tmp_path)
    origins = {
        r.model: [Path(o["file"]).name for o in r.checkpoint["converted_from"]] for _, r in iter_records(out)
    }
    assert origins == {"dfgan": ["state_epoch_1220.pth"], "ratgan": ["netG_600.pth", "netD_600.pth"]}
