"""t2igan: a plugin-based model zoo and benchmark harness for text-to-image GANs."""

__version__ = "0.1.0"
