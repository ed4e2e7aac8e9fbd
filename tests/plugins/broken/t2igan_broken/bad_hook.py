"""A hook implementation whose arguments do not match the hook specification."""

from t2igan.hookspecs import hookimpl


@hookimpl
def t2igan_register_models(register, device):
    raise AssertionError("pluggy must refuse this hook before it is ever called")
