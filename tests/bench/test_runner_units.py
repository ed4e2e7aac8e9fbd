"""The runner's pieces on their own: budgets, `all`, split-hash refusal, the batch source's resume."""

from __future__ import annotations

import json

import pytest
import torch

from t2igan.benchmarking.plan import make_plan
from t2igan.benchmarking.records import (
    STATUS_FAILED,
    STATUS_FINISHED,
    RunRecord,
    read_record,
    run_dir,
    write_record,
)
from t2igan.benchmarking.runner import (
    BenchRunner,
    check_fid_mode,
    expand_models,
    write_plan,
)
from t2igan.errors import ConfigError, T2IGanError
from t2igan.models import choose_preset, parse_model_ref, resolve
from t2igan.nn.interfaces import TextFeatures
from t2igan.registry import get_registry
from t2igan.training.run import total_steps
from t2igan.training.session import (
    DatasetSession,
    SplitBatchSource,
    checkpoint_interval,
    fixed_captions,
    parse_dataset_ref,
)


def test_all_means_every_registered_model():
    registry = get_registry()
    plan = make_plan({"models": "all"})
    assert [m.name for m in expand_models(plan, registry)] == sorted(registry.models)
    assert [m.label for m in expand_models(make_plan({"models": "ratgan,dfgan"}), registry)] == [
        "ratgan",
        "dfgan",
    ]


def _plan_steps(fields, resolved, steps_per_epoch, fallback=None):
    budget = make_plan(fields).budget
    return total_steps(resolved, steps_per_epoch, budget.steps, budget.epochs, fallback)


def test_budgets_in_steps():
    registry = get_registry()
    paper = resolve(parse_model_ref("dfgan"), registry, preset="bird256")
    assert _plan_steps({"budget": "paper"}, paper, 100) == 1301 * 100  # bird.yml max_epoch
    assert _plan_steps({"epochs": 3}, paper, 100) == 300
    assert _plan_steps({"budget": "smoke"}, paper, 100) == 300
    tiny = resolve(parse_model_ref("dfgan"), registry, preset="tiny")
    with pytest.raises(T2IGanError, match="no max_epoch for --budget paper"):
        _plan_steps({"budget": "paper"}, tiny, 100)
    assert _plan_steps({"budget": "paper"}, tiny, 100, fallback=300) == 300  # `t2igan train`'s default
    with pytest.raises(ConfigError, match="not both"):
        total_steps(tiny, 100, steps=3, epochs=1)


def test_a_folder_never_takes_a_second_fid_mode_on_the_same_dataset(tmp_path):
    write_plan(tmp_path, make_plan({"data": "shapes", "fid_mode": "standard"}).as_dict())
    with pytest.raises(ConfigError, match=r"fid_mode 'standard'.*asks for 'clean'.*another --out"):
        check_fid_mode(tmp_path, make_plan({"data": "shapes", "fid_mode": "clean"}))
    check_fid_mode(tmp_path, make_plan({"data": "shapes", "fid_mode": "standard", "seeds": "1"}))
    check_fid_mode(
        tmp_path, make_plan({"data": "cub", "fid_mode": "paper"})
    )  # another dataset: its own columns
    runner = BenchRunner(
        make_plan({"data": "shapes", "fid_mode": "clean", "out": str(tmp_path)}),
        get_registry(),
        torch.device("cpu"),
        progress=False,
    )
    with pytest.raises(ConfigError, match="one table never mixes FID modes"):
        runner.run()
    assert len(list((tmp_path / "plans").glob("*.json"))) == 1  # the refused plan is not recorded


def test_paper_preset_is_chosen_by_dataset():
    spec = get_registry().model("dfgan")
    assert choose_preset(spec, "cub", None) == "bird256"
    assert choose_preset(spec, "shapes", None) == "tiny"
    assert choose_preset(spec, "cub", "tiny") == "tiny"


def test_checkpoint_interval_gives_a_few_checkpoints_per_run():
    assert checkpoint_interval(300) == 60
    assert checkpoint_interval(20) == 20
    assert checkpoint_interval(1_000_000) == 1000


def test_dataset_refs_carry_loader_options():
    assert parse_dataset_ref("shapes:size=tiny,seed=3") == ("shapes", {"size": "tiny", "seed": 3})
    with pytest.raises(T2IGanError, match="expected NAME or NAME:key=value"):
        parse_dataset_ref("shapes.tiny")


def test_a_run_made_with_another_budget_or_protocol_is_neither_reused_nor_resumed(tmp_path):
    registry = get_registry()
    plan = make_plan({"models": "dfgan", "data": "shapes:size=tiny", "out": str(tmp_path), "steps": 40})
    key = plan.runs()[0]
    folder = run_dir(plan.out, key.dataset, key.model.variant, key.seed)
    runner = BenchRunner(plan, registry, torch.device("cpu"), progress=False)
    same = {"budget": {"name": plan.budget.name, "steps": 40}, "protocol": {"name": plan.protocol}}
    for status in (STATUS_FINISHED, "running"):
        for changed, match in (
            ({"budget": {"name": "smoke", "steps": 300}}, r"budget 'smoke' \(this plan: 'steps'\)"),
            ({"budget": {"name": plan.budget.name, "steps": 80}}, r"80 steps \(this plan: 40\)"),
            ({"protocol": {"name": "quick"}}, r"protocol 'quick' \(this plan: 'paper'\)"),
            ({"budget": {"name": "steps", "steps": 40, "batch_size": 4}}, r"batch size 4 \(this plan: 16\)"),
            ({"protocol": {"name": "paper", "max_images": 10}}, r"10 evaluated images \(this plan: all\)"),
        ):
            write_record(
                folder, RunRecord(plan.name, key.dataset, "dfgan", 0, status=status, **{**same, **changed})
            )
            with pytest.raises(ConfigError, match=match + ".*one folder is one table"):
                runner.run_one(key, "[1/1]")
    write_record(folder, RunRecord(plan.name, key.dataset, "dfgan", 0, status=STATUS_FINISHED, **same))
    assert runner.run_one(key, "[1/1]").status == STATUS_FINISHED  # the same measure: reused


def test_runs_made_with_another_number_of_epochs_are_refused(tmp_path):
    plan = make_plan({"models": "dfgan", "data": "shapes:size=tiny", "out": str(tmp_path), "epochs": 2})
    key = plan.runs()[0]
    folder = run_dir(plan.out, key.dataset, key.model.variant, key.seed)
    runner = BenchRunner(plan, get_registry(), torch.device("cpu"), progress=False)
    same = {"protocol": {"name": plan.protocol}}
    held = {"name": "epochs", "steps": 12, "epochs": 3}  # both budgets are named "epochs"
    write_record(folder, RunRecord(plan.name, key.dataset, "dfgan", 0, STATUS_FINISHED, budget=held, **same))
    with pytest.raises(ConfigError, match=r"3 epochs \(this plan: 2\).*one folder is one table"):
        runner.run_one(key, "[1/1]")
    held["epochs"] = 2
    write_record(folder, RunRecord(plan.name, key.dataset, "dfgan", 0, STATUS_FINISHED, budget=held, **same))
    assert runner.run_one(key, "[1/1]").status == STATUS_FINISHED


def test_a_finished_run_on_another_split_is_refused(tmp_path):
    registry = get_registry()
    plan = make_plan({"models": "dfgan", "data": "shapes:size=tiny", "out": str(tmp_path)})
    key = plan.runs()[0]
    folder = run_dir(plan.out, key.dataset, key.model.variant, key.seed)
    old = RunRecord(plan.name, key.dataset, "dfgan", 0, status=STATUS_FINISHED, split={"sha256": "0" * 64})
    write_record(folder, old)
    runner = BenchRunner(plan, registry, torch.device("cpu"), progress=False)
    with pytest.raises(T2IGanError, match="cannot share a table"):
        runner.run_one(key, "[1/1]")
    # the same test split but other training data: refused as well
    test_sha = runner.dataset(key.dataset).test.sha256
    old.split = {"sha256": test_sha, "train": {"sha256": "1" * 64}}
    write_record(folder, old)
    with pytest.raises(T2IGanError, match="train split sha256 111111111111"):
        runner.run_one(key, "[1/1]")
    # another model's finished run in the folder, on another split: a new run is refused before training
    old.split = {"sha256": "2" * 64}
    write_record(folder, old)
    other = make_plan({"models": "ratgan", "data": "shapes:size=tiny", "out": str(tmp_path)}).runs()[0]
    fresh = BenchRunner(plan, registry, torch.device("cpu"), progress=False)
    with pytest.raises(
        T2IGanError, match=r"dfgan/seed0/record.json was measured with test split sha256 2222"
    ):
        fresh.run_one(other, "[1/1]")
    assert not run_dir(plan.out, other.dataset, other.model.variant, other.seed).exists()


class IndexTable:
    """Embeddings that say which (image, caption) they belong to."""

    def features(self, image_index, caption_index):
        return TextFeatures(torch.stack([image_index, caption_index], 1).float())


def test_batch_source_resumes_mid_epoch_with_the_same_batches():
    from t2igan.data.loader import dataset_for_split

    data = DatasetSession.open(get_registry(), "shapes:size=tiny", progress=False)
    images = dataset_for_split(data.train, 16, progress=False, seed=5)
    source = SplitBatchSource(data.train, images, IndexTable(), batch_size=32)
    assert source.steps_per_epoch == len(data.train) // 32
    full = [b.text.sentence for b in source.batches(epoch=2)]
    resumed = [b.text.sentence for b in source.batches(epoch=2, start=3)]
    assert len(resumed) == len(full) - 3
    assert all(torch.equal(a, b) for a, b in zip(full[3:], resumed, strict=True))
    assert not torch.equal(full[0], [b.text.sentence for b in source.batches(epoch=3)][0])  # reshuffled
    batch = next(source.batches(epoch=0))
    image, caption = (int(v) for v in batch.text.sentence[0])
    assert batch.captions[0] == data.train.caption(image, caption)


def test_batches_carry_the_class_ids_of_their_images_when_the_split_has_them():
    import dataclasses

    from t2igan.data.loader import dataset_for_split

    data = DatasetSession.open(get_registry(), "shapes:size=tiny", progress=False)
    plain = SplitBatchSource(data.train, dataset_for_split(data.train, 16, progress=False), IndexTable(), 32)
    assert "class_ids" not in next(plain.batches(epoch=0)).extras  # shapes records have no class id
    records = tuple(  # as CUB/flowers records carry them (class_info.pickle)
        dataclasses.replace(r, attributes={**r.attributes, "class_id": 100 + i % 7})
        for i, r in enumerate(data.train.records)
    )
    split = dataclasses.replace(data.train, records=records)
    images = dataset_for_split(split, 16, progress=False, seed=5)
    batch = next(SplitBatchSource(split, images, IndexTable(), batch_size=32).batches(epoch=1))
    image_index = batch.text.sentence[:, 0].long()
    assert batch.extras["class_ids"].tolist() == [100 + int(i) % 7 for i in image_index]


def test_grid_captions_are_fixed_and_spread_over_the_split():
    data = DatasetSession.open(get_registry(), "shapes:size=tiny", progress=False)
    captions = fixed_captions(data.test, 8)
    assert captions == fixed_captions(data.test, 8) and len(set(captions)) == 8
    assert captions[1] == data.test.caption(len(data.test) // 8, 0)


def test_every_plan_run_into_a_folder_is_kept(tmp_path):
    from t2igan.benchmarking.runner import write_plan

    first, second = {"name": "a", "models": ["dfgan"]}, {"name": "a", "models": ["alrgan:alr=false"]}
    write_plan(tmp_path, first)
    write_plan(tmp_path, first)  # the same plan again (a resumed bench): nothing new
    assert len(list((tmp_path / "plans").glob("*.json"))) == 1
    write_plan(tmp_path, second)
    kept = sorted(json.loads(p.read_text())["models"] for p in (tmp_path / "plans").glob("*.json"))
    assert kept == [["alrgan:alr=false"], ["dfgan"]]
    assert json.loads((tmp_path / "plan.json").read_text()) == second


def test_evaluation_images_do_not_depend_on_or_move_the_global_rng():
    """A generator that draws inside its forward (ALR-GAN's conditioning augmentation does): each batch
    depends on its noise seed only, and evaluating mid-training leaves the training's RNG where it was."""
    from t2igan.benchmarking.evaluation import make_generate
    from tests.train.toy import ToyGAN

    model = ToyGAN()
    plain_forward = model.generator.forward
    model.generator.forward = lambda noise, sentence, *a: (
        plain_forward(noise, sentence) + torch.randn(len(noise), 3, 8, 8)
    )

    class Text:
        def encode(self, captions, device):
            return TextFeatures(torch.ones(len(captions), 4))

    generate = make_generate(model, Text(), torch.device("cpu"))
    torch.manual_seed(1)
    first = generate(["a", "b"], 5)
    torch.manual_seed(2)
    before = torch.get_rng_state()
    again = generate(["a", "b"], 5)
    assert torch.equal(first, again)
    assert torch.equal(torch.get_rng_state(), before)
    assert not torch.equal(first, generate(["a", "b"], 6))


def test_cost_metrics_put_frozen_parameters_in_their_own_columns():
    from t2igan.benchmarking.runner import cost_metrics

    costs = {
        "images_per_second": 10.0,
        "train_seconds": 2.0,
        "parameters": {
            "G": {"trainable": 5, "frozen": 3, "total": 8},
            "CLIP": {"trainable": 0, "frozen": 7, "total": 7},
            "C": {"trainable": 4, "frozen": 0, "total": 4},
        },
    }
    values = {m.name: m.value for m in cost_metrics(costs) if m.name.startswith("params_")}
    assert values == {"params_G": 5, "params_G_frozen": 3, "params_CLIP_frozen": 7, "params_C": 4}


def test_the_environment_names_the_device_and_the_checkout_state():
    import subprocess
    from pathlib import Path

    from t2igan.benchmarking.records import environment

    env = environment(torch.device("cpu"))
    assert env["device"] == "cpu"
    repo = Path(__file__).resolve().parents[2]
    inside = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    if inside.returncode == 0:  # a checkout (CI clones one): its sha and whether it has local changes
        assert env["git_sha"] == inside.stdout.strip() and isinstance(env["git_dirty"], bool)
    else:  # an exported tree: no sha, and no claim about changes
        assert env["git_sha"] is None and env["git_dirty"] is None


def test_an_exception_in_one_run_is_recorded_with_its_traceback_and_the_plan_goes_on(tmp_path, monkeypatch):
    plan = make_plan({"models": "dfgan,ratgan", "data": "shapes:size=tiny", "out": str(tmp_path), "steps": 2})
    runner = BenchRunner(plan, get_registry(), torch.device("cpu"), progress=False)
    done = []

    def execute(key, folder, record, label):
        if key.model.name == "dfgan":
            raise RuntimeError("boom in dfgan")
        done.append(key.model.name)

    monkeypatch.setattr(runner, "_execute", execute)
    records = runner.run()
    assert [r.status for r in records] == [STATUS_FAILED, STATUS_FINISHED] and done == ["ratgan"]
    assert records[0].error == "RuntimeError: boom in dfgan"
    folder = run_dir(plan.out, "shapes:size=tiny", "dfgan", 0)
    assert "boom in dfgan" in (folder / "error.log").read_text() and read_record(folder / "record.json").error
