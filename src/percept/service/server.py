"""Running the artwork service: :func:`serve` (what ``percept serve`` calls)."""

from __future__ import annotations

import sys
from typing import Any

from ..errors import PerceptError
from .config import ServiceConfig, redact_url, service_packages


def serve_config(**settings: Any) -> ServiceConfig:
    """The :class:`ServiceConfig` that :func:`serve` runs with these settings: defaults from the environment
    (:meth:`ServiceConfig.from_env`); on a host reachable from other machines only with ``public=True``, and then
    with its limits capped (:meth:`ServiceConfig.for_public`)."""
    config = ServiceConfig.from_env(**settings)
    if not config.exposed:
        return config
    if not config.public:
        raise PerceptError(f"--host {config.host} would expose the service beyond this machine; add --public "
                           "(safe limits) or keep --host 127.0.0.1")
    return config.for_public()


def serve(**settings: Any) -> None:
    """Run the artwork service until interrupted: web app, job store, and embedded workers or the broker's
    collector, in this process.

    Args:
        **settings: the fields of :class:`ServiceConfig` (``host``, ``port``, ``data_dir``, ``workers``,
            ``broker``, limits...; see :func:`serve_config`).

    Raises:
        PerceptError: a bad setting, a host beyond loopback without ``public``, a data dir in use, an
            unreachable broker, or a package of the ``service`` extra missing.
    """
    with service_packages("the service"):
        import uvicorn

        from .app import create_app
        from .core import Service
    config = serve_config(**settings)
    if config.exposed:
        print(f"percept: warning: serving on {config.host}, reachable from other machines: limits capped at their "
              "defaults, webhooks to private addresses refused, listing every job off. Put it behind an HTTPS "
              "proxy; anyone with a job's link can see that job.", file=sys.stderr)
        if config.host_names == ServiceConfig(host="127.0.0.1").host_names:
            print("percept: warning: requests are answered only for localhost, 127.0.0.1 and [::1]; give the name "
                  "people use with --public-url or --allowed-hosts", file=sys.stderr)
    service = Service(config)
    service.start()
    try:
        how = f"jobs via {redact_url(config.broker)}" if config.broker else f"{config.workers} embedded worker(s)"
        print(f"percept: serving http://{config.host}:{config.port}/ (data: {config.data_dir}; {how})")
        uvicorn.run(create_app(service, manage=False), host=config.host, port=config.port, log_level="info")
    finally:
        service.stop()
