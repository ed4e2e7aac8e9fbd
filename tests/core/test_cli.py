"""The CLI as a user drives it: parameter counts of the paper presets, and clean errors."""

from __future__ import annotations

import json

from tests.conftest import run_cli


def test_models_json_reports_official_parameter_counts_per_part():
    result = run_cli("models", "--json", "*.bird256")
    assert result.returncode == 0, result.stderr
    counts = {row["model"]: row["parameters"] for row in json.loads(result.stdout)}
    # official code, random init on CPU (docs/official-code.md, DF-GAN and RAT-GAN)
    assert counts["dfgan"]["G"]["total"] == 9_744_131
    assert counts["dfgan"]["D"]["total"] == 6_619_206
    assert counts["dfgan"]["C"]["total"] == 295_936
    assert counts["ratgan"]["G"]["total"] == 38_091_658
    assert counts["ratgan"]["D"]["total"] == 80_379_526


def test_models_json_reports_trainable_and_frozen_parts_of_the_clip_models():
    result = run_cli("models", "--json", "*.cub")
    assert result.returncode == 0, result.stderr
    counts = {row["model"]: row["parameters"] for row in json.loads(result.stdout)}
    split = {m: {part: (c["trainable"], c["frozen"]) for part, c in counts[m].items()} for m in counts}
    # official code with a random ViT-B/32, trainable and frozen (docs/official-code.md, GALIP and RATLIP)
    assert split["galip"]["G"] == (51_830_211, 87_454_464)
    assert split["ratlip"]["G"] == (53_771_379, 87_454_464)
    for model in ("galip", "ratlip"):
        assert split[model]["D"] == (28_706_821, 0) and split[model]["C"] == (2_099_200, 0)
        assert split[model]["CLIP"] == (0, 151_277_313)  # OpenAI ViT-B/32, both towers, all frozen


def test_unknown_dataset_is_one_line_with_the_known_names():
    result = run_cli("data", "check", "birds")
    assert result.returncode == 2
    assert "unknown dataset 'birds'" in result.stderr and "Known datasets:" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_plan_file_names_the_file_and_the_field(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('models = ["dfgan"]\nbudgte = "smoke"\n', encoding="utf-8")
    result = run_cli("bench", str(plan))
    assert result.returncode == 2
    assert f"plan file {plan}: unknown plan field(s) budgte" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_model_pattern_that_matches_nothing_fails_with_a_suggestion():
    result = run_cli("models", "dfgna", "--no-counts")
    assert result.returncode == 1
    assert "no model matches 'dfgna'; did you mean 'dfgan'?" in result.stderr
    known = result.stderr.split("known: ", 1)[1]  # third-party test plugins may be installed beside them
    assert {"alrgan", "dfgan", "galip", "ratgan", "ratlip"} <= set(known.strip().split(", "))


def test_the_parser_offers_every_named_budget_without_importing_torch():
    import subprocess
    import sys

    code = (
        "import sys\nfrom t2igan.cli import build_parser\n"
        "args = build_parser().parse_args(['bench', '--budget', 'short'])\n"
        "print(args.budget, 'torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["short", "False"]


def test_our_warnings_are_one_line_and_a_librarys_keep_their_form():
    import io

    from t2igan.cli import _show_warning
    from t2igan.errors import T2IGanWarning

    ours, theirs = io.StringIO(), io.StringIO()
    _show_warning(T2IGanWarning("probe_fd: approximate"), T2IGanWarning, "/x/fid.py", 7, file=ours)
    _show_warning(UserWarning("deprecated"), UserWarning, "/x/lib.py", 9, file=theirs, line="")
    assert ours.getvalue() == "t2igan: warning: probe_fd: approximate\n"
    assert theirs.getvalue() == "/x/lib.py:9: UserWarning: deprecated\n"
