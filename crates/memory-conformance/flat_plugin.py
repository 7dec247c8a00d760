#!/usr/bin/env python3
"""A flat, in-memory Memory Plugin v1 (test only): no capabilities, no Postgres, stdlib only.

It exists to prove the contract can be implemented in an afternoon, in any language, and to
give the conformance kit something to pass and (with --ignore-id) something to fail.

    python3 flat_plugin.py --port 9200 [--ignore-id]
"""
import argparse, json, re, threading, uuid
from datetime import datetime, timezone
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

NAME = re.compile(r"^[a-z]+:[A-Za-z0-9_:.\-]+$")
NS_KINDS, KINDS, SOURCES = {"workspace", "team", "org", "custom"}, {"fact", "summary", "checkpoint"}, {"agent", "runtime", "user"}
lock, namespaces, memories = threading.Lock(), {}, {}  # name -> ns; id -> memory (insertion order = age)


class Refuse(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def need(cond, status, code, message):
    if not cond:
        raise Refuse(status, code, message)


def now():
    return datetime.now(timezone.utc).isoformat()


def valid_name(name):
    need(isinstance(name, str) and len(name) <= 256 and NAME.match(name), 400, "bad_request", f"bad namespace name {name!r}")


class Handler(BaseHTTPRequestHandler):
    ignore_id = False

    def log_message(self, *args):
        pass

    def body(self):
        length = int(self.headers.get("content-length") or 0)
        try:
            data = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            raise Refuse(400, "bad_request", "invalid JSON")
        need(isinstance(data, dict), 400, "bad_request", "the body must be a JSON object")
        return data

    def answer(self, status, payload=None):
        raw = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def route(self, method):
        parts = self.path.split("?")[0].strip("/").split("/")
        try:
            with lock:
                if parts == ["v1", "health"] and method == "GET":
                    return self.answer(200, {"status": "ok", "version": "1.0.0", "capabilities": []})
                if len(parts) == 3 and parts[:2] == ["v1", "namespaces"]:
                    return self.namespace(method, parts[2])
                if len(parts) == 4 and parts[:2] == ["v1", "namespaces"] and parts[3] == "memories" and method == "POST":
                    return self.commit(parts[2])
                if parts == ["v1", "search"] and method == "POST":
                    return self.search()
                if len(parts) == 3 and parts[:2] == ["v1", "memories"] and method == "DELETE":
                    return self.forget(parts[2])
                raise Refuse(404, "not_found", f"no route for {method} {self.path}")
        except Refuse as r:
            self.answer(r.status, {"code": r.code, "message": r.message})

    def namespace(self, method, name):
        valid_name(name)
        if method == "PUT":
            b = self.body()
            need(b.get("kind") in NS_KINDS, 400, "bad_request", "kind must be workspace, team, org or custom")
            old = namespaces.get(name, {})
            namespaces[name] = {"name": name, "kind": b["kind"], "expires_at": b.get("expires_at"),
                                "metadata": b.get("metadata"), "created_at": old.get("created_at", now())}
            return self.answer(200, namespaces[name])
        need(name in namespaces, 404, "not_found", f"namespace {name} does not exist")
        if method == "PATCH":
            b = self.body()
            need("expires_at" in b or "metadata" in b, 400, "bad_request", "empty patch")
            namespaces[name].update({k: b[k] for k in ("expires_at", "metadata") if k in b})
            return self.answer(200, namespaces[name])
        need(method == "DELETE", 405, "bad_request", f"{method} not allowed")
        del namespaces[name]
        for mid in [m for m, v in memories.items() if v["namespace"] == name]:
            del memories[mid]
        return self.answer(204)

    def commit(self, name):
        valid_name(name)
        b = self.body()
        need(isinstance(b.get("content"), str) and b["content"].strip(), 400, "bad_request", "content must not be blank")
        need(b.get("kind") in KINDS and b.get("source") in SOURCES, 400, "bad_request", "bad kind or source")
        need(name in namespaces, 404, "not_found", f"namespace {name} does not exist")
        mid = b.get("id") if b.get("id") and not self.ignore_id else str(uuid.uuid4())
        old = memories.pop(mid, {})
        memories[mid] = {"id": mid, "namespace": name, "content": b["content"], "kind": b["kind"], "source": b["source"],
                         "expires_at": b.get("expires_at"), "propagation": b.get("propagation"),
                         "pin": bool(b.get("pin")), "created_at": old.get("created_at", now()), "score": None}
        return self.answer(201, {"id": mid, "namespace": name})

    def search(self):
        b = self.body()
        names = b.get("namespaces")
        need(isinstance(names, list) and names, 400, "bad_request", "namespaces must not be empty")
        for n in names:
            valid_name(n)
        limit = b.get("limit") or 20
        need(isinstance(limit, int) and 0 < limit <= 100, 400, "bad_request", "limit must be within 1..100")
        kinds, query = b.get("kinds") or list(KINDS), (b.get("query") or "").strip().lower()
        hits = [m for m in reversed(memories.values())
                if m["namespace"] in names and m["kind"] in kinds and query in m["content"].lower()]
        return self.answer(200, {"memories": hits[:limit]})

    def forget(self, mid):
        b = self.body()
        valid_name(b.get("requested_by_namespace"))
        need(memories.get(mid, {}).get("namespace") == b["requested_by_namespace"], 404, "not_found", "memory not found in namespace")
        del memories[mid]
        return self.answer(204)

    def do_GET(self): self.route("GET")
    def do_PUT(self): self.route("PUT")
    def do_PATCH(self): self.route("PATCH")
    def do_POST(self): self.route("POST")
    def do_DELETE(self): self.route("DELETE")


if __name__ == "__main__":
    args = argparse.ArgumentParser()
    args.add_argument("--port", type=int, default=9200)
    args.add_argument("--ignore-id", action="store_true", help="deliberately break id idempotency")
    opts = args.parse_args()
    Handler.ignore_id = opts.ignore_id
    ThreadingHTTPServer(("127.0.0.1", opts.port), Handler).serve_forever()
