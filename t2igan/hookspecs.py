"""What a plugin may add to t2igan: one hook per kind of component, plus weight resolution.

A plugin is a module (registered under the entry-point group `t2igan`) with functions decorated
by `t2igan.hookimpl`. Each `register_*` hook receives a `register` callback; call it once per spec.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("t2igan")
hookimpl = pluggy.HookimplMarker("t2igan")


@hookspec
def t2igan_register_models(register):
    """Register text-to-image GANs: call `register(ModelSpec(...))` for each."""


@hookspec
def t2igan_register_fusion_blocks(register):
    """Register text-fusion blocks for generators: call `register(FusionBlockSpec(...))`."""


@hookspec
def t2igan_register_text_encoders(register):
    """Register text encoders: call `register(TextEncoderSpec(...))`."""


@hookspec
def t2igan_register_datasets(register):
    """Register datasets: call `register(DatasetSpec(...))`."""


@hookspec
def t2igan_register_metrics(register):
    """Register metrics: call `register(MetricSpec(...))`."""


@hookspec(firstresult=True)
def t2igan_resolve_weights(kind, name, tag):
    """Return a local path to the weights `kind`/`name`/`tag` (e.g. "text_encoder", "damsm", "cub"),
    or None to let the next plugin (then the built-in resolver) try."""
