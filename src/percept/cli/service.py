"""``percept serve`` and ``worker``: the artwork web service and its scale-out workers.

Their options are generated from :class:`percept.service.config.ServiceConfig` and
:class:`~percept.service.config.WorkerConfig`; the handlers call :func:`percept.service.serve` and
:func:`percept.service.run_worker`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging

from .commands import HELP
from .options import add_settings, settings_from_args

LOG_FORMAT = "percept: %(name)s: %(message)s"


def _cmd_serve(args: argparse.Namespace) -> int:
    from ..service.config import ServiceConfig
    from ..service.server import serve

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    serve(**settings_from_args(args, ServiceConfig))
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from ..service.broker_worker import run_worker
    from ..service.config import WorkerConfig

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    run_worker(**settings_from_args(args, WorkerConfig))
    return 0


def register(sub) -> None:
    from ..service.config import ServiceConfig, WorkerConfig

    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "serve", help=HELP["serve"],
        formatter_class=fmt, description="The artwork service: a web page and a JSON API (docs at /docs). Jobs "
        "live in a SQLite file and images on disk under --data-dir, so they survive restarts. Without --broker "
        "jobs run on --workers threads in this process; with --broker they run on `percept worker` processes.\n"
        "Every option is also a keyword argument of percept.service.serve.",
        epilog="examples:\n  percept serve                                  # http://127.0.0.1:8000/\n"
        "  percept serve --workers 2 --device cuda\n"
        "  percept serve --broker redis://localhost:6379/0 --workers 0   # then: percept worker --broker ...\n"
        "  PERCEPT_SMTP_URL=smtp://user:pass@mail.example.org:587 percept serve --mail-from art@example.org\n"
        "  percept serve --host 0.0.0.0 --public --public-url https://art.example.org",
    )
    groups = {f.name: f.metadata.get("group") for f in dataclasses.fields(ServiceConfig)}
    top = [name for name, group in groups.items() if group is None]
    add_settings(p, ServiceConfig, only=top)
    for title in ("limits", "notifications"):
        add_settings(p.add_argument_group(title), ServiceConfig,
                     only=[name for name, group in groups.items() if group == title])
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("worker", help=HELP["worker"],
                       formatter_class=fmt, description="Run jobs of `percept serve --broker URL` on this machine.\n"
                       "A worker needs only the Redis URL: jobs bring their inputs and take their results back\n"
                       "through Redis (no shared disk, no data dir). Start one per GPU, on any machine that\n"
                       "reaches Redis; never expose Redis publicly (password, private network, rediss:// TLS).",
                       epilog="examples:\n  export PERCEPT_BROKER=redis://:PASSWORD@10.0.0.5:6379/0\n"
                       "  percept worker --device cuda\n  percept worker --broker redis://localhost:6379/0 --burst")
    add_settings(p, WorkerConfig)
    p.set_defaults(func=_cmd_worker)
