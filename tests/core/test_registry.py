"""The plugin host: each plugin loads on its own; broken ones are reported by name and skipped."""

from __future__ import annotations

import sys
import types
from importlib import metadata

import pytest

from t2igan.errors import UnknownNameError
from t2igan.hookspecs import hookimpl
from t2igan.registry import DISABLE_AUTOLOAD_ENV, PLUGINS_ENV, PluginLoader
from t2igan.specs import FusionBlockSpec


def _block(cond_dim, channels, shared=None):
    raise AssertionError("never built in these tests")


def make_module(name: str, body: dict) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(body)
    sys.modules[name] = module
    return module


def fusion_plugin(module_name: str, block_name: str) -> types.ModuleType:
    @hookimpl
    def t2igan_register_fusion_blocks(register):
        register(FusionBlockSpec(name=block_name, block=_block, description=f"{block_name} for tests"))

    return make_module(module_name, {"t2igan_register_fusion_blocks": t2igan_register_fusion_blocks})


def entry_point(name: str, module: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name=name, value=module, group="t2igan")


@pytest.fixture
def modules():
    created = []

    def add(module):
        created.append(module.__name__)
        return module

    yield add
    for name in created:
        sys.modules.pop(name, None)


def load(eps, environ=None):
    loader = PluginLoader(entry_points=eps, environ=environ or {})
    return loader.load()[1]


def test_good_plugin_registers_its_components(modules):
    modules(fusion_plugin("t2i_good", "goodblock"))
    registry = load([entry_point("good", "t2i_good")])
    assert registry.fusion_block("goodblock").description == "goodblock for tests"
    info = registry.plugins["good"]
    assert info.status == "ok"
    assert info.provides == {"fusion block": ["goodblock"]}
    assert info.hooks == ["t2igan_register_fusion_blocks"]


def test_import_error_is_reported_and_others_still_load(modules):
    modules(fusion_plugin("t2i_good2", "goodblock"))
    registry = load([entry_point("broken", "t2i_no_such_module_xyz"), entry_point("good", "t2i_good2")])
    assert registry.plugins["broken"].status == "error"
    assert "t2i_no_such_module_xyz" in registry.plugins["broken"].error
    assert registry.plugins["good"].status == "ok"
    assert "goodblock" in registry.fusion_blocks


def test_duplicate_name_is_reported_against_the_second_plugin(modules):
    modules(fusion_plugin("t2i_first", "sameblock"))
    modules(fusion_plugin("t2i_second", "sameblock"))
    registry = load([entry_point("first", "t2i_first"), entry_point("second", "t2i_second")])
    assert registry.plugins["first"].status == "ok"
    assert registry.plugins["second"].status == "error"
    assert "already registered by plugin 'first'" in registry.plugins["second"].error
    assert registry.owner[("fusion block", "sameblock")] == "first"


def test_wrong_hook_arguments_are_reported(modules):
    @hookimpl
    def t2igan_register_models(register, unexpected_argument):
        raise AssertionError("never called")

    modules(make_module("t2i_wrong_args", {"t2igan_register_models": t2igan_register_models}))
    registry = load([entry_point("wrongargs", "t2i_wrong_args")])
    info = registry.plugins["wrongargs"]
    assert info.status == "error"
    assert "unexpected_argument" in info.error


def test_unknown_hook_name_is_reported(modules):
    @hookimpl
    def t2igan_register_modles(register):  # the typo is the point
        raise AssertionError("never called")

    modules(make_module("t2i_typo", {"t2igan_register_modles": t2igan_register_modles}))
    registry = load([entry_point("typo", "t2i_typo")])
    assert registry.plugins["typo"].status == "error"
    assert "t2igan_register_modles is not a t2igan hook" in registry.plugins["typo"].error


def test_invalid_spec_rolls_back_everything_the_plugin_registered(modules):
    @hookimpl
    def t2igan_register_fusion_blocks(register):
        register(FusionBlockSpec(name="fine", block=_block, description="registered first"))
        register(FusionBlockSpec(name="incomplete", block=_block, description=""))  # missing description

    modules(make_module("t2i_invalid", {"t2igan_register_fusion_blocks": t2igan_register_fusion_blocks}))
    registry = load([entry_point("invalid", "t2i_invalid")])
    assert registry.plugins["invalid"].status == "error"
    assert "'description' is required" in registry.plugins["invalid"].error
    assert "fine" not in registry.fusion_blocks


def test_registering_the_wrong_spec_type_is_reported(modules):
    @hookimpl
    def t2igan_register_models(register):
        register(FusionBlockSpec(name="notamodel", block=_block, description="wrong kind"))

    modules(make_module("t2i_wrongtype", {"t2igan_register_models": t2igan_register_models}))
    registry = load([entry_point("wrongtype", "t2i_wrongtype")])
    assert "expected a ModelSpec" in registry.plugins["wrongtype"].error


def test_env_selects_plugins_by_name(modules):
    modules(fusion_plugin("t2i_a", "ablock"))
    modules(fusion_plugin("t2i_b", "bblock"))
    eps = [entry_point("a", "t2i_a"), entry_point("b", "t2i_b")]
    registry = load(eps, {PLUGINS_ENV: "b"})
    assert "bblock" in registry.fusion_blocks
    assert "ablock" not in registry.fusion_blocks
    assert "a" not in registry.plugins


def test_disable_autoload_keeps_only_builtin_entry_points(modules):
    modules(fusion_plugin("t2i_third", "thirdblock"))
    registry = load([entry_point("third", "t2i_third")], {DISABLE_AUTOLOAD_ENV: "1"})
    # entry points built here have no distribution, so they count as third-party and are skipped
    assert "third" not in registry.plugins
    assert "thirdblock" not in registry.fusion_blocks


def test_unknown_name_lists_known_names_and_suggests_the_closest(modules):
    modules(fusion_plugin("t2i_c", "dfblock_test"))
    registry = load([entry_point("c", "t2i_c")])
    with pytest.raises(UnknownNameError) as caught:
        registry.fusion_block("dfblok_test")
    message = str(caught.value)
    assert "Did you mean 'dfblock_test'?" in message
    assert "Known fusion blocks: dfblock_test" in message
