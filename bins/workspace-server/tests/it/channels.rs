//! Chat channels end to end: each vendor's local fake (`molecule_testkit::vendors`, written
//! from the vendors' documentation) sends messages signed as the vendor signs them, an agent
//! built with the official A2A SDK answers, and the answer reaches the fake's chat; forged,
//! stale and wrong-row requests are refused before anything reaches the agent. Telegram
//! polling on two replicas (one poller, a SIGKILLed holder taken over, no update twice), a
//! busy agent's answer from the queue, the IDOR matrix, sealed secrets after org import, and
//! GitHub's webhook.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::time::Duration;

use diesel_async::RunQueryDsl;
use molecule_testkit::agent::Mode;
use molecule_testkit::vendors::Vendors;
use molecule_testkit::{Api, StubAgent, TestDb, until, until_ok};
use serde_json::{Value, json};

use crate::common;

const ADMIN: &str = "channels-admin";
const KEY: &str = "0123456789abcdef0123456789abcdef";
const TG_TOKEN: &str = "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQ";
const TG_TOKEN_2: &str = "987654321:ZZyyXXwwVVuuTTssRRqqPPooNNmmLLkkJJ";
const GH_SECRET: &str = "gh-webhook-secret";

/// The server's environment: the vendors at the fake, short leases and polls, a sealing key.
fn env(fake: &Vendors) -> Vec<(&'static str, String)> {
    vec![
        ("TELEGRAM_API_BASE", fake.url.clone()),
        ("SLACK_API_BASE", fake.url.clone()),
        ("DISCORD_API_BASE", fake.url.clone()),
        ("LARK_API_BASE", fake.url.clone()),
        ("CHANNEL_POLLER_LEASE_SECONDS", "3".into()),
        ("CHANNEL_SUPERVISE_INTERVAL_SECONDS", "1".into()),
        ("TELEGRAM_POLL_TIMEOUT_SECONDS", "1".into()),
        ("SECRETS_ENCRYPTION_KEY", KEY.into()),
        ("GITHUB_WEBHOOK_SECRET", GH_SECRET.into()),
    ]
}

fn start(db: &TestDb, fake: &Vendors) -> common::Proc {
    start_with(db, fake, &[])
}

fn start_with(db: &TestDb, fake: &Vendors, extra: &[(&'static str, &str)]) -> common::Proc {
    let env = env(fake);
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.extend_from_slice(extra);
    common::start_replica(&db.url, ADMIN, &pairs)
}

/// POSTs a raw body with headers; the status and the JSON answer (null when empty).
async fn post_raw(
    api: &Api,
    path: &str,
    headers: &[(String, String)],
    content_type: &str,
    body: &[u8],
) -> (u16, Value) {
    let mut req = api
        .http()
        .post(api.url(path))
        .header("Content-Type", content_type)
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn slack_post(api: &Api, channel: &str, secret: &str, ts: i64, body: &Value) -> (u16, Value) {
    let raw = body.to_string().into_bytes();
    let headers = Vendors::slack_sign(secret, ts, &raw);
    post_raw(
        api,
        &format!("/webhooks/slack/{channel}"),
        &headers,
        "application/json",
        &raw,
    )
    .await
}

async fn lark_post(api: &Api, channel: &str, event: &Value) -> (u16, Value) {
    lark_post_at(api, channel, "lark-ek", now(), event).await
}

async fn lark_post_at(api: &Api, channel: &str, key: &str, at: i64, event: &Value) -> (u16, Value) {
    let (body, headers) = Vendors::lark_encrypt_at(key, event, at);
    post_raw(
        api,
        &format!("/webhooks/lark/{channel}"),
        &headers,
        "application/json",
        &body,
    )
    .await
}

async fn discord_post(
    api: &Api,
    channel: &str,
    signer: &molecule_testkit::vendors::DiscordSigner,
    timestamp: i64,
    body: &str,
) -> (u16, Value) {
    let headers = signer.headers(&timestamp.to_string(), body.as_bytes());
    post_raw(
        api,
        &format!("/webhooks/discord/{channel}"),
        &headers,
        "application/json",
        body.as_bytes(),
    )
    .await
}

/// `POST /channels/discover` for a Telegram bot, as the admin.
async fn discover(api: &Api, token: &str, workspace: &str) -> molecule_testkit::Reply {
    api.admin_post(
        "/channels/discover",
        &json!({ "channel_type": "telegram", "bot_token": token, "workspace_id": workspace }),
    )
    .await
}

async fn until_sent(what: &str, f: impl Fn() -> bool) {
    until(what, Duration::from_secs(30), || async { f().then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_vendor_reaches_an_sdk_agent_and_its_answer_reaches_the_chat() {
    let Some(python) = crate::a2a_sdk::python() else { return };
    let db = TestDb::new().await;
    let fake = Vendors::start().unwrap();
    fake.telegram_bot(TG_TOKEN);
    fake.slack_token("xoxb-fake-1");
    let server = start(&db, &fake);
    let api = server.api();
    api.ready().await;
    let agent = crate::a2a_sdk::SdkAgent::start(&python, None).await;
    let ws = api.external("chatty").await;
    api.register(&ws, &agent.url, &json!({ "name": "chatty" })).await;
    let other = api.external("other").await;
    let path = format!("/workspaces/{}/channels", ws.id);
    let (discord_pk, discord) = Vendors::discord_key();
    let create = |body: Value| {
        let (api, path, token) = (&api, &path, &ws.token);
        async move {
            api.post(path, token, &body).await.expect(201)["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let telegram =
        create(json!({ "channel_type": "telegram", "config": { "bot_token": TG_TOKEN, "chat_id": "777" } })).await;
    let slack = create(json!({ "channel_type": "slack",
        "config": { "bot_token": "xoxb-fake-1", "channel_id": "C1", "signing_secret": "slack-secret-1" } }))
    .await;
    let discord_id = create(json!({ "channel_type": "discord",
        "config": { "webhook_url": "https://discord.com/api/webhooks/1/abc", "public_key": discord_pk } }))
    .await;
    let lark = create(json!({ "channel_type": "lark", "config": {
        "webhook_url": "https://open.feishu.cn/open-apis/bot/v2/hook/xyz", "verify_token": "lark-vt", "encrypt_key": "lark-ek" } })).await;
    // The other workspace's Slack row, with its own secret: the wrong row's key.
    let other_slack = api
        .post(
            &format!("/workspaces/{}/channels", other.id),
            &other.token,
            &json!({ "channel_type": "slack", "config": { "webhook_url": "https://hooks.slack.com/services/T/B/x", "signing_secret": "slack-secret-2" } }),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Telegram, polled.
    fake.telegram_message(TG_TOKEN, 777, 42, "hello telegram");
    until_sent("the Telegram answer", || {
        fake.telegram_sent(TG_TOKEN)
            .contains(&("777".into(), "sdk echo: hello telegram".into()))
    })
    .await;

    // Discover while the bot is polled: the poller is paused for it (Telegram allows one
    // reader: a second getUpdates is a 409), then resumes.
    let found = discover(&api, TG_TOKEN, &ws.id).await.expect(200);
    assert_eq!(found["bot_username"], "fake_bot", "{found}");
    fake.telegram_message(TG_TOKEN, 777, 42, "after discover");
    until_sent("the poller back after Discover", || {
        fake.telegram_sent(TG_TOKEN)
            .contains(&("777".into(), "sdk echo: after discover".into()))
    })
    .await;

    // Slack: the URL check answers its challenge once; a message is answered in the channel.
    let (s, v) = slack_post(
        &api,
        &slack,
        "slack-secret-1",
        now(),
        &json!({ "type": "url_verification", "challenge": "ch-1" }),
    )
    .await;
    assert_eq!((s, v), (200, json!({ "challenge": "ch-1" })));
    let (s, v) = slack_post(
        &api,
        &slack,
        "slack-secret-1",
        now(),
        &Vendors::slack_event("Ev1", "C1", "U1", "hello slack"),
    )
    .await;
    assert_eq!((s, &v["status"]), (200, &json!("accepted")), "{v}");
    until_sent("the Slack answer", || {
        fake.calls_to("slack", "/api/chat.postMessage")
            .iter()
            .any(|c| c.body["channel"] == "C1" && c.body["text"] == "sdk echo: hello slack")
    })
    .await;
    // Slack retries an event it thinks was lost: the agent gets it once.
    let (s, v) = slack_post(
        &api,
        &slack,
        "slack-secret-1",
        now(),
        &Vendors::slack_event("Ev1", "C1", "U1", "hello slack"),
    )
    .await;
    assert_eq!((s, v), (200, json!({ "status": "duplicate" })));

    // Discord: PING, then a command deferred and answered as the interaction's follow-up.
    let ping = json!({ "id": "p1", "type": 1, "application_id": "424242", "token": "t", "version": 1 }).to_string();
    let (s, v) = discord_post(&api, &discord_id, &discord, now(), &ping).await;
    assert_eq!((s, v), (200, json!({ "type": 1 })));
    let cmd = Vendors::discord_command("i-1", "D1", "U9", "ask", "hello discord").to_string();
    let (s, v) = discord_post(&api, &discord_id, &discord, now(), &cmd).await;
    assert_eq!((s, v), (200, json!({ "type": 5 })));
    until_sent("the Discord follow-up", || {
        fake.calls_to("discord", "/api/v10/webhooks/424242/itoken-i-1")
            .iter()
            .any(|c| c.body["content"] == "sdk echo: /ask hello discord")
    })
    .await;

    // Lark, encrypted and signed: the challenge echoed, a message answered through the webhook.
    let (s, v) = lark_post(
        &api,
        &lark,
        &json!({ "type": "url_verification", "token": "lark-vt", "challenge": "lc-1" }),
    )
    .await;
    assert_eq!((s, v), (200, json!({ "challenge": "lc-1" })));
    let (s, v) = lark_post(
        &api,
        &lark,
        &Vendors::lark_event("le-1", "lark-vt", "oc_1", "ou_9", "hello lark"),
    )
    .await;
    assert_eq!((s, &v["status"]), (200, &json!("accepted")), "{v}");
    until_sent("the Lark answer", || {
        fake.calls_to("lark", "/open-apis/bot/v2/hook/xyz")
            .iter()
            .any(|c| c.body["content"]["text"] == "sdk echo: hello lark")
    })
    .await;

    // A schedule's prompt carries the Slack channel's recent messages, and its answer is
    // posted back to the channel (the original's Slack hooks).
    fake.slack_history(vec![
        json!({ "user": "U2", "text": "the deploy is red", "ts": "2" }),
        json!({ "bot_id": "B1", "text": "a bot's own post", "ts": "1.5" }),
        json!({ "user": "U1", "username": "ada", "text": "good morning", "ts": "1" }),
    ]);
    let sched = api
        .post(
            &format!("/workspaces/{}/schedules", ws.id),
            &ws.token,
            &json!({ "name": "standup", "cron_expr": "0 9 * * *", "prompt": "write the standup" }),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.post(
        &format!("/workspaces/{}/schedules/{sched}/run", ws.id),
        &ws.token,
        &json!({}),
    )
    .await
    .success()
    .unwrap();
    until_sent("the schedule's answer posted to Slack", || {
        fake.calls_to("slack", "/api/chat.postMessage").iter().any(|c| {
            c.body["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("sdk echo: [Slack channel context — recent team messages]\n- ada: good morning\n- U2: the deploy is red\n\nwrite the standup"))
        })
    })
    .await;

    // Telegram in webhook mode (a third workspace, the same agent): create registers the
    // webhook with its secret token; an update carrying it is answered in the chat.
    let hooked = api.external("hooked").await;
    api.register(&hooked, &agent.url, &json!({ "name": "hooked" })).await;
    fake.telegram_bot(TG_TOKEN_2);
    let made = api
        .post(
            &format!("/workspaces/{}/channels", hooked.id),
            &hooked.token,
            &json!({ "channel_type": "telegram", "config": { "bot_token": TG_TOKEN_2, "chat_id": "31", "webhook_secret": "tg-secret-1" } }),
        )
        .await
        .expect(201);
    let tg_hook = made["id"].as_str().unwrap().to_owned();
    let registered = fake.telegram_webhook(TG_TOKEN_2).expect("setWebhook was called");
    assert_eq!(registered["secret_token"], "tg-secret-1");
    assert!(
        registered["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/webhooks/telegram/{tg_hook}")),
        "{registered}"
    );
    assert_eq!(made["inbound_url"], registered["url"]);
    let tg_post = |row: String, secret: &'static str, update: Value| {
        let api = &api;
        async move {
            let raw = update.to_string();
            let headers = vec![("X-Telegram-Bot-Api-Secret-Token".to_owned(), secret.to_owned())];
            post_raw(
                api,
                &format!("/webhooks/telegram/{row}"),
                &headers,
                "application/json",
                raw.as_bytes(),
            )
            .await
        }
    };
    let (s, _) = tg_post(
        tg_hook.clone(),
        "tg-secret-1",
        Vendors::telegram_update(501, 31, 8, "hello webhook"),
    )
    .await;
    assert_eq!(s, 200);
    until_sent("the Telegram webhook answer", || {
        fake.telegram_sent(TG_TOKEN_2)
            .contains(&("31".into(), "sdk echo: hello webhook".into()))
    })
    .await;

    // The other workspace's rows, each with its own secrets: the wrong row's key.
    let other_row = |body: Value| {
        let (api, path, token) = (&api, format!("/workspaces/{}/channels", other.id), other.token.clone());
        async move {
            api.post(&path, &token, &body).await.expect(201)["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (other_pk, _) = Vendors::discord_key();
    let other_discord = other_row(json!({ "channel_type": "discord",
        "config": { "webhook_url": "https://discord.com/api/webhooks/2/def", "public_key": other_pk } }))
    .await;
    let other_lark = other_row(json!({ "channel_type": "lark", "config": {
        "webhook_url": "https://open.feishu.cn/open-apis/bot/v2/hook/other", "verify_token": "other-vt", "encrypt_key": "other-ek" } })).await;
    let other_tg = other_row(json!({ "channel_type": "telegram",
        "config": { "bot_token": TG_TOKEN_2, "chat_id": "31", "webhook_secret": "tg-secret-2" } }))
    .await;

    // Refused before anything reaches the agent, vendor by vendor: a forged signature, a
    // stale timestamp, the wrong row's key.
    let before = agent.received("channel-").len();
    let refused = (401, json!({ "error": "webhook authentication failed" }));
    let ev = |id: &str| Vendors::slack_event(id, "C1", "U1", "forged");
    assert_eq!(
        slack_post(&api, &slack, "not-the-secret", now(), &ev("F1")).await,
        refused,
        "slack: forged"
    );
    assert_eq!(
        slack_post(&api, &slack, "slack-secret-1", now() - 600, &ev("F2")).await,
        refused,
        "slack: stale"
    );
    assert_eq!(
        slack_post(&api, &other_slack, "slack-secret-1", now(), &ev("F3")).await,
        refused,
        "slack: another row's secret"
    );
    let (_, impostor) = Vendors::discord_key();
    let cmd = |id: &str| Vendors::discord_command(id, "D1", "U9", "ask", "forged").to_string();
    assert_eq!(
        discord_post(&api, &discord_id, &impostor, now(), &cmd("i-2")).await,
        refused,
        "discord: forged"
    );
    assert_eq!(
        discord_post(&api, &discord_id, &discord, now() - 600, &cmd("i-3")).await,
        refused,
        "discord: stale"
    );
    assert_eq!(
        discord_post(&api, &other_discord, &discord, now(), &cmd("i-4")).await,
        refused,
        "discord: another row's key"
    );
    let lev = |id: &str, token: &str| Vendors::lark_event(id, token, "oc_1", "ou_9", "forged");
    assert_eq!(
        lark_post_at(&api, &lark, "not-the-key", now(), &lev("le-2", "lark-vt")).await,
        refused,
        "lark: forged"
    );
    assert_eq!(
        lark_post(&api, &lark, &lev("le-3", "wrong-token")).await,
        refused,
        "lark: another token"
    );
    assert_eq!(
        lark_post_at(&api, &lark, "lark-ek", now() - 600, &lev("le-4", "lark-vt")).await,
        refused,
        "lark: stale"
    );
    assert_eq!(
        lark_post(&api, &other_lark, &lev("le-5", "lark-vt")).await,
        refused,
        "lark: another row's key"
    );
    let upd = |id: i64| Vendors::telegram_update(id, 31, 8, "forged");
    assert_eq!(
        tg_post(tg_hook.clone(), "not-the-secret", upd(502)).await,
        refused,
        "telegram: forged"
    );
    assert_eq!(
        tg_post(other_tg.clone(), "tg-secret-1", upd(503)).await,
        refused,
        "telegram: another row's secret"
    );
    assert_eq!(
        tg_post(telegram.clone(), "tg-secret-1", upd(504)).await,
        refused,
        "telegram: a polling row takes no webhook"
    );
    let (s, _) = post_raw(
        &api,
        "/webhooks/slack",
        &Vendors::slack_sign("nobody's", now(), b"{}"),
        "application/json",
        b"{}",
    )
    .await;
    assert_eq!(s, 401, "the original's route verifies too");
    assert_eq!(
        agent.received("channel-").len(),
        before,
        "no refused request reached the agent"
    );

    // Discover: the bot's name and the chats that wrote to it; a bad token is a friendly 400.
    fake.telegram_message(TG_TOKEN_2, 4242, 8, "/start");
    let found = discover(&api, TG_TOKEN_2, &hooked.id).await.expect(200);
    assert_eq!(found["bot_username"], "fake_bot", "{found}");
    assert!(
        found["chats"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["chat_id"] == "4242"),
        "{found}"
    );
    let bad = api
        .admin_post(
            "/channels/discover",
            &json!({ "channel_type": "telegram", "bot_token": "1:unknownunknownunknownunknownunknown", "workspace_id": hooked.id }),
        )
        .await
        .expect(400);
    assert!(bad["error"].as_str().unwrap().contains("Invalid bot token"), "{bad}");

    // Send and Test go to every destination; the list masks every secret.
    api.post(
        &format!("{path}/{slack}/send"),
        &ws.token,
        &json!({ "text": "from the operator" }),
    )
    .await
    .expect(200);
    assert!(
        fake.calls_to("slack", "/api/chat.postMessage")
            .iter()
            .any(|c| c.body["text"] == "from the operator")
    );
    // Rate limited once (429, Retry-After): the send waits and goes through.
    fake.rate_limit_next("slack", 1);
    api.post(
        &format!("{path}/{slack}/send"),
        &ws.token,
        &json!({ "text": "after a 429" }),
    )
    .await
    .expect(200);
    assert_eq!(fake.rate_limited("slack"), 1);
    assert_eq!(
        fake.calls_to("slack", "/api/chat.postMessage")
            .iter()
            .filter(|c| c.body["text"] == "after a 429")
            .count(),
        1
    );
    api.post(&format!("{path}/{lark}/test"), &ws.token, &json!({}))
        .await
        .expect(200);
    let list = api.get(&path, &ws.token).await.expect(200);
    let text = list.to_string();
    for secret in [
        TG_TOKEN,
        "xoxb-fake-1",
        "slack-secret-1",
        "lark-vt",
        "lark-ek",
        "hook/xyz",
        "webhooks/1/abc",
    ] {
        assert!(!text.contains(secret), "{secret} shown in the list: {text}");
    }
    // A PATCH that echoes the list's mask keeps the stored secret: Send still works.
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == slack.as_str())
        .unwrap()
        .clone();
    api.patch(
        &format!("{path}/{slack}"),
        &ws.token,
        &json!({ "config": row["config"] }),
    )
    .await
    .expect(200);
    api.post(
        &format!("{path}/{slack}/send"),
        &ws.token,
        &json!({ "text": "after the echo" }),
    )
    .await
    .expect(200);
    // A vendor's refusal is a 502 with its error.
    fake.telegram_revoke(TG_TOKEN);
    let r = api
        .post(&format!("{path}/{telegram}/send"), &ws.token, &json!({ "text": "x" }))
        .await
        .expect(502);
    assert!(r["error"].as_str().unwrap().contains("telegram: unauthorized"), "{r}");
    // The revoked token disabled the row, with the reason shown.
    let list = api.get(&path, &ws.token).await.expect(200);
    let tg = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == telegram.as_str())
        .unwrap();
    assert_eq!(tg["enabled"], false, "{tg}");
    assert!(tg["disabled_reason"].as_str().unwrap().contains("unauthorized"), "{tg}");
}

/// Which replica runs the row's poller (its `channel-pollers` loop reports one running).
async fn polling(api: &Api) -> bool {
    api.admin_get("/admin/liveness").await.body["subsystems"]["channel-pollers"]["last_report"]["running"].as_u64()
        == Some(1)
}

#[tokio::test(flavor = "multi_thread")]
async fn telegram_polling_on_two_replicas_is_one_poller_and_survives_a_sigkill() {
    let Some(python) = crate::a2a_sdk::python() else { return };
    let db = TestDb::new().await;
    let fake = Vendors::start().unwrap();
    fake.telegram_bot(TG_TOKEN);
    let mut a = start(&db, &fake);
    let mut b = start(&db, &fake);
    let (api_a, api_b) = (a.api(), b.api());
    api_a.ready().await;
    api_b.ready().await;
    let agent = crate::a2a_sdk::SdkAgent::start(&python, None).await;
    let ws = api_a.external("polled").await;
    api_a.register(&ws, &agent.url, &json!({ "name": "polled" })).await;
    let row = api_a
        .post(
            &format!("/workspaces/{}/channels", ws.id),
            &ws.token,
            &json!({ "channel_type": "telegram", "config": { "bot_token": TG_TOKEN, "chat_id": "555" } }),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let holder = until_ok("one replica polling", Duration::from_secs(30), || async {
        match (polling(&api_a).await, polling(&api_b).await) {
            (true, false) => Ok('a'),
            (false, true) => Ok('b'),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let answered = |n: usize| {
        let fake = fake.clone();
        async move {
            until("the answers in the chat", Duration::from_secs(40), || async {
                (fake
                    .telegram_sent(TG_TOKEN)
                    .iter()
                    .filter(|(_, t)| t.starts_with("sdk echo: m"))
                    .count()
                    >= n)
                    .then_some(())
            })
            .await;
        }
    };
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(fake.telegram_message(TG_TOKEN, 555, 7, &format!("m{i}")));
    }
    answered(5).await;
    assert_eq!(
        fake.telegram_max_polling(TG_TOKEN),
        1,
        "one getUpdates at a time: one poller"
    );
    // SIGKILL the holder mid-stream; the other takes the row over within the lease.
    let (dead, live) = if holder == 'a' {
        (&mut a, &api_b)
    } else {
        (&mut b, &api_a)
    };
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    for i in 5..10 {
        ids.push(fake.telegram_message(TG_TOKEN, 555, 7, &format!("m{i}")));
    }
    answered(10).await;
    assert!(polling(live).await, "the survivor polls");
    assert!(fake.telegram_max_polling(TG_TOKEN) <= 1, "never two pollers at once");
    // Every update reached the agent exactly once (counted by update_id in the messageId).
    let got = agent.received(&format!("channel-telegram-{row}-"));
    for id in &ids {
        let key = format!("channel-telegram-{row}-123456789:{id}");
        assert_eq!(got.get(&key), Some(&1), "{key}: {got:?}");
    }
    assert_eq!(got.len(), 10, "{got:?}");
    // A config change (a new bot) reaches the poller within seconds.
    fake.telegram_bot(TG_TOKEN_2);
    let path = format!("/workspaces/{}/channels/{row}", ws.id);
    live.patch(
        &path,
        &ws.token,
        &json!({ "config": { "bot_token": TG_TOKEN_2, "chat_id": "555" } }),
    )
    .await
    .expect(200);
    fake.telegram_message(TG_TOKEN_2, 555, 7, "m-new-bot");
    until_sent("the new bot's answer", || {
        fake.telegram_sent(TG_TOKEN_2)
            .contains(&("555".into(), "sdk echo: m-new-bot".into()))
    })
    .await;
    // A revoked token (401 to getUpdates) disables the channel, with the reason in the list.
    fake.telegram_revoke(TG_TOKEN_2);
    let list = format!("/workspaces/{}/channels", ws.id);
    let row = until_ok("the channel disabled", Duration::from_secs(30), || async {
        let rows = live.get(&list, &ws.token).await.expect(200);
        let r = rows[0].clone();
        if r["enabled"] == false {
            Ok(r)
        } else {
            Err(r.to_string())
        }
    })
    .await;
    assert!(
        row["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("telegram: unauthorized"),
        "{row}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_agents_answer_reaches_the_chat_once_the_queue_delivers_it() {
    let db = TestDb::new().await;
    let fake = Vendors::start().unwrap();
    fake.slack_token("xoxb-busy");
    let server = start(&db, &fake);
    let api = server.api();
    api.ready().await;
    let agent = StubAgent::start(Mode::Busy).unwrap();
    let ws = api.external("busy").await;
    api.register(&ws, &agent.url, &json!({ "name": "busy" })).await;
    let slack = api
        .post(
            &format!("/workspaces/{}/channels", ws.id),
            &ws.token,
            &json!({ "channel_type": "slack", "config": { "bot_token": "xoxb-busy", "channel_id": "CB", "signing_secret": "busy-secret" } }),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = slack_post(
        &api,
        &slack,
        "busy-secret",
        now(),
        &Vendors::slack_event("EvB", "CB", "U1", "while busy"),
    )
    .await;
    assert_eq!(s, 200);
    // The agent said busy: the message waits in its queue.
    #[derive(diesel::QueryableByName)]
    struct S {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
    }
    until("the chat message queued", Duration::from_secs(30), || async {
        let mut conn = db.pool().get().await.unwrap();
        let rows: Vec<S> = diesel::sql_query("SELECT status FROM channel_messages")
            .load(&mut conn)
            .await
            .unwrap();
        (rows.len() == 1 && rows[0].status == "queued").then_some(())
    })
    .await;
    assert!(
        fake.calls_to("slack", "/api/chat.postMessage").is_empty(),
        "nothing answered yet"
    );
    // The agent frees up and says so: the queue delivers, and the answer goes to the chat.
    agent.set(Mode::Echo);
    api.heartbeat(&ws, 0).await.expect(200);
    until_sent("the queued answer in the chat", || {
        fake.calls_to("slack", "/api/chat.postMessage")
            .iter()
            .any(|c| c.body["channel"] == "CB" && c.body["text"] == "echo: while busy")
    })
    .await;
    assert_eq!(
        fake.calls_to("slack", "/api/chat.postMessage").len(),
        1,
        "answered once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_channel_route_reaches_another_workspaces_channel() {
    let db = TestDb::new().await;
    let fake = Vendors::start().unwrap();
    let server = start(&db, &fake);
    let api = server.api();
    api.ready().await;
    let a = api.external("a").await;
    let b = api.external("b").await;
    let config =
        json!({ "channel_type": "slack", "config": { "webhook_url": "https://hooks.slack.com/services/T/B/b" } });
    let b_channel = api
        .post(&format!("/workspaces/{}/channels", b.id), &b.token, &config)
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Every channel route: A's token on A's path with B's channel is "not found"; A's token on
    // B's path is refused outright.
    use reqwest::Method;
    let routes = |ws: &str| {
        let base = format!("/workspaces/{ws}/channels");
        vec![
            (Method::GET, base.clone(), None),
            (Method::POST, base.clone(), Some(config.clone())),
            (
                Method::PATCH,
                format!("{base}/{b_channel}"),
                Some(json!({ "enabled": false })),
            ),
            (
                Method::POST,
                format!("{base}/{b_channel}/send"),
                Some(json!({ "text": "idor" })),
            ),
            (Method::POST, format!("{base}/{b_channel}/test"), Some(json!({}))),
            (Method::DELETE, format!("{base}/{b_channel}"), None),
        ]
    };
    for (method, path, body) in routes(&a.id) {
        if path.ends_with("/channels") {
            continue; // A's own list and create: not B's channel
        }
        let r = api.call(method.clone(), &path, Some(&a.token), body.as_ref()).await;
        assert_eq!(r.status, 404, "{method} {path} as A: {}", r.text);
    }
    assert!(
        api.get(&format!("/workspaces/{}/channels", a.id), &a.token)
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .is_empty()
    );
    for (method, path, body) in routes(&b.id) {
        let r = api.call(method.clone(), &path, Some(&a.token), body.as_ref()).await;
        assert_eq!(r.status, 403, "{method} {path} as A: {}", r.text);
    }
    let b_base = format!("/workspaces/{}/channels", b.id);
    // Nothing reached the vendor and B's channel is as it was.
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
    let rows = api.get(&b_base, &b.token).await.expect(200);
    assert_eq!(rows[0]["enabled"], true);
    // A second channel of the same type is a 409, not a 500.
    api.post(&b_base, &b.token, &config).await.expect(409);
}

#[tokio::test(flavor = "multi_thread")]
async fn org_import_seals_channel_tokens_and_a_pg_dump_shows_none() {
    let db = TestDb::new().await;
    let fake = Vendors::start().unwrap();
    let server = start(&db, &fake);
    let api = server.api();
    api.ready().await;
    let template = format!(
        "name: chat-org\nworkspaces:\n  - name: lead\n    runtime: external\n    channels:\n      - type: telegram\n        config:\n          bot_token: \"{TG_TOKEN}\"\n          chat_id: \"99\"\n      - type: slack\n        config:\n          webhook_url: https://hooks.slack.com/services/T0/B0/orgsecretpath\n          signing_secret: org-signing-secret\n      - type: lark\n        config:\n          webhook_url: \"${{LARK_HOOK}}\"\n      - type: teams\n        config: {{}}\n"
    );
    let done = api
        .admin_post("/org/import", &json!({ "template": template }))
        .await
        .ok();
    let node = &done["workspaces"][0];
    assert_eq!(node["channels"], json!(["telegram", "slack"]), "{done}");
    let skipped = node["channels_skipped"].as_array().unwrap();
    assert!(
        skipped
            .iter()
            .any(|s| s["type"] == "lark" && s["reason"].as_str().unwrap().starts_with("missing env")),
        "{done}"
    );
    assert!(
        skipped
            .iter()
            .any(|s| s["type"] == "teams" && s["reason"] == "unknown adapter"),
        "{done}"
    );
    assert!(
        node.get("ignored").is_none_or(|i| !i.to_string().contains("channels")),
        "{done}"
    );
    // A dump of the whole database holds none of the secrets in clear.
    let dump = std::process::Command::new("/usr/lib/postgresql/15/bin/pg_dump")
        .arg("--data-only")
        .arg(&db.url)
        .output()
        .unwrap();
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("workspace_channels"), "the dump has the table");
    for secret in [TG_TOKEN, "orgsecretpath", "org-signing-secret"] {
        assert!(!dump.contains(secret), "{secret} is in the dump in clear");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn github_webhooks_reach_the_agent_and_trigger_only_that_workspaces_schedules() {
    let Some(python) = crate::a2a_sdk::python() else { return };
    let db = TestDb::new().await;
    let fake = Vendors::start().unwrap();
    // No scheduler tick during the test: a due schedule stays due where the test reads it.
    let server = start_with(&db, &fake, &[("SCHEDULER_POLL_INTERVAL_SECONDS", "3600")]);
    let api = server.api();
    api.ready().await;
    let agent = crate::a2a_sdk::SdkAgent::start(&python, None).await;
    let ws = api.external("gh").await;
    api.register(&ws, &agent.url, &json!({ "name": "gh" })).await;
    let other = api.external("gh-other").await;
    let schedule = |who: &molecule_testkit::Agent, name: &str| {
        let (api, path, token, name) = (
            &api,
            format!("/workspaces/{}/schedules", who.id),
            who.token.clone(),
            name.to_owned(),
        );
        async move {
            api.post(
                &path,
                &token,
                &json!({ "name": name, "cron_expr": "0 3 1 1 *", "prompt": "work" }),
            )
            .await
            .expect(201);
        }
    };
    schedule(&ws, "Pick-up-work daily").await;
    schedule(&ws, "unrelated").await;
    schedule(&other, "pick-up-work too").await;
    let send = |event: &str, body: &Value, signature: Option<String>| {
        let raw = body.to_string().into_bytes();
        let signature = signature.unwrap_or_else(|| Vendors::github_sign(GH_SECRET, &raw));
        let headers = vec![
            ("X-GitHub-Event".to_owned(), event.to_owned()),
            ("X-GitHub-Delivery".to_owned(), format!("d-{event}")),
            ("X-Hub-Signature-256".to_owned(), signature),
        ];
        let (api, path) = (&api, format!("/webhooks/github/{}", ws.id));
        async move { post_raw(api, &path, &headers, "application/json", &raw).await }
    };
    let comment = json!({ "action": "created", "issue": { "number": 7 }, "repository": { "full_name": "o/r" },
        "sender": { "login": "ada" }, "comment": { "body": "please look", "user": { "login": "ada" }, "html_url": "https://x" } });
    let (s, v) = send("issue_comment", &comment, None).await;
    assert_eq!(s, 200, "{v}");
    assert!(
        v.to_string()
            .contains("sdk echo: GitHub issue_comment event (created) in o/r issue #7 by ada"),
        "{v}"
    );
    assert_eq!(agent.received("github-").get("github-d-issue_comment"), Some(&1));
    let (s, v) = send("issue_comment", &comment, Some("sha256=00".into())).await;
    assert_eq!((s, v), (401, json!({ "error": "invalid webhook signature" })));
    assert_eq!(
        agent.received("github-").len(),
        1,
        "the forged delivery reached nothing"
    );
    // issues opened: this workspace's pick-up-work schedule is due now; the other's is not.
    let due = |who: &molecule_testkit::Agent| {
        let (api, path, token) = (&api, format!("/workspaces/{}/schedules", who.id), who.token.clone());
        async move {
            api.get(&path, &token)
                .await
                .expect(200)
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap().to_owned(),
                        s["next_run_at"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let (mine_before, others_before) = (due(&ws).await, due(&other).await);
    let (s, v) = send("issues", &json!({ "action": "opened", "issue": { "number": 8 } }), None).await;
    assert_eq!((s, &v["schedules_affected"]), (200, &json!(1)), "{v}");
    let mine_after = due(&ws).await;
    assert_ne!(mine_after, mine_before, "the workspace's pick-up-work schedule moved");
    assert_eq!(
        mine_after.iter().find(|(n, _)| n == "unrelated"),
        mine_before.iter().find(|(n, _)| n == "unrelated")
    );
    assert_eq!(
        due(&other).await,
        others_before,
        "another workspace's schedules are untouched"
    );
    let (s, v) = send("ping", &json!({ "zen": "hi" }), None).await;
    assert_eq!((s, &v["status"]), (202, &json!("ignored")));
}
