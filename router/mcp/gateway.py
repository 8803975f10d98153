"""The MCP gateway: a streamable-HTTP MCP server whose tools are those of upstream MCP servers.

Built on the official ``mcp`` SDK: a low-level `Server` answers ``tools/list`` by asking each
configured server for its tools (names prefixed ``<server>.``, filtered by the caller's tenant
allow-list) and ``tools/call`` by calling the tool on its server. It runs stateless (each HTTP
request stands alone, so any router replica can answer) and sits behind the router's identity
stage: the caller's principal comes from the ASGI scope the SDK hands to the handlers. The SDK's
DNS-rebinding check is off because the router authenticates every request itself.

An upstream server that cannot be reached drops out of ``tools/list`` (logged) instead of failing
the whole list; a call to it is a tool error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared._httpx_utils import create_mcp_http_client

from inferflux.router.asgi import Receive, Scope, Send
from inferflux.router.identity.authenticate import principal_of
from inferflux.router.mcp.config import SEPARATOR, GatewayConfig, UpstreamServer

log = logging.getLogger("inferflux.router.mcp")
PATH = "/mcp"


def tenant_of(ctx: ServerRequestContext[Any]) -> str | None:
    """The caller's tenant, from the router's principal in the request's ASGI scope."""
    request = ctx.request
    scope = getattr(request, "scope", None)
    if not isinstance(scope, dict):
        return None
    principal = principal_of(scope)
    return principal.tenant if principal is not None else None


@contextlib.asynccontextmanager
async def connect(server: UpstreamServer) -> AsyncIterator[Client]:
    """An initialised client session to ``server``, with its configured headers."""
    async with (
        create_mcp_http_client(headers=server.headers or None) as http,
        Client(streamable_http_client(server.url, http_client=http)) as client,
    ):
        yield client


class Gateway:
    """The gateway's MCP server and its ASGI app."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.server: Server[Any] = Server(
            "inferflux-mcp-gateway", on_list_tools=self.list_tools, on_call_tool=self.call_tool
        )
        self.app = self.server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._running: contextlib.AsyncExitStack | None = None

    async def list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        """Every upstream tool the caller's tenant may use, with its server's prefix."""
        tenant = tenant_of(ctx)
        tools: list[types.Tool] = []
        for server in self.config.servers:
            try:
                async with connect(server) as client:
                    listed = await client.list_tools()
            except Exception as error:  # one server down must not hide the others' tools
                log.warning("MCP server %s unreachable: %s", server.name, type(error).__name__)
                continue
            for tool in listed.tools:
                name = f"{server.name}{SEPARATOR}{tool.name}"
                if self.config.allows(tenant, name):
                    tools.append(tool.model_copy(update={"name": name}))
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        """Call the prefixed tool on its server, if the caller's tenant may."""
        name = params.name
        server = self.config.server(name.split(SEPARATOR, 1)[0]) if SEPARATOR in name else None
        if server is None or not self.config.allows(tenant_of(ctx), name):
            return _tool_error(f"unknown tool {name[:100]}")
        try:
            async with connect(server) as client:
                return await client.call_tool(name.split(SEPARATOR, 1)[1], params.arguments or {})
        except Exception as error:
            log.warning("MCP server %s failed a call: %s", server.name, type(error).__name__)
            return _tool_error(f"MCP server {server.name} is unavailable")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The router's handler for ``/mcp`` (POST, GET and DELETE)."""
        await self.app(scope, receive, send)

    async def start(self) -> None:
        """Start the SDK's session manager (its task group lives until `stop`)."""
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(self.server.session_manager.run())
        self._running = stack

    async def stop(self) -> None:
        """Stop the session manager."""
        if self._running is not None:
            await self._running.aclose()
            self._running = None


def _tool_error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)
