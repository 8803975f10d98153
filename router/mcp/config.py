"""The gateway's configuration file (``INFERFLUX_MCP_SERVERS_FILE``, YAML).

    servers:
      - name: calc                      # tools appear as calc.<tool>
        url: http://calc.tools:8080/mcp
        headers: {x-api-key: ...}       # sent to that server only; optional
    allow:                              # per tenant: tool names, or <server>.* for all of one server
      alpha: [calc.add]
      "*": [calc.*]                     # every tenant, and every caller when auth is off

A tenant absent from ``allow`` (and no ``"*"``) sees no tools. Credentials for upstream servers
come from this file (a mounted Secret), not from the policy store: docs/realtime.md says so.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SEPARATOR = "."
ANYONE = "*"


class UpstreamServer(BaseModel):
    """One MCP server behind the gateway (streamable HTTP)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)


class GatewayConfig(BaseModel):
    """The servers, and which prefixed tools each tenant may see and call."""

    model_config = ConfigDict(extra="forbid")
    servers: list[UpstreamServer] = Field(min_length=1)
    allow: dict[str, list[str]] = Field(default_factory=dict)

    def server(self, name: str) -> UpstreamServer | None:
        """The server called ``name``."""
        return next((server for server in self.servers if server.name == name), None)

    def allows(self, tenant: str | None, tool: str) -> bool:
        """True when ``tenant`` (None: auth off) may see and call the prefixed ``tool``."""
        patterns = [*self.allow.get(ANYONE, ()), *(self.allow.get(tenant, ()) if tenant else ())]
        server = tool.split(SEPARATOR, 1)[0]
        return any(pattern in (tool, f"{server}{SEPARATOR}*") for pattern in patterns)


class ConfigError(ValueError):
    """The gateway's file is unreadable or invalid; the message is one line."""


def load(path: str) -> GatewayConfig:
    """The configuration in ``path``; `ConfigError` naming the problem."""
    try:
        document = yaml.safe_load(Path(path).read_text())
        return GatewayConfig.model_validate(document)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError:
        raise ConfigError(f"{path} is not valid YAML") from None
    except ValidationError as error:
        first = error.errors(include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
