"""Peers written with the official A2A Python SDK (PyPI `a2a-sdk`), for workspace-server's tests.

    python a2a_sdk_peer.py serve PORT [LOG [GATE]]
        An echo agent: answers every message with "sdk echo: <text>". It speaks A2A v1.0
        JSON-RPC (`SendMessage`) and, through the SDK's compatibility layer, v0.3
        (`message/send`), at POST / on 127.0.0.1:PORT. With LOG, it appends each received
        message's messageId to that file, one per line, as the message arrives. With GATE (a
        file path), it holds every answer while that file exists: a test can keep messages in
        flight for as long as it needs.

    python a2a_sdk_peer.py client URL TOKEN TEXT
        The SDK's own JSON-RPC client, pointed at URL (the platform's
        /workspaces/:id/a2a) with a bearer token: sends TEXT, prints the reply's text, and
        exits 0, or 1 with the reason.

Nothing here is the platform's: it stands in for agents and clients written by others.
"""

import asyncio
import os
import sys

import httpx
import uvicorn
from a2a.client.client import ClientConfig
from a2a.client.client_factory import ClientFactory
from a2a.helpers.proto_helpers import get_message_text, new_text_message
from a2a.server.agent_execution.agent_executor import AgentExecutor
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks.inmemory_task_store import InMemoryTaskStore
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Role,
    SendMessageRequest,
)
from starlette.applications import Starlette


class Echo(AgentExecutor):
    def __init__(self, log=None, gate=None):
        self.log = log
        self.gate = gate

    async def execute(self, context, event_queue):
        text = get_message_text(context.message) if context.message else ""
        if self.log is not None and context.message:
            # One line per message received, by its messageId, for a test to count.
            self.log.write(context.message.message_id + "\n")
            self.log.flush()
        while self.gate is not None and os.path.exists(self.gate):
            await asyncio.sleep(0.05)
        await event_queue.enqueue_event(new_text_message(f"sdk echo: {text}"))

    async def cancel(self, context, event_queue):
        raise RuntimeError("nothing to cancel")


def card(url):
    return AgentCard(
        name="a2a-sdk echo",
        description="an echo agent built with the official A2A Python SDK",
        version="1.0.0",
        supported_interfaces=[AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")],
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="echo", description="repeats the message", tags=["test"])],
    )


def serve(port, log_path=None, gate=None):
    url = f"http://127.0.0.1:{port}/"
    log = open(log_path, "a", encoding="utf-8") if log_path else None
    handler = DefaultRequestHandler(agent_executor=Echo(log, gate), task_store=InMemoryTaskStore(), agent_card=card(url))
    routes = create_jsonrpc_routes(handler, "/", enable_v0_3_compat=True) + create_agent_card_routes(card(url))
    uvicorn.run(Starlette(routes=routes), host="127.0.0.1", port=port, log_level="warning")


async def client(url, token, text):
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        factory = ClientFactory(ClientConfig(streaming=False, httpx_client=http))
        sdk = factory.create(card(url))
        request = SendMessageRequest(message=new_text_message(text, role=Role.ROLE_USER))
        async for response in sdk.send_message(request):
            if response.HasField("message"):
                print(get_message_text(response.message))
                return 0
            if response.HasField("task"):
                print(response.task)
                return 0
        print("no response", file=sys.stderr)
        return 1


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), *sys.argv[3:5])
    elif sys.argv[1] == "client":
        sys.exit(asyncio.run(client(sys.argv[2], sys.argv[3], sys.argv[4])))
    else:
        sys.exit(f"unknown mode {sys.argv[1]!r}: serve PORT | client URL TOKEN TEXT")
