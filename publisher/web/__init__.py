"""The web server behind ``publish serve``: the web edition, subscribe, confirm,
unsubscribe, the preference centre.

``create_app(config)`` returns one ASGI application. GET and HEAD of anything but
the routes below are answered straight from ``static.FileCache`` (bytes and headers
prepared in advance), without Starlette's routing; everything else goes to a small
Starlette application (``views``):

- ``POST /subscribe``: ``email`` and ``newsletter`` fields; double opt-in; the same
  answer whatever the address's state.
- ``GET /confirm/<token>`` and ``GET /unsubscribe/<token>``: a page with a button;
  GET and HEAD never change anything (mail scanners fetch every link).
- ``POST /confirm/<token>``: activates; ``POST /unsubscribe/<token>``: RFC 8058
  one-click unsubscribe from the newsletter the token names (no cookie, Origin or CSRF
  token needed; 200, never a redirect).
- ``GET /preferences/<token>``: every newsletter with the reader's choices;
  ``POST /preferences/<token>`` saves them (``publisher.web.forms``).
- ``GET /healthz``: 503 while the store does not answer or this node's outputs are missing or
  older than the store's content (``publisher.web.outputs`` keeps them current).
- ``POST /webhooks/<provider>``: ESP bounce, complaint and delivery reports (``webhooks``).

Starlette and uvicorn are used only in this package.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import ClientDisconnect

from publisher.config import Config
from publisher.errors import ConfigError, PublisherError
from publisher.links import HEALTH, SUBSCRIBE, TOKEN_ROUTES, WEBHOOKS
from publisher.web.static import CachedFile, FileCache, content_type, respond

log = logging.getLogger("publisher.web")

DYNAMIC_PATHS = ("/" + SUBSCRIBE, "/" + HEALTH)
DYNAMIC_PREFIXES = tuple("/" + route for route in (*TOKEN_ROUTES, WEBHOOKS))


class PublisherApp:
    """The ASGI entry point: static fast path first, then the Starlette views."""

    def __init__(self, config: Config) -> None:
        from publisher.web.outputs import Outputs
        from publisher.web.views import build

        self.config = config
        self.files = FileCache(config.output.dir)
        self.views = build(config, Outputs(config, self.files))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            if path not in DYNAMIC_PATHS and not path.startswith(DYNAMIC_PREFIXES):
                found = self.files.get(path)
                if isinstance(found, CachedFile):
                    await respond(found, scope, send)
                    return
                if isinstance(found, str):
                    await _redirect(found, send)
                    return
                if found is not None:  # too large to keep in memory: streamed
                    from starlette.responses import FileResponse

                    ctype = content_type(found.name)
                    await FileResponse(found, media_type=ctype)(scope, receive, send)
                    return
        elif scope["type"] == "http" and scope["path"] not in DYNAMIC_PATHS:
            if not scope["path"].startswith(DYNAMIC_PREFIXES) and self.files.get(scope["path"]) is not None:
                await _answer(405, [(b"allow", b"GET, HEAD")], send)
                return
        try:
            await self.views(scope, receive, send)  # routes, 404 pages and the lifespan
        except ClientDisconnect:  # the client went away mid-request: nothing to answer
            log.info(
                "%s %s: the client closed the connection before the request was complete",
                scope.get("method", ""),
                scope.get("path", ""),
            )


async def _redirect(location: str, send: Any) -> None:
    await _answer(301, [(b"location", location.encode("utf-8"))], send)


async def _answer(status: int, headers: list[tuple[bytes, bytes]], send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [*headers, (b"content-length", b"0")]}
    )
    await send({"type": "http.response.body", "body": b""})


def create_app(config: Config) -> PublisherApp:
    return PublisherApp(config)


def serve(
    config: Config, host: str | None = None, port: int | None = None, *, access_log: bool = True
) -> None:
    """Run the server until SIGINT/SIGTERM (uvicorn, one process). The socket is bound
    first, so a busy or forbidden address is a one-line error, not a traceback."""
    import socket

    import uvicorn

    from publisher.web.protocol import Limits, guarded

    host = host or config.server.host
    port = port if port is not None else config.server.port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except (OSError, OverflowError) as exc:
        raise PublisherError(
            f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    limits = config.server
    trusted = _trusted_proxies(config)
    _more_file_descriptors(limits.max_connections)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=host,
            port=port,
            # X-Forwarded-For only from the proxies the config names (none: ignored)
            proxy_headers=bool(trusted),
            forwarded_allow_ips=trusted or None,
            http=guarded(Limits(limits.read_timeout, limits.max_connections)),
            h11_max_incomplete_event_size=limits.max_header_bytes,
            headers=[("strict-transport-security", f"max-age={limits.hsts}")] if limits.hsts else None,
            server_header=False,
            access_log=access_log,
            log_level="info",
            log_config=None,  # keep the caller's logging (timestamps or JSON, see publisher.logs)
        )
    )
    from publisher.web.views import RedactTokens

    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
    shown = f"[{host}]" if ":" in host else host
    # uvicorn says this itself only when it binds the socket; keep the familiar line.
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown, port
    )
    server.run(sockets=[sock])


def _trusted_proxies(config: Config) -> list[str]:
    """``[server] trusted_proxies`` checked: each an IP address or network."""
    import ipaddress

    for entry in config.server.trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(
                config.path, "server.trusted_proxies", f"{entry!r} is not an IP address or network"
            ) from None
    return list(config.server.trusted_proxies)


def _more_file_descriptors(connections: int) -> None:
    """Room for ``connections`` sockets plus the files and database the server uses:
    raise the soft limit of open files towards the hard one (never lower it)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


__all__ = ["create_app", "serve", "PublisherApp"]
