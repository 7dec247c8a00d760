// The operator console's script (served from the binary, allowed by the CSP as 'self'; no
// inline script anywhere). It never holds a token: it reaches the JSON API through
// /console/api/…, where the HttpOnly session cookie rides along and every change carries the
// session's CSRF token (from the page's <meta name="csrf-token">). Pages work without it,
// read-only; with it the fleet updates live from the event stream, bulk actions run, and the
// workspace page's sections fill in.
"use strict";
(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  document.documentElement.dataset.scripted = "true";

  /** One API call through the console's door; a lost session goes back to sign-in. */
  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch("/console/api" + path, init);
    if (resp.status === 401) {
      location.assign("/console/sign-in");
      throw new Error("signed out");
    }
    const text = await resp.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = text;
    }
    return { ok: resp.ok, status: resp.status, data };
  }

  const errorOf = (r) => (r.data && r.data.error) || "HTTP " + r.status;

  /** An element with text (never HTML: every value is untrusted). */
  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function fill(list, items, render, empty) {
    list.replaceChildren(...(items.length ? items.map(render) : [el("li", empty || "none")]));
  }

  const wsBase = () => (location.protocol === "https:" ? "wss://" : "ws://") + location.host;

  /** Every event, as it happens; `null` after a reconnect (events may have been missed). */
  function liveEvents(onEvent) {
    let delay = 500;
    const state = $("#live-state");
    const connect = () => {
      const ws = new WebSocket(wsBase() + "/console/api/ws");
      ws.onopen = () => {
        delay = 500;
        if (state) state.textContent = "live";
        document.body.dataset.live = "open";
      };
      ws.onmessage = (m) => {
        try {
          onEvent(JSON.parse(m.data));
        } catch (e) {
          console.warn("console: bad event", e);
        }
      };
      ws.onclose = () => {
        if (state) state.textContent = "reconnecting…";
        document.body.dataset.live = "closed";
        setTimeout(() => {
          connect();
          onEvent(null);
        }, delay);
        delay = Math.min(delay * 2, 10000);
      };
    };
    connect();
  }

  function ageText(at) {
    const s = Math.max(0, Math.round(Date.now() / 1000 - Number(at)));
    if (s < 120) return s + " s ago";
    if (s < 7200) return Math.round(s / 60) + " min ago";
    return Math.round(s / 3600) + " h ago";
  }

  function ages(root) {
    $$("td.age[data-at]", root).forEach((td) => {
      td.textContent = ageText(td.dataset.at);
    });
  }

  /** A modal question; resolves true on Confirm. */
  function confirmDialog(text) {
    const d = $("#confirm");
    if (!d || typeof d.showModal !== "function") return Promise.resolve(window.confirm(text));
    $("#confirm-text").textContent = text;
    return new Promise((resolve) => {
      const done = (answer) => {
        $("#confirm-yes").onclick = null;
        $("#confirm-no").onclick = null;
        d.oncancel = null;
        if (d.open) d.close();
        resolve(answer);
      };
      $("#confirm-yes").onclick = () => done(true);
      $("#confirm-no").onclick = () => done(false);
      d.oncancel = () => done(false);
      d.showModal();
    });
  }

  const BULK = {
    restart: {
      call: (id) => api("POST", `/workspaces/${id}/restart`),
      says: (n, d) =>
        `Restart ${n} workspace(s)? Each is stopped and provisioned again. Their ${d} descendant(s) are not restarted; a workspace under a paused ancestor refuses.`,
    },
    pause: {
      call: (id) => api("POST", `/workspaces/${id}/pause`),
      says: (n, d) =>
        `Pause ${n} workspace(s)? Their ${d} descendant(s) are paused with them: workloads stop, volumes are kept.`,
    },
    resume: {
      call: (id) => api("POST", `/workspaces/${id}/resume`),
      says: (n, d) => `Resume ${n} workspace(s)? Their paused descendants (of ${d} below them) resume with them.`,
    },
    delete: {
      call: (id) => api("DELETE", `/workspaces/${id}?confirm=true`),
      says: (n, d) =>
        `Delete ${n} workspace(s) and their ${d} descendant(s)? Their workloads stop and their volumes are removed. This cannot be undone.`,
    },
  };

  function fleetPage() {
    const live = $("#live");
    if (!live) return;
    const picked = new Set();
    let timer = null;
    const syncBulk = () => {
      $$("input.pick", live).forEach((b) => {
        b.checked = picked.has(b.value);
      });
      $("#picked").textContent = picked.size + " selected";
      $$("button[data-bulk]").forEach((b) => {
        b.disabled = picked.size === 0;
      });
    };
    const refresh = async () => {
      timer = null;
      const resp = await fetch("/console/fleet/live" + location.search, { credentials: "same-origin" });
      if (resp.redirected || resp.status === 401) {
        location.assign("/console/sign-in");
        return;
      }
      if (!resp.ok) return;
      live.innerHTML = await resp.text();
      const present = new Set($$("input.pick", live).map((b) => b.value));
      for (const id of [...picked]) if (!present.has(id)) picked.delete(id);
      ages(live);
      syncBulk();
      live.dataset.refreshed = String(Date.now());
    };
    const schedule = (wait) => {
      if (timer === null) timer = setTimeout(refresh, wait);
    };
    liveEvents((ev) => {
      if (ev === null) return schedule(0);
      // Heartbeats come often and change only the ages and counts: batch them.
      schedule(ev.event === "WORKSPACE_HEARTBEAT" ? 2000 : 50);
    });
    setInterval(() => ages(live), 1000);
    ages(live);
    live.addEventListener("change", (e) => {
      if (!e.target.matches("input.pick")) return;
      if (e.target.checked) picked.add(e.target.value);
      else picked.delete(e.target.value);
      syncBulk();
    });
    $$("button[data-bulk]").forEach((button) =>
      button.addEventListener("click", async () => {
        const action = BULK[button.dataset.bulk];
        const ids = [...picked];
        const below = ids.reduce((n, id) => {
          const row = $(`tr[data-id="${id}"]`, live);
          return n + Number((row && row.dataset.descendants) || 0);
        }, 0);
        if (!(await confirmDialog(action.says(ids.length, below)))) return;
        const out = $("#bulk-result");
        out.textContent = button.textContent + "…";
        const failed = [];
        for (const id of ids) {
          const r = await action.call(id);
          if (!r.ok) {
            const row = $(`tr[data-id="${id}"]`, live);
            failed.push(`${row ? row.dataset.name : id}: ${errorOf(r)}`);
          }
        }
        out.textContent =
          `${button.textContent}: ${ids.length - failed.length} of ${ids.length} done` +
          (failed.length ? ". Refused: " + failed.join("; ") : "");
        picked.clear();
        schedule(0);
      }),
    );
    syncBulk();
  }

  /** The text of an A2A answer: a message, a task's status message, or its artifacts. */
  function answerText(result) {
    if (!result) return "";
    const parts =
      result.parts ||
      (result.message && result.message.parts) ||
      (result.status && result.status.message && result.status.message.parts) ||
      (result.artifacts || []).flatMap((a) => a.parts || []);
    return (parts || []).map((p) => p.text || "").join("");
  }

  function workspacePage() {
    const main = $("#workspace");
    if (!main) return;
    const id = main.dataset.id;
    const base = `/workspaces/${id}`;
    const when = (t) => (t ? new Date(t).toLocaleString() : "");

    const status = async () => {
      const r = await api("GET", base);
      if (!r.ok) return;
      main.dataset.status = r.data.status;
      $("#ws-status").textContent = r.data.status;
      let reason = $("#reason");
      if (r.data.last_sample_error) {
        if (!reason) {
          reason = el("p", null, { id: "reason", class: "error", role: "alert" });
          $("#ws-status").closest("dl").after(reason);
        }
        reason.replaceChildren(el("strong", "Reason: "), document.createTextNode(r.data.last_sample_error));
      } else if (reason) {
        reason.remove();
      }
    };

    $$("button[data-action]").forEach((b) =>
      b.addEventListener("click", async () => {
        const r = await api("POST", `${base}/${b.dataset.action}`);
        $("#action-result").textContent = r.ok ? `${b.textContent}: done` : `${b.textContent} refused: ${errorOf(r)}`;
        status();
      }),
    );

    // Chat, through the A2A proxy as the operator.
    const log = $("#chat-log");
    const say = (who, text) => log.append(el("li", `${who}: ${text}`, { "data-who": who }));
    $("#chat-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const input = $("#chat-text");
      const text = input.value.trim();
      if (!text) return;
      input.value = "";
      say("you", text);
      const messageId = crypto.randomUUID();
      const r = await api("POST", `${base}/a2a`, {
        jsonrpc: "2.0",
        id: messageId,
        method: "message/send",
        params: { message: { role: "user", messageId, parts: [{ kind: "text", text }] } },
      });
      if (!r.ok) say("error", errorOf(r));
      else if (r.data && r.data.error) say("error", r.data.error.message || JSON.stringify(r.data.error));
      else if (r.status === 202) say("queued", "the agent is busy; the message waits in its queue");
      else say("agent", answerText(r.data && r.data.result) || "(no text)");
    });

    const activity = async () => {
      const [acts, dels, queue] = await Promise.all([
        api("GET", `${base}/activity?limit=20`),
        api("GET", `${base}/delegations`),
        api("GET", `${base}/a2a-queue`),
      ]);
      if (acts.ok)
        fill($("#activity-list"), acts.data, (a) =>
          el("li", `${when(a.created_at)} ${a.activity_type} ${a.status || ""} ${a.summary || ""}`),
        );
      if (dels.ok)
        fill($("#delegation-list"), Array.isArray(dels.data) ? dels.data : [], (d) =>
          el("li", `${d.delegation_id || d.id || ""} ${d.status || ""} ${d.summary || d.task || ""}`),
        );
      if (queue.ok)
        fill($("#queue-list"), queue.data.items || [], (q) =>
          el("li", `${q.status} ${q.method || ""} priority ${q.priority}, ${q.attempts} attempt(s)`),
        );
    };

    // Schedules: list, add, run now, enable/disable, history, delete.
    const schedules = async () => {
      const r = await api("GET", `${base}/schedules`);
      if (!r.ok) return;
      const body = $("#schedule-list tbody");
      body.replaceChildren(
        ...r.data.map((s) => {
          const tr = el("tr", null, { "data-schedule": s.id });
          tr.append(el("td", s.name), el("td", `${s.cron_expr} (${s.timezone})`), el("td", s.enabled ? "yes" : "no"));
          tr.append(el("td", s.last_run_at ? `${when(s.last_run_at)} ${s.last_status || ""}` : "never"));
          const actions = el("td");
          const button = (label, fn) => {
            const b = el("button", label, { type: "button" });
            b.addEventListener("click", fn);
            actions.append(b);
          };
          button("Edit", () => {
            const form = $("#schedule-form");
            form.dataset.editing = s.id;
            $("#s-name").value = s.name;
            $("#s-cron").value = s.cron_expr;
            $("#s-tz").value = s.timezone;
            $("#s-prompt").value = s.prompt;
            $("#schedule-form button[type=submit]").textContent = "Save schedule";
            $("#s-name").focus();
          });
          button("Run now", async () => {
            await api("POST", `${base}/schedules/${s.id}/run`);
            schedules();
          });
          button(s.enabled ? "Disable" : "Enable", async () => {
            await api("PATCH", `${base}/schedules/${s.id}`, { enabled: !s.enabled });
            schedules();
          });
          button("History", async () => {
            const h = await api("GET", `${base}/schedules/${s.id}/history`);
            if (h.ok)
              fill($("#schedule-history"), h.data, (x) =>
                el("li", `${when(x.created_at)} ${x.status || ""} ${x.summary || ""} ${x.error_detail || ""}`),
              );
          });
          button("Delete", async () => {
            if (await confirmDialog(`Delete schedule ${s.name}?`)) {
              await api("DELETE", `${base}/schedules/${s.id}`);
              schedules();
            }
          });
          tr.append(actions);
          return tr;
        }),
      );
    };
    $("#schedule-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = new FormData(e.target);
      const body = {
        name: f.get("name"),
        cron_expr: f.get("cron_expr"),
        timezone: f.get("timezone") || "UTC",
        prompt: f.get("prompt"),
      };
      const editing = e.target.dataset.editing;
      const r = editing
        ? await api("PATCH", `${base}/schedules/${editing}`, body)
        : await api("POST", `${base}/schedules`, body);
      const out = $("#schedule-history");
      if (!r.ok) fill(out, [errorOf(r)], (t) => el("li", t, { class: "error" }));
      else {
        e.target.reset();
        delete e.target.dataset.editing;
        $("#schedule-form button[type=submit]").textContent = "Add schedule";
      }
      schedules();
    });

    // Memory: the readable namespaces, search, detail, forget.
    const memories = async (q) => {
      const ns = await api("GET", `${base}/v2/namespaces`);
      $("#namespaces").textContent = ns.ok
        ? "Readable: " + ns.data.readable.map((n) => n.name).join(", ")
        : `Memory: ${errorOf(ns)}`;
      if (!ns.ok) return;
      const r = await api("GET", `${base}/v2/memories?limit=50` + (q ? "&q=" + encodeURIComponent(q) : ""));
      if (!r.ok) return fill($("#memory-list"), [errorOf(r)], (t) => el("li", t, { class: "error" }));
      fill($("#memory-list"), r.data.memories, (m) => {
        const li = el("li", null, { "data-memory": m.id });
        const details = el("details");
        details.append(el("summary", `${m.namespace}: ${m.content.slice(0, 120)}`));
        details.append(el("pre", `${m.content}\n\nkind ${m.kind}, source ${m.source}, ${when(m.created_at)}`));
        const forget = el("button", "Forget", { type: "button" });
        forget.addEventListener("click", async () => {
          if (!(await confirmDialog("Forget this memory?"))) return;
          const d = await api("DELETE", `${base}/v2/memories/${m.id}`);
          if (d.ok) li.remove();
          else forget.textContent = `Forget refused: ${errorOf(d)}`;
        });
        li.append(details, forget);
        return li;
      });
    };
    $("#memory-form").addEventListener("submit", (e) => {
      e.preventDefault();
      memories($("#m-q").value.trim());
    });

    // Channels: a form from each adapter's schema, the list, and test.
    const channels = async () => {
      const [adapters, list] = await Promise.all([api("GET", "/channels/adapters"), api("GET", `${base}/channels`)]);
      if (list.ok)
        fill($("#channel-list"), list.data, (c) => {
          const li = el("li", `${c.channel_type} ${c.enabled ? "enabled" : "disabled"} ${c.disabled_reason || ""}`);
          const test = el("button", "Test", { type: "button" });
          test.addEventListener("click", async () => {
            const t = await api("POST", `${base}/channels/${c.id}/test`);
            test.textContent = t.ok ? "Test: sent" : `Test: ${errorOf(t)}`;
          });
          li.append(test);
          return li;
        });
      if (!adapters.ok) return;
      const select = $("#c-type");
      if (!select.options.length) {
        adapters.data.forEach((a) => select.append(el("option", a.display_name, { value: a.type })));
      }
      const fields = () => {
        const a = adapters.data.find((x) => x.type === select.value);
        $("#c-fields").replaceChildren(
          ...(a ? a.config_schema : []).map((f) => {
            const label = el("label", f.label + (f.required ? " *" : ""));
            const input = el("input", null, { name: f.key, type: f.sensitive ? "password" : "text" });
            if (f.required) input.required = true;
            if (f.placeholder) input.placeholder = f.placeholder;
            label.append(input);
            return label;
          }),
        );
      };
      select.onchange = fields;
      if (!$("#c-fields").children.length) fields();
    };
    $("#channel-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const config = {};
      $$("#c-fields input").forEach((i) => {
        if (i.value) config[i.name] = i.value;
      });
      const r = await api("POST", `${base}/channels`, { channel_type: $("#c-type").value, config });
      if (!r.ok) fill($("#channel-list"), [errorOf(r)], (t) => el("li", t, { class: "error" }));
      else channels();
    });

    // Tokens: list, revoke, rotate (the new token is shown once, here only).
    const tokens = async () => {
      const r = await api("GET", `${base}/tokens`);
      if (!r.ok) return;
      fill($("#token-list"), r.data, (t) => {
        const li = el("li", `${t.prefix}… created ${when(t.created_at)}, last used ${when(t.last_used_at) || "never"}`);
        const revoke = el("button", "Revoke", { type: "button" });
        revoke.addEventListener("click", async () => {
          if (await confirmDialog("Revoke this token? The agent using it loses access.")) {
            await api("DELETE", `${base}/tokens/${t.id}`);
            tokens();
          }
        });
        li.append(revoke);
        return li;
      });
    };
    $("#token-rotate").addEventListener("click", async () => {
      if (!(await confirmDialog("Rotate: revoke every token of this workspace and issue one new one?"))) return;
      const r = await api("POST", `${base}/tokens/rotate`);
      const out = el("output", r.ok ? `New token (shown once): ${r.data.auth_token || r.data.token}` : errorOf(r));
      $("#token-list").before(out);
      tokens();
    });

    // Secrets: names only; set and delete.
    const secrets = async () => {
      const r = await api("GET", `${base}/secrets`);
      if (!r.ok) return;
      fill($("#secret-list"), r.data, (s) => {
        const li = el("li", `${s.key} (${s.scope})`);
        const del = el("button", "Delete", { type: "button" });
        del.addEventListener("click", async () => {
          if (await confirmDialog(`Delete secret ${s.key}? The workspace restarts without it.`)) {
            await api("DELETE", `${base}/secrets/${encodeURIComponent(s.key)}`);
            secrets();
          }
        });
        li.append(del);
        return li;
      });
    };
    $("#secret-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const r = await api("POST", `${base}/secrets`, { key: $("#sec-key").value, value: $("#sec-value").value });
      $("#sec-value").value = "";
      if (!r.ok) fill($("#secret-list"), [errorOf(r)], (t) => el("li", t, { class: "error" }));
      else secrets();
    });

    // Model, external connection, files.
    $("#model-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const r = await api("PUT", `${base}/model`, { model: $("#model-input").value.trim() });
      $("#model-result").textContent = r.ok ? "set (the workspace restarts with it)" : errorOf(r);
    });
    const connection = async () => {
      if (!$("#connection")) return;
      const r = await api("GET", `${base}/external/connection`);
      $("#connection").textContent = r.ok ? JSON.stringify(r.data.connection, null, 2) : errorOf(r);
    };
    if ($("#connection-rotate"))
      $("#connection-rotate").addEventListener("click", async () => {
        if (!(await confirmDialog("Rotate: revoke the agent's tokens and issue new credentials? The agent must reconnect with them."))) return;
        const r = await api("POST", `${base}/external/rotate`);
        $("#connection").textContent = r.ok ? JSON.stringify(r.data.connection, null, 2) : errorOf(r);
      });
    const files = async () => {
      const r = await api("GET", `${base}/files?root=${encodeURIComponent("/configs")}&depth=2`);
      if (!r.ok) return fill($("#file-list"), [errorOf(r)], (t) => el("li", t));
      fill($("#file-list"), r.data, (f) => el("li", f.dir ? `${f.path}/` : `${f.path} (${f.size} bytes)`));
    };

    // The terminal: xterm.js on the workspace's terminal socket.
    $("#terminal-open").addEventListener("click", () => {
      const state = $("#terminal-state");
      if (typeof Terminal !== "function") {
        state.textContent = "xterm.js did not load";
        return;
      }
      $("#terminal-open").disabled = true;
      const term = new Terminal({ cols: 100, rows: 24, convertEol: false });
      term.open($("#terminal-screen"));
      const transcript = el("pre", null, { id: "terminal-transcript", class: "visually-hidden", "aria-live": "off" });
      $("#terminal-screen").after(transcript);
      const decoder = new TextDecoder();
      const ws = new WebSocket(`${wsBase()}/console/api${base}/terminal`);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => {
        state.textContent = "connected";
        ws.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
        term.focus();
      };
      ws.onmessage = (m) => {
        const bytes = typeof m.data === "string" ? new TextEncoder().encode(m.data) : new Uint8Array(m.data);
        term.write(bytes);
        // A plain-text copy for screen readers and tests, without escape sequences, capped.
        // eslint-disable-next-line no-control-regex
        const text = decoder.decode(bytes, { stream: true }).replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07/g, "");
        transcript.textContent = (transcript.textContent + text).slice(-65536);
      };
      ws.onclose = (e) => {
        state.textContent = `closed${e.reason ? ": " + e.reason : ""}`;
        $("#terminal-open").disabled = false;
      };
      term.onData((d) => ws.readyState === WebSocket.OPEN && ws.send(d));
      term.onResize(({ cols, rows }) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: "resize", cols, rows })));
    });

    // Live: this workspace's events refresh its status and lists.
    let timer = null;
    const refresh = () => {
      timer = null;
      status();
      activity();
      schedules();
    };
    const events = new EventSource(`/console/api${base}/events/stream`);
    events.onmessage = (m) => {
      let ev = null;
      try {
        ev = JSON.parse(m.data);
      } catch (_) {
        return;
      }
      if (ev.type !== "WORKSPACE_HEARTBEAT") {
        const line = el("li", null);
        line.append(el("time", new Date(ev.timestamp).toISOString()), " ", el("strong", ev.type));
        $("ol.timeline").prepend(line);
      }
      if (timer === null) timer = setTimeout(refresh, 200);
    };
    events.onopen = () => {
      document.body.dataset.live = "open";
      const s = $("#live-state");
      if (s) s.textContent = "live";
    };
    activity();
    schedules();
    memories("");
    channels();
    tokens();
    secrets();
    connection();
    files();
  }

  /** A table row of text cells. */
  function row(cells, attrs) {
    const tr = el("tr", null, attrs);
    for (const c of cells) tr.append(c instanceof Node ? c : el("td", c));
    return tr;
  }

  function delegationsPage() {
    const main = $("#delegations-page");
    if (!main) return;
    const when = (t) => (t ? new Date(t).toLocaleString() : "");
    const stats = async () => {
      const r = await api("GET", "/admin/delegations/stats");
      if (!r.ok) return;
      const dl = $("#stats");
      dl.replaceChildren();
      for (const [k, v] of Object.entries(r.data)) {
        if (k === "duration_seconds") continue;
        dl.append(el("dt", k.replace(/_/g, " ")), el("dd", v));
      }
      const d = r.data.duration_seconds || {};
      const secs = (x) => (x === null || x === undefined ? "n/a" : Number(x).toFixed(1) + " s");
      dl.append(el("dt", "duration p50 / p95 / p99"), el("dd", `${secs(d.p50)} / ${secs(d.p95)} / ${secs(d.p99)}`));
    };
    const timeline = async (id) => {
      const r = await api("GET", `/admin/delegations/${encodeURIComponent(id)}/timeline`);
      $("#timeline-title").textContent = `Timeline of ${id}`;
      if (!r.ok) return fill($("#timeline-list"), [errorOf(r)], (t) => el("li", t, { class: "error" }));
      const d = r.data.delegation;
      const items = [
        { at: d.created_at, text: `created: ${d.task_preview}` },
        ...r.data.events.map((e) => ({
          at: e.timestamp,
          text: `${e.event}${e.actor ? " by " + e.actor : ""} ${e.payload.status || e.payload.error || e.payload.response_preview || ""}`,
        })),
        ...r.data.activity.map((a) => ({ at: a.created_at, text: `activity ${a.activity_type} ${a.status}: ${a.summary || ""}` })),
      ];
      if (d.last_heartbeat) items.push({ at: d.last_heartbeat, text: "last heartbeat" });
      items.push({ at: d.updated_at, text: `now ${d.status}${d.error_detail ? ": " + d.error_detail : ""} (retries ${d.retry_count}, deadline ${when(d.deadline)})` });
      items.sort((a, b) => new Date(a.at) - new Date(b.at));
      fill($("#timeline-list"), items, (i) => el("li", `${when(i.at)} ${i.text}`));
    };
    const list = async () => {
      const status = $("#d-status").value;
      const q = $("#d-text").value.trim().toLowerCase();
      const r = await api("GET", `/admin/delegations?status=${encodeURIComponent(status)}&limit=500`);
      if (!r.ok) {
        $("#delegation-count").textContent = errorOf(r);
        return;
      }
      const shown = r.data.delegations.filter(
        (d) => !q || [d.delegation_id, d.caller_id, d.callee_id, d.task_preview].some((f) => String(f).toLowerCase().includes(q)),
      );
      $("#delegation-count").textContent = `${shown.length} of ${r.data.count} ${status.replace("_", " ")}`;
      $("#delegation-list tbody").replaceChildren(
        ...shown.map((d) => {
          const open = el("button", d.delegation_id, { type: "button" });
          open.addEventListener("click", () => timeline(d.delegation_id));
          const first = el("td");
          first.append(open);
          return row([first, d.caller_id, d.callee_id, d.status, d.task_preview, when(d.last_heartbeat), when(d.updated_at)], {
            "data-delegation": d.delegation_id,
          });
        }),
      );
    };
    $("#delegation-filter").addEventListener("submit", (e) => {
      e.preventDefault();
      list();
    });
    stats();
    list();
    liveEvents((ev) => {
      if (ev === null || String(ev.event).startsWith("DELEGATION_")) {
        stats();
        list();
      }
    });
  }

  function systemPage() {
    const main = $("#system-page");
    if (!main) return;
    const when = (t) => (t ? new Date(t).toLocaleString() : "");
    const detail = (p) =>
      Object.entries(p || {})
        .filter(([, v]) => typeof v !== "object")
        .map(([k, v]) => `${k}: ${v}`)
        .join(", ")
        .slice(0, 300);
    const liveness = async () => {
      const r = await api("GET", "/admin/liveness");
      if (!r.ok) return;
      $("#listener").textContent = `Event listener: ${r.data.event_listener_connected ? "connected" : "DISCONNECTED"}`;
      $("#loop-list tbody").replaceChildren(
        ...Object.entries(r.data.subsystems || {}).map(([name, l]) =>
          row([name, l.last_tick_at ? `${when(l.last_tick_at)} (${l.seconds_ago} s ago, every ${l.interval_seconds} s)` : "never", `${l.ticks_run} run, ${l.ticks_skipped} skipped`, `${l.errors} errors, ${l.panics} panics`, l.last_error || ""], {
            "data-loop": name,
          }),
        ),
      );
      const p = r.data.memory_plugin;
      $("#plugin").textContent = p
        ? `${p.url}: breaker ${p.breaker_open ? "OPEN (calls refused until it recovers)" : "closed"}`
        : "No memory plugin is configured (MEMORY_PLUGIN_URL).";
    };
    const events = async (type, list) => {
      const r = await api("GET", `/events?event=${type}&limit=20`);
      return r.ok ? r.data.map((e) => ({ ...e, list })) : [];
    };
    const failures = async () => {
      const leaks = await events("LEAK_SUSPECT");
      fill($("#leak-list"), leaks.reverse(), (e) => el("li", `${when(e.timestamp)} ${e.workspace_id || ""} ${detail(e.payload)}`), "none");
      const failed = (await Promise.all(["WORKSPACE_PROVISION_FAILED", "DELEGATION_FAILED", "RECONCILER_REPORT"].map((t) => events(t)))).flat();
      failed.sort((a, b) => new Date(b.timestamp) - new Date(a.timestamp));
      fill($("#error-list"), failed.slice(0, 30), (e) => el("li", `${when(e.timestamp)} ${e.event} ${e.workspace_id || ""} ${detail(e.payload)}`), "none");
    };
    const audit = async () => {
      const f = new FormData($("#audit-form"));
      const params = new URLSearchParams({ limit: "200" });
      if (f.get("actor")) params.set("actor", f.get("actor"));
      if (f.get("event")) params.set("event", f.get("event"));
      const target = String(f.get("workspace_id") || "").trim();
      const r = await api("GET", (target ? `/events/${encodeURIComponent(target)}` : "/events") + "?" + params);
      const body = $("#audit-list tbody");
      if (!r.ok) return body.replaceChildren(row([errorOf(r)], { class: "error" }));
      body.replaceChildren(
        ...r.data.reverse().map((e) => row([when(e.timestamp), e.actor || "platform", e.event, e.workspace_id || "", detail(e.payload)])),
      );
    };
    $("#audit-form").addEventListener("submit", (e) => {
      e.preventDefault();
      audit();
    });
    liveness();
    failures();
    audit();
    setInterval(liveness, 5000);
  }

  fleetPage();
  workspacePage();
  delegationsPage();
  systemPage();
})();
