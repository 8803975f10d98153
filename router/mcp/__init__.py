"""The MCP gateway (off by default): one MCP endpoint over the tools of configured MCP servers."""
