"""The artwork service: upload a photo, choose a style, get the painting (``percept serve``, ``percept worker``).

Names are imported lazily (PEP 562): the web layer and the CLI import only what they use.
"""

from ..lazy import exports

_EXPORTS = {"Service": "core", "QueueFull": "store", "ServiceConfig": "config", "WorkerConfig": "config",
            "Job": "store", "JobStore": "store", "Style": "styles", "list_styles": "styles", "get_style": "styles",
            "serve": "server", "run_worker": "broker_worker"}
__all__ = sorted(_EXPORTS)


__getattr__ = exports(__name__, _EXPORTS)
