"""Plans from flags and TOML files, and their errors."""

from __future__ import annotations

import shlex

import pytest

from t2igan.benchmarking.plan import BUDGET_STEPS, load_plan_file, make_plan
from t2igan.errors import ConfigError


def test_defaults_are_the_embedded_smoke_benchmark():
    plan = make_plan({})
    assert plan.datasets == ["shapes"] and plan.seeds == [0]
    assert plan.budget.name == "smoke" and plan.budget.steps == BUDGET_STEPS["smoke"]
    assert plan.models == []  # "all": resolved against the registry when the bench starts
    assert str(plan.out) == "runs/shapes-smoke"


def test_runs_are_dataset_major_and_share_everything_else():
    plan = make_plan({"models": "dfgan,dfgan:fusion=rat", "data": "shapes,cub", "seeds": "0,1", "steps": 50})
    runs = plan.runs()
    assert len(runs) == 8
    assert [r.dataset for r in runs[:4]] == ["shapes"] * 4
    assert runs[1].model.variant == "dfgan" and runs[1].seed == 1
    assert runs[2].model.variant == "dfgan:fusion=rat"
    assert plan.budget.steps == 50


def test_plan_file_with_flag_overrides(tmp_path):
    path = tmp_path / "cub_table.toml"
    path.write_text(
        'models = ["dfgan", "galip"]\ndata = "cub"\nseeds = [0, 1, 2]\nbudget = "paper"\n'
        'protocol = "paper"\nroots = { cub = "/data/birds" }\n'
    )
    plan = load_plan_file(path)
    assert plan.name == "cub_table" and plan.budget.name == "paper" and plan.budget.steps is None
    assert plan.roots == {"cub": "/data/birds"} and plan.seeds == [0, 1, 2]
    shorter = load_plan_file(path, {"steps": 10})
    assert shorter.budget.name == "steps" and shorter.budget.steps == 10


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"budget": "huge"}, "--budget 'huge': expected one of smoke, short, paper"),
        ({"steps": 10, "budget": "smoke"}, "give one of budget, steps, epochs"),
        ({"seeds": "0,x"}, "--seeds '0,x': expected comma-separated integers"),
        ({"steps": 0}, "--steps 0: expected a positive integer"),
        ({"batch_size": 0}, "--batch-size 0: expected a positive integer"),
        ({"batch_size": True}, "batch_size = True: expected an integer"),
        ({"name": 1}, "name = 1: expected text"),
        ({"out": 5}, "out = 5: expected text"),
        ({"eval_seed": "x"}, "eval_seed = 'x': expected an integer"),
        ({"eval_images": -5}, "--eval-images -5: expected a positive integer"),
        ({"second_clip": "=/w/x.pt"}, "second_clip '=/w/x.pt': expected MODEL or MODEL=WEIGHTS"),
        ({"roots": ["cub"]}, "--root 'cub': expected DATASET=PATH"),
        ({"protocol": "full"}, "protocol 'full'"),
        ({"modles": "dfgan"}, "unknown plan field(s) modles"),
        ({"fid_reference": ["cub=/r.npz"]}, "only fid_mode 'paper'"),
        ({"fid_mode": "paper", "fid_reference": ["cub"]}, "fid_reference 'cub': expected DATASET=PATH"),
    ],
)
def test_bad_fields_name_the_flag(fields, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_plan(fields)


def test_missing_or_invalid_plan_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_plan_file(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("models = [dfgan")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_plan_file(bad)


def test_official_fid_statistics_and_inception_weights_reach_the_fid_metric(tmp_path):
    from t2igan.benchmarking.evaluation import inception_configs
    from t2igan.benchmarking.runner import BenchRunner

    path = tmp_path / "cub.toml"
    path.write_text(
        'data = "cub"\nfid_mode = "paper"\ninception_weights = "/w/inception_v3_google-0cc3c7bd.pth"\n'
        '[fid_reference]\ncub = "/stats/bird_val256_FIDK0.npz"\n'
    )
    plan = load_plan_file(path)
    assert plan.fid_reference == {"cub": "/stats/bird_val256_FIDK0.npz"}
    runner = type("PlanOnly", (), {"plan": plan})()  # the settings depend on the plan alone
    settings = BenchRunner._inception_settings(runner, "cub:size=x")
    configs = inception_configs(
        settings["fid_mode"], settings["inception_weights"], settings["fid_reference"]
    )
    assert configs["fid"] == {
        "mode": "paper",
        "weights": "/w/inception_v3_google-0cc3c7bd.pth",
        "reference_npz": "/stats/bird_val256_FIDK0.npz",
    }
    # torchvision's file is paper-mode FID's only: KID/IS/PR keep torch-fidelity's own (found or downloaded)
    assert configs["kid"] == configs["is"] == configs["precision_recall"] == {}
    standard = inception_configs("standard", "/w/weights-inception-2015-12-05-6726825d.pth")
    assert {name: c.get("weights") for name, c in standard.items()} == dict.fromkeys(
        ("fid", "kid", "is", "precision_recall"), "/w/weights-inception-2015-12-05-6726825d.pth"
    )
    assert BenchRunner._inception_settings(runner, "coco")["fid_reference"] is None


PLAN_WITH_FILE_ONLY_FIELDS = """
name = "grid"
models = ["dfgan", "dfgan:fusion=rat"]
data = ["shapes"]
seeds = [0, 1]
steps = 50
fid_mode = "clean"
device = "cpu"
inception_weights = "/weights/pt_inception.pth"
eval_seed = 7
eval_every = 10
eval_every_images = 16
checkpoint_every = 5
[probe]
count = 200
[encoders.damsm]
epochs = 1
"""


@pytest.mark.parametrize("with_file", [True, False])
def test_emitted_commands_rebuild_the_plan_one_run_each(tmp_path, with_file):
    from t2igan.cli import build_parser
    from t2igan.cli.commands import emit_commands, plan_from_args

    parser = build_parser()
    if with_file:
        path = tmp_path / "grid.toml"
        path.write_text(PLAN_WITH_FILE_ONLY_FIELDS, encoding="utf-8")
        given = ["bench", str(path), "--root", "cub=/data/birds", "--emit-commands"]
    else:
        given = ["bench", "--models", "dfgan,dfgan:fusion=rat", "--seeds", "0,1", "--steps", "50"]
        given += [
            "--fid-mode",
            "clean",
            "--device",
            "cpu",
            "--inception-weights",
            "/w/i.pth",
            "--batch-size",
            "4",
            "--second-clip",
            "ViT-L-14=/w/ViT-L-14.pt",
            "--eval-images",
            "20",
            "--emit-commands",
        ]
    args = parser.parse_args(given)
    plan = plan_from_args(args)
    commands = emit_commands(plan, 2, args.plan)
    assert len(commands) == 4
    for key, command in zip(plan.runs(), commands, strict=True):
        argv = shlex.split(command)
        assert argv[:2] == ["t2igan", "bench"] and argv[-2:] == ["--nproc", "2"]
        one = plan_from_args(parser.parse_args(argv[1:]))
        assert one.runs() == [key]
        expected = {
            **plan.as_dict(),
            "models": [key.model.label],
            "datasets": [key.dataset],
            "seeds": [key.seed],
        }
        assert one.as_dict() == expected  # nothing of the plan lost: budget, encoders, probe, eval_every ...


def test_keep_last_is_a_positive_plan_field():
    assert make_plan({"keep_last": 3}).keep_last == 3 and make_plan({}).keep_last is None
    with pytest.raises(ConfigError, match="keep_last 0: expected a positive integer"):
        make_plan({"keep_last": 0})


@pytest.mark.parametrize("models", ["galip,galip.cub", "dfgan.bird256,dfgan.tiny", "dfgan,dfgan"])
def test_two_references_to_one_row_are_refused(models):
    with pytest.raises(ConfigError, match="would be one row and one run folder"):
        make_plan({"models": models})
    make_plan({"models": "dfgan,dfgan:fusion=rat,galip.cub"})  # distinct rows are fine


def test_every_plan_field_is_a_bench_flag_or_named_as_set_by_the_file_only():
    from t2igan.benchmarking.plan import PLAN_FIELDS
    from t2igan.cli import build_parser
    from t2igan.cli.commands import FILE_ONLY_FIELDS, flag_fields

    args = vars(build_parser().parse_args(["bench"]))
    assert set(flag_fields()) <= set(args)
    assert set(flag_fields()) | FILE_ONLY_FIELDS == set(PLAN_FIELDS)
