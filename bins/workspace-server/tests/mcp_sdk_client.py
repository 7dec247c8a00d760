"""The official MCP Python SDK (PyPI `mcp`) as a client of workspace-server's MCP endpoint,
over Streamable HTTP with whatever protocol revision the SDK negotiates.

Usage: mcp_sdk_client.py <endpoint URL> <workspace token> <a namespace it cannot read>
Prints one JSON report on stdout; the Rust test (tests/it/mcp.rs) asserts on it.
"""

import asyncio
import json
import sys

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def main(url: str, token: str, foreign: str) -> dict:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    report: dict = {}
    async with http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            report["protocol_version"] = client.protocol_version
            tools = await client.list_tools()
            report["tools"] = sorted(t.name for t in tools.tools)

            committed = await client.call_tool("commit_memory_v2", {"content": "the deploy key rotates on Fridays"})
            assert not committed.is_error, text_of(committed)
            memory_id = json.loads(text_of(committed))["id"]
            found = json.loads(text_of(await client.call_tool("search_memory", {"query": "rotates"})))
            report["committed_found"] = any(m["id"] == memory_id for m in found["memories"])

            forgot = await client.call_tool("forget_memory", {"memory_id": memory_id})
            report["forgotten"] = json.loads(text_of(forgot)).get("forgotten") is True
            again = json.loads(text_of(await client.call_tool("search_memory", {"query": "rotates"})))
            report["found_after_forget"] = len(again["memories"])

            legacy = await client.call_tool("commit_memory", {"content": "legacy: staging is on port 8443", "scope": "LOCAL"})
            assert not legacy.is_error, text_of(legacy)
            recalled = await client.call_tool("recall_memory", {"query": "staging", "scope": "LOCAL"})
            report["legacy_recalled"] = "8443" in text_of(recalled)

            refused = await client.call_tool("commit_memory", {"content": "x", "scope": "GLOBAL"})
            report["global"] = {"is_error": bool(refused.is_error), "text": text_of(refused)}

            denied = await client.call_tool("search_memory", {"namespaces": [foreign]})
            report["foreign"] = {"is_error": bool(denied.is_error), "text": text_of(denied)}
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
