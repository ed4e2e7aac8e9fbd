"""Fails at import, as a plugin with a missing dependency does."""

import t2igan_dependency_that_is_not_installed  # noqa: F401
