"""The MCP gateway: the official ``mcp`` client lists and calls an upstream server's tools through
the router; tenants see only their allow-list; with the flag off, ``/mcp`` is a 404.

The upstream is a real MCP server built with the SDK's `MCPServer`, served by uvicorn.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from mcp.shared._httpx_utils import create_mcp_http_client

from inferflux.crds.policy import PolicySnapshot, TenantPolicy
from inferflux.crds.tenant import Scope
from inferflux.router.app import mcp_gateway
from inferflux.router.identity import api_keys
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.settings import Settings, SettingsError


def calculator() -> MCPServer:
    server = MCPServer("calc")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    return server


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    """The calculator MCP server's URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(calculator().streamable_http_app(), lifespan="on", log_level="warning")
    )
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no startup event
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}/mcp"
    server.should_exit = True
    await task


def servers_file(tmp_path: Path, url: str, allow: dict[str, list[str]]) -> str:
    path = tmp_path / "mcp.yaml"
    path.write_text(yaml.safe_dump({"servers": [{"name": "calc", "url": url}], "allow": allow}))
    return str(path)


async def test_the_official_client_lists_and_calls_tools_through_the_gateway(
    make_router, upstream: str, tmp_path: Path
) -> None:
    file = servers_file(tmp_path, upstream, {"*": ["calc.*"]})
    harness = await make_router({}, mcp_gateway=True, mcp_servers_file=file)
    async with Client(harness.url + "/mcp") as client:
        tools = await client.list_tools()
        assert sorted(tool.name for tool in tools.tools) == ["calc.add", "calc.shout"]
        result = await client.call_tool("calc.add", {"a": 2, "b": 40})
        assert not result.is_error
        assert result.content[0].text == "42"  # type: ignore[union-attr]
        unknown = await client.call_tool("other.add", {"a": 1, "b": 1})
        assert unknown.is_error


async def test_each_tenant_sees_and_calls_only_its_allow_list(
    make_router, upstream: str, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"s" * 48)
    hasher = api_keys.load_hasher(str(secret))
    holder = PolicyHolder()
    every = [Scope.INFERENCE]
    holder.set_snapshot(
        PolicySnapshot(
            tenants={
                "alpha": TenantPolicy(name="alpha", scopes=every),
                "beta": TenantPolicy(name="beta", scopes=every),
            }
        )
    )
    headers = {}
    for tenant in ("alpha", "beta"):
        key, record = api_keys.generate(hasher, tenant)
        holder.put_key(record.id, record)
        headers[tenant] = {"authorization": f"Bearer {key}"}
    file = servers_file(tmp_path, upstream, {"alpha": ["calc.add"]})
    harness = await make_router(
        {}, policy=holder, auth=True, auth_secret_file=str(secret), mcp_gateway=True, mcp_servers_file=file
    )

    async def as_tenant(tenant: str) -> tuple[list[str], Any]:
        async with (
            create_mcp_http_client(headers=headers[tenant]) as http,
            Client(streamable_http_client(harness.url + "/mcp", http_client=http)) as client,
        ):
            names = [tool.name for tool in (await client.list_tools()).tools]
            return names, await client.call_tool("calc.add", {"a": 1, "b": 2})

    names, result = await as_tenant("alpha")
    assert names == ["calc.add"]
    assert result.content[0].text == "3"
    names, result = await as_tenant("beta")
    assert names == []
    assert result.is_error
    async with harness.post("/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}) as response:
        assert response.status == 401  # no credential: the router's identity stage refuses


async def test_with_the_flag_off_the_path_does_not_exist(make_router) -> None:
    harness = await make_router({})
    async with harness.post("/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}) as response:
        assert response.status == 404


def test_the_flag_needs_a_valid_servers_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="INFERFLUX_MCP_SERVERS_FILE must name"):
        mcp_gateway(Settings(mcp_gateway=True))
    bad = tmp_path / "bad.yaml"
    bad.write_text("servers: [{name: 'x y', url: 'ftp://nope'}]")
    with pytest.raises(SettingsError, match=r"servers\.0\.name"):
        mcp_gateway(Settings(mcp_gateway=True, mcp_servers_file=str(bad)))
    assert mcp_gateway(Settings()) is None
