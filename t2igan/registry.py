"""The plugin host: one pluggy PluginManager, plugins discovered through the entry-point group
`t2igan`, each loaded and registered on its own so that a broken plugin never takes the others down.

Core components (datasets, text encoders, metrics) are registered from core modules the same way;
built-in models come through the entry points of the `t2igan` distribution, as any third party's do.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from t2igan import hookspecs
from t2igan.errors import RegistrationError, UnknownNameError
from t2igan.specs import (
    SPEC_KINDS,
    DatasetSpec,
    FusionBlockSpec,
    MetricSpec,
    ModelSpec,
    TextEncoderSpec,
)

ENTRY_POINT_GROUP = "t2igan"
CORE_DISTRIBUTION = "t2igan"
PLUGINS_ENV = "T2IGAN_PLUGINS"
DISABLE_AUTOLOAD_ENV = "T2IGAN_DISABLE_PLUGIN_AUTOLOAD"

# Core rooms that register components; a missing one (room not built yet) is simply absent.
CORE_MODULES = ("t2igan.data.builtin", "t2igan.text.builtin", "t2igan.metrics.builtin")

REGISTER_HOOKS: dict[str, type] = {
    "t2igan_register_models": ModelSpec,
    "t2igan_register_fusion_blocks": FusionBlockSpec,
    "t2igan_register_text_encoders": TextEncoderSpec,
    "t2igan_register_datasets": DatasetSpec,
    "t2igan_register_metrics": MetricSpec,
}


@dataclass
class PluginInfo:
    """What `t2igan plugins` shows about one plugin."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)
    licenses: dict[str, str] = field(default_factory=dict)
    status: str = "ok"
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "hooks": list(self.hooks),
            "provides": {k: list(v) for k, v in self.provides.items()},
            "licenses": dict(self.licenses),
            "status": self.status,
            "error": self.error,
        }


class Registry:
    """Every registered component by kind and name, plus what each plugin provided or why it failed."""

    def __init__(self) -> None:
        self.models: dict[str, ModelSpec] = {}
        self.fusion_blocks: dict[str, FusionBlockSpec] = {}
        self.text_encoders: dict[str, TextEncoderSpec] = {}
        self.datasets: dict[str, DatasetSpec] = {}
        self.metrics: dict[str, MetricSpec] = {}
        self.plugins: dict[str, PluginInfo] = {}
        self.owner: dict[tuple[str, str], str] = {}  # (kind, name) -> plugin name

    def table(self, spec_type: type) -> dict[str, Any]:
        return {
            ModelSpec: self.models,
            FusionBlockSpec: self.fusion_blocks,
            TextEncoderSpec: self.text_encoders,
            DatasetSpec: self.datasets,
            MetricSpec: self.metrics,
        }[spec_type]

    def _get(self, spec_type: type, name: str) -> Any:
        table = self.table(spec_type)
        if name not in table:
            raise UnknownNameError(SPEC_KINDS[spec_type], name, table)
        return table[name]

    def model(self, name: str) -> ModelSpec:
        return self._get(ModelSpec, name)

    def fusion_block(self, name: str) -> FusionBlockSpec:
        return self._get(FusionBlockSpec, name)

    def text_encoder(self, name: str) -> TextEncoderSpec:
        return self._get(TextEncoderSpec, name)

    def dataset(self, name: str) -> DatasetSpec:
        return self._get(DatasetSpec, name)

    def metric(self, name: str) -> MetricSpec:
        return self._get(MetricSpec, name)

    def failed_plugins(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.status != "ok"]


def _new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("t2igan")
    pm.add_hookspecs(hookspecs)
    return pm


def _collect(plugin: object, pm: pluggy.PluginManager, info: PluginInfo) -> list[Any]:
    """Call the plugin's own register hooks with a staging callback; validate what it registered."""
    staged: list[Any] = []
    for hook_name, spec_type in REGISTER_HOOKS.items():
        impls = [i for i in getattr(pm.hook, hook_name).get_hookimpls() if i.plugin is plugin]
        for impl in impls:

            def register(spec: Any, _type: type = spec_type, _hook: str = hook_name) -> None:
                if not isinstance(spec, _type):
                    raise RegistrationError(
                        f"{_hook} registered {type(spec).__name__}, expected a {_type.__name__}"
                    )
                staged.append(spec)

            impl.function(register=register)
    return staged


def _hook_names(plugin: object, pm: pluggy.PluginManager) -> list[str]:
    return sorted(caller.name for caller in (pm.get_hookcallers(plugin) or []))


def _check_unknown_hooks(plugin: object) -> None:
    """A `t2igan_*` function that matches no hook spec is a typo that would silently do nothing."""
    known = set(REGISTER_HOOKS) | {"t2igan_resolve_weights"}
    for attr in dir(plugin):
        if attr.startswith("t2igan_") and attr not in known and callable(getattr(plugin, attr)):
            raise RegistrationError(f"{attr} is not a t2igan hook (known hooks: {', '.join(sorted(known))})")


class PluginLoader:
    """Loads core modules and entry points one by one into a fresh PluginManager and Registry."""

    def __init__(
        self, entry_points: Iterable[metadata.EntryPoint] | None = None, environ: dict[str, str] | None = None
    ):
        self.environ = os.environ if environ is None else environ
        self.entry_points = (
            list(metadata.entry_points(group=ENTRY_POINT_GROUP))
            if entry_points is None
            else list(entry_points)
        )
        self.pm = _new_plugin_manager()
        self.registry = Registry()

    def selected_entry_points(self) -> list[metadata.EntryPoint]:
        chosen = [
            ep
            for ep in self.entry_points
            if self._distribution(ep) == CORE_DISTRIBUTION
            or self.environ.get(DISABLE_AUTOLOAD_ENV, "") not in ("1", "true", "yes")
        ]
        only = [name.strip() for name in self.environ.get(PLUGINS_ENV, "").split(",") if name.strip()]
        if only:
            chosen = [ep for ep in chosen if ep.name in only]
        return chosen

    @staticmethod
    def _distribution(ep: metadata.EntryPoint) -> str | None:
        dist = getattr(ep, "dist", None)
        return dist.metadata["Name"] if dist is not None else None

    def load(self) -> tuple[pluggy.PluginManager, Registry]:
        for module_name in CORE_MODULES:
            info = PluginInfo(
                module_name.split(".")[1],
                module_name,
                CORE_DISTRIBUTION,
                _version(CORE_DISTRIBUTION),
                builtin=True,
            )
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name is not None and module_name.startswith(exc.name):
                    continue  # that core room is not built yet
                self._record_failure(info, exc)
                continue
            except Exception as exc:
                self._record_failure(info, exc)
                continue
            self.add(module, info)
        for ep in self.selected_entry_points():
            dist = self._distribution(ep)
            info = PluginInfo(ep.name, ep.value, dist, _version(dist), builtin=dist == CORE_DISTRIBUTION)
            try:
                plugin = ep.load()
            except Exception as exc:  # a plugin's import error must not stop the others
                self._record_failure(info, exc)
                continue
            self.add(plugin, info)
        return self.pm, self.registry

    def add(self, plugin: ModuleType | object, info: PluginInfo) -> PluginInfo:
        """Register one plugin; on any failure, unregister it and keep nothing it registered."""
        if info.name in self.registry.plugins:
            return self._record_failure(
                info,
                RegistrationError(
                    f"a plugin named {info.name!r} is already loaded "
                    f"(from {self.registry.plugins[info.name].module})"
                ),
            )
        try:
            _check_unknown_hooks(plugin)
            self.pm.register(plugin, name=info.name)
        except Exception as exc:  # pluggy's validation of hook arguments lands here
            return self._record_failure(info, exc)
        try:
            info.hooks = _hook_names(plugin, self.pm)
            staged = _collect(plugin, self.pm, info)
            self._check_duplicates(staged, info)
        except Exception as exc:
            self.pm.unregister(plugin)
            return self._record_failure(info, exc)
        for spec in staged:
            kind = SPEC_KINDS[type(spec)]
            self.registry.table(type(spec))[spec.name] = spec
            self.registry.owner[(kind, spec.name)] = info.name
            info.provides.setdefault(kind, []).append(spec.name)
            license_ = getattr(spec, "license", "")
            if license_:
                info.licenses[f"{kind}:{spec.name}"] = license_
        self.registry.plugins[info.name] = info
        return info

    def _check_duplicates(self, staged: list[Any], info: PluginInfo) -> None:
        seen: set[tuple[str, str]] = set()
        for spec in staged:
            key = (SPEC_KINDS[type(spec)], spec.name)
            if key in seen:
                raise RegistrationError(f"registers {key[0]} {key[1]!r} twice")
            seen.add(key)
            if key in self.registry.owner:
                raise RegistrationError(
                    f"{key[0]} {key[1]!r} is already registered by plugin {self.registry.owner[key]!r}"
                )

    def _record_failure(self, info: PluginInfo, exc: BaseException) -> PluginInfo:
        info.status = "error"
        info.error = f"{type(exc).__name__}: {exc}"
        info.provides = {}
        self.registry.plugins[info.name] = info
        return info


def _version(distribution: str | None) -> str | None:
    if not distribution:
        return None
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


_lock = threading.Lock()
_state: tuple[pluggy.PluginManager, Registry] | None = None


def _load() -> tuple[pluggy.PluginManager, Registry]:
    global _state
    with _lock:
        if _state is None:
            _state = PluginLoader().load()
        return _state


def get_plugin_manager() -> pluggy.PluginManager:
    return _load()[0]


def get_registry() -> Registry:
    return _load()[1]


def reset_registry() -> None:
    """Forget loaded plugins (tests, and after installing a plugin in the same process)."""
    global _state
    with _lock:
        _state = None


def register_plugin(plugin: object, name: str | None = None) -> PluginInfo:
    """Register a plugin object in-process (notebooks and tests), with the same validation."""
    pm, registry = _load()
    loader = PluginLoader.__new__(PluginLoader)
    loader.pm, loader.registry, loader.environ = pm, registry, os.environ
    plugin_name = name or getattr(plugin, "__name__", type(plugin).__name__)
    return loader.add(plugin, PluginInfo(plugin_name, getattr(plugin, "__name__", plugin_name)))


def matching(names: Iterable[str], pattern: str | None) -> list[str]:
    """Names matching a shell-style wildcard pattern (`*rat*`), sorted."""
    import fnmatch

    names = sorted(names)
    if not pattern:
        return names
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]
