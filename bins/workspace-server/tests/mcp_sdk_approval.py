"""The official MCP Python SDK (PyPI `mcp`) as an agent asking for approval through
workspace-server's MCP tool `request_approval`, which blocks until the request ends.

Usage: mcp_sdk_approval.py <endpoint URL> <workspace token>
First asks with a long wait (the Rust test decides it through the parent's token), then
asks with a 2 s wait that nobody answers. Prints one JSON report on stdout; the Rust test
(tests/it/approvals.rs) asserts on it.
"""

import asyncio
import json
import sys

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def main(url: str, token: str) -> dict:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    report: dict = {}
    async with http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            tools = await client.list_tools()
            report["offered"] = any(t.name == "request_approval" for t in tools.tools)
            decided = await client.call_tool(
                "request_approval",
                {"action": "deploy", "reason": "release 1.2", "context": {"env": "prod"}, "timeout_seconds": 120},
            )
            report["decided"] = {"is_error": bool(decided.is_error), "result": json.loads(text_of(decided))}
            expired = await client.call_tool("request_approval", {"action": "deploy", "timeout_seconds": 2})
            report["expired"] = {"is_error": bool(expired.is_error), "result": json.loads(text_of(expired))}
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:3]))))
