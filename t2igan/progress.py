"""Progress bars are progress messages: they show where the `t2igan` logger's INFO messages show.

`t2igan -q` sets that logger to WARNING, and every bar is off. A logger nobody has set (a notebook's, a
script's) keeps the bars its caller asked for with `progress=True`;
`logging.getLogger("t2igan").setLevel(logging.WARNING)` turns them off there too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

LOGGER = "t2igan"


def show_progress(requested: bool = True) -> bool:
    """Whether a bar the caller `requested` is shown: not when the `t2igan` logger is set above INFO."""
    logger = logging.getLogger(LOGGER)
    return requested and (logger.level == logging.NOTSET or logger.isEnabledFor(logging.INFO))


def progress_bar(iterable: Iterable[Any] | None = None, *, show: bool = True, **options: Any) -> Any:
    """A tqdm bar (`options` as tqdm takes them), disabled unless `show_progress(show)`."""
    from tqdm.auto import tqdm  # imported on first use: `import t2igan` stays light

    return tqdm(iterable, disable=not show_progress(show), **options)
