"""The built-in plugins install as `t2igan_plugins`, not as a top-level `plugins` that another
distribution could ship too."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import site
import subprocess
import sys
from importlib import metadata

from tests.conftest import ROOT, _pip

BUILTIN = ("alrgan", "dfgan", "galip", "ratgan", "ratlip")


def _listed_packages() -> list[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    return config["options"]["packages"].split()


def test_setup_cfg_lists_every_package_folder_under_its_install_name():
    found = []
    for top, name in (("t2igan", "t2igan"), ("plugins", "t2igan_plugins")):
        for init in sorted((ROOT / top).rglob("__init__.py")):
            parts = init.parent.relative_to(ROOT / top).parts
            found.append(".".join((name, *parts)))
    assert sorted(_listed_packages()) == sorted(found)


def test_the_entry_points_name_the_installed_package():
    points = {ep.name: ep.value for ep in metadata.entry_points(group="t2igan") if ep.dist.name == "t2igan"}
    assert points == {name: f"t2igan_plugins.{name}" for name in BUILTIN}


def test_builtin_plugins_load_beside_another_distribution_named_plugins(tmp_path):
    dummy = tmp_path / "dummy"
    (dummy / "plugins").mkdir(parents=True)
    (dummy / "plugins" / "__init__.py").write_text('WHO = "someone else"\n', encoding="utf-8")
    (dummy / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "someone-elses-plugins"\nversion = "1.0"\n\n'
        '[tool.setuptools]\npackages = ["plugins"]\n',
        encoding="utf-8",
    )
    # Both go into one site folder, as into one environment: a second top-level `plugins` cannot land.
    # The project is built from a copy, so the build leaves nothing (build/, *.egg-info) in the checkout.
    project = tmp_path / "project"
    project.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, project / name)
    for name in ("t2igan", "plugins"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    site_dir = tmp_path / "site"
    for source in (dummy, project):
        result = _pip("install", "--no-deps", "-q", "--target", str(site_dir), str(source))
        assert result.returncode == 0, result.stderr[-3000:]

    # -S: no .pth files, so this checkout's editable finder cannot stand in for what was installed.
    probe = (
        "import sys\n"
        f"sys.path[1:1] = {[str(site_dir), *site.getsitepackages()]!r}\n"
        "import json, plugins, t2igan\n"
        "from t2igan.registry import get_registry\n"
        "registry = get_registry()\n"
        "print(json.dumps({'who': plugins.WHO, 't2igan': t2igan.__file__,\n"
        "  'status': {n: registry.plugins[n].status for n in %r},\n"
        "  'models': sorted(registry.models)}))\n" % (BUILTIN,)
    )
    env = {k: v for k, v in os.environ.items() if k not in ("T2IGAN_PLUGINS", "PYTHONPATH")}
    out = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["t2igan"].startswith(str(site_dir)), seen["t2igan"]
    assert seen["who"] == "someone else"
    assert seen["status"] == {name: "ok" for name in BUILTIN}
    assert set(BUILTIN) <= set(seen["models"])
