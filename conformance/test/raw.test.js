// Raw wire checks with fetch, no Bayeux library.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { BayeuxServer, exitWatchdog, sleep } from "../lib/server.js";
import { CookieJar, RawSession, get, handshakeMessage, post, replyFor, show } from "../lib/raw.js";

const T = { timeout: 30000 };

let server;
let small; // server started with BAYEUX_MAX_MESSAGE_SIZE=1024

describe("raw Bayeux over HTTP", () => {
    before(async () => {
        server = new BayeuxServer();
        small = new BayeuxServer({ env: { BAYEUX_MAX_MESSAGE_SIZE: "1024" } });
        await Promise.all([server.start(), small.start()]);
    });

    after(async () => {
        await Promise.all([server?.close(), small?.close()]);
        exitWatchdog();
    });

    test("handshake reply: successful, clientId, version, connection types, advice, echoed id, cookie", T, async () => {
        const jar = new CookieJar();
        const r = await post(server.url, [handshakeMessage("hs1")], { jar });
        assert.equal(r.status, 200, show(r));
        assert.match(r.contentType, /^application\/json/, show(r));
        assert.ok(Array.isArray(r.json), `response is not a JSON array: ${show(r)}`);
        const hs = r.json[0];
        assert.equal(hs.channel, "/meta/handshake", show(r));
        assert.equal(hs.successful, true, show(r));
        assert.equal(hs.id, "hs1", `id not echoed: ${show(r)}`);
        assert.equal(typeof hs.clientId, "string", show(r));
        assert.ok(hs.clientId.length >= 20, `clientId too short: ${show(r)}`);
        assert.equal(typeof hs.version, "string", show(r));
        assert.ok(Array.isArray(hs.supportedConnectionTypes) && hs.supportedConnectionTypes.includes("long-polling"), show(r));
        assert.equal(typeof hs.advice, "object", show(r));
        assert.equal(hs.advice.reconnect, "retry", show(r));
        assert.equal(hs.advice.interval, 0, show(r));
        assert.equal(typeof hs.advice.timeout, "number", show(r));
        assert.ok(jar.cookies.has("BAYEUX_BROWSER"), `no BAYEUX_BROWSER cookie set: ${JSON.stringify(r.setCookies)}`);
    });

    test("a single bare object is accepted and answered with an array", T, async () => {
        const r = await post(server.url, handshakeMessage("bare"));
        assert.equal(r.status, 200, show(r));
        assert.ok(Array.isArray(r.json), show(r));
        assert.equal(replyFor(r, "/meta/handshake", "bare")?.successful, true, show(r));
    });

    test("first connect with advice.timeout=0 is answered immediately", T, async () => {
        const s = new RawSession(server.url);
        await s.handshake();
        const r = await s.connect({ timeout: 0 });
        assert.equal(r.status, 200, show(r));
        const c = replyFor(r, "/meta/connect");
        assert.ok(c, show(r));
        assert.equal(c.successful, true, show(r));
        assert.equal(c.id, "2", `id not echoed: ${show(r)}`);
        assert.ok(r.ms < 2000, `connect with timeout:0 took ${r.ms} ms`);
        await s.disconnect();
    });

    test("connect with an unknown clientId: 402::session_unknown + reconnect:handshake", T, async () => {
        const s = new RawSession(server.url);
        await s.handshake(); // real cookie, bogus clientId
        s.clientId = "doesnotexist0000000000000000";
        const r = await s.connect({ timeout: 0 });
        assert.equal(r.status, 200, show(r));
        const c = replyFor(r, "/meta/connect");
        assert.ok(c, show(r));
        assert.equal(c.successful, false, show(r));
        assert.equal(c.error, "402::session_unknown", show(r));
        assert.equal(c.advice?.reconnect, "handshake", show(r));
        assert.equal(c.id, "2", `id not echoed: ${show(r)}`);
    });

    test("connect without any cookie for a real clientId is refused (session bound to browser cookie)", T, async () => {
        const s = new RawSession(server.url);
        await s.handshake();
        const r = await post(server.url, [{ id: "x1", channel: "/meta/connect", clientId: s.clientId, connectionType: "long-polling", advice: { timeout: 0 } }]);
        assert.equal(r.status, 200, show(r));
        const c = replyFor(r, "/meta/connect");
        assert.equal(c?.successful, false, show(r));
        assert.match(String(c?.error), /^402/, show(r));
        assert.equal(c?.advice?.reconnect, "handshake", show(r));
        await s.disconnect();
    });

    test("handshake batched with a connect is refused and creates no session", T, async () => {
        const r = await post(server.url, [
            handshakeMessage("b1"),
            { id: "b2", channel: "/meta/connect", clientId: "whatever0000000000000000", connectionType: "long-polling" },
        ]);
        if (r.status === 400) return; // accepted: protocol violation as HTTP 400
        assert.equal(r.status, 200, `expected 400, or 200 with an unsuccessful handshake: ${show(r)}`);
        assert.ok(Array.isArray(r.json), show(r));
        const hs = replyFor(r, "/meta/handshake");
        assert.ok(hs, `no handshake reply: ${show(r)}`);
        assert.equal(hs.successful, false, `batched handshake was accepted: ${show(r)}`);
        assert.ok(!r.json.some((m) => typeof m.clientId === "string" && m.successful === true), `a session was created: ${show(r)}`);
    });

    test("form-encoded POST message=<json> works", T, async () => {
        const jar = new CookieJar();
        const hsBody = "message=" + encodeURIComponent(JSON.stringify([handshakeMessage("f1")]));
        const r = await post(server.url, hsBody, { jar, contentType: "application/x-www-form-urlencoded" });
        assert.equal(r.status, 200, show(r));
        const hs = replyFor(r, "/meta/handshake", "f1");
        assert.equal(hs?.successful, true, show(r));

        const cBody = "message=" + encodeURIComponent(JSON.stringify([
            { id: "f2", channel: "/meta/connect", clientId: hs.clientId, connectionType: "long-polling", advice: { timeout: 0 } },
        ]));
        const r2 = await post(server.url, cBody, { jar, contentType: "application/x-www-form-urlencoded" });
        assert.equal(r2.status, 200, show(r2));
        assert.equal(replyFor(r2, "/meta/connect", "f2")?.successful, true, show(r2));
    });

    test("callback-polling: GET ?jsonp=cb123&message=... returns cb123([...]) as text/javascript", T, async () => {
        const jar = new CookieJar();
        const msg = encodeURIComponent(JSON.stringify([handshakeMessage("j1", { supportedConnectionTypes: ["callback-polling"] })]));
        const r = await get(`${server.url}?jsonp=cb123&message=${msg}`, { jar });
        assert.equal(r.status, 200, show(r));
        assert.match(r.contentType, /^text\/javascript/, show(r));
        // A leading /**/ comment (the usual guard against content sniffing, e.g. Rosetta Flash) is fine.
        const m = /^\s*(?:\/\*\*\/\s*)?cb123\(([\s\S]*)\)\s*;?\s*$/.exec(r.text);
        assert.ok(m, `not a cb123(...) call: ${show(r)}`);
        const replies = JSON.parse(m[1]);
        assert.ok(Array.isArray(replies), show(r));
        const hs = replies.find((x) => x.channel === "/meta/handshake");
        assert.equal(hs?.successful, true, show(r));
        assert.equal(hs.id, "j1", show(r));

        const cmsg = encodeURIComponent(JSON.stringify([
            { id: "j2", channel: "/meta/connect", clientId: hs.clientId, connectionType: "callback-polling", advice: { timeout: 0 } },
        ]));
        const r2 = await get(`${server.url}/connect?jsonp=cb124&message=${cmsg}`, { jar });
        assert.equal(r2.status, 200, show(r2));
        const m2 = /^\s*(?:\/\*\*\/\s*)?cb124\(([\s\S]*)\)\s*;?\s*$/.exec(r2.text);
        assert.ok(m2, show(r2));
        const c = JSON.parse(m2[1]).find((x) => x.channel === "/meta/connect");
        assert.equal(c?.successful, true, show(r2));
    });

    test("invalid jsonp callback name is rejected with 400", T, async () => {
        const msg = encodeURIComponent(JSON.stringify([handshakeMessage("j3")]));
        const r = await get(`${server.url}?jsonp=${encodeURIComponent("alert(1)")}&message=${msg}`);
        assert.equal(r.status, 400, show(r));
        assert.ok(!r.text.includes("alert(1)("), `callback reflected: ${show(r)}`);
    });

    test("invalid JSON is rejected with 400", T, async () => {
        const r = await post(server.url, '[{"channel":"/meta/handshake",', {});
        assert.equal(r.status, 400, show(r));
    });

    test("a body bigger than BAYEUX_MAX_MESSAGE_SIZE gets 413, and the server keeps working", T, async () => {
        const big = [handshakeMessage("big", { ext: { pad: "x".repeat(4096) } })];
        const r = await post(small.url, big);
        assert.equal(r.status, 413, show(r));

        // Form-encoded too.
        const form = "message=" + encodeURIComponent(JSON.stringify(big));
        const rf = await post(small.url, form, { contentType: "application/x-www-form-urlencoded" });
        assert.equal(rf.status, 413, show(rf));

        const s = new RawSession(small.url);
        const hs = await s.handshake();
        assert.equal(hs.reply.successful, true);
        const c = await s.connect({ timeout: 0 });
        assert.equal(replyFor(c, "/meta/connect")?.successful, true, show(c));
        await s.disconnect();
    });

    test("member names are exact: a message whose only channel member is misspelt is refused and reaches nobody", T, async () => {
        const sub = new RawSession(server.url);
        await sub.handshake();
        assert.equal(replyFor(await sub.connect({ timeout: 0 }), "/meta/connect")?.successful, true);
        assert.equal(replyFor(await sub.subscribe("/conf/keys"), "/meta/subscribe")?.successful, true);
        const pub = new RawSession(server.url);
        await pub.handshake();

        for (const [id, name] of [["k1", "ChAnnel"], ["k2", "CHANNEL"], ["k3", "channeL"]]) {
            const r = await pub.send([{ id, [name]: "/conf/keys", clientId: pub.clientId, data: { via: name } }]);
            assert.equal(r.status, 200, show(r));
            const reply = Array.isArray(r.json) ? r.json.find((m) => m.id === id) : undefined;
            assert.ok(reply, `no reply to ${name}: ${show(r)}`);
            assert.equal(reply.successful, false, `${name} accepted: ${show(r)}`);
            assert.equal(reply.error, "400::channel_missing", show(r));
        }
        // A member twice is ambiguous: the request is refused as a whole.
        const twice = await pub.send(`[{"id":"k5","channel":"/conf/other","channel":"/conf/keys","clientId":${JSON.stringify(pub.clientId)},"data":{"via":"twice"}}]`);
        assert.equal(twice.status, 400, `a member twice: ${show(twice)}`);
        // Invalid UTF-8 in data: refused, never forwarded.
        const bad = Buffer.concat([Buffer.from(`[{"id":"k6","channel":"/conf/keys","clientId":${JSON.stringify(pub.clientId)},"data":"caf`), Buffer.from([0xe9]), Buffer.from(`"}]`)]);
        const utf = await pub.send(new Uint8Array(bad));
        assert.equal(utf.status, 400, `invalid UTF-8: ${show(utf)}`);

        assert.equal(replyFor(await pub.publish("/conf/keys", { via: "channel" }), "/conf/keys")?.successful, true);
        const r = await sub.connect({ timeout: 0 });
        const got = (r.json || []).filter((m) => m.channel === "/conf/keys").map((m) => m.data);
        assert.deepStrictEqual(got, [{ via: "channel" }], `deliveries: ${show(r)}`);
        await sub.disconnect();
        await pub.disconnect();
    });

    test("a batch over BAYEUX_MAX_BATCH is refused with 400", T, async () => {
        const s = new RawSession(server.url);
        await s.handshake();
        const msgs = Array.from({ length: 300 }, (_, i) => ({ id: `b${i}`, channel: "/conf/batch", clientId: s.clientId, data: i }));
        const r = await s.send(msgs);
        assert.equal(r.status, 400, show(r));
        assert.match(r.text, /more than 256 messages/, show(r));
        await s.disconnect();
    });

    test("broadcast deliveries carry no clientId and no id; events come before replies", T, async () => {
        const sub = new RawSession(server.url);
        await sub.handshake();
        assert.equal(replyFor(await sub.connect({ timeout: 0 }), "/meta/connect")?.successful, true);
        const sr = await sub.subscribe("/conf/raw");
        const sreply = replyFor(sr, "/meta/subscribe");
        assert.equal(sreply?.successful, true, show(sr));
        assert.equal(sreply.subscription, "/conf/raw", `subscription not echoed: ${show(sr)}`);

        const pub = new RawSession(server.url);
        await pub.handshake();

        // Held connect for the subscriber, then publish from another session.
        const held = sub.connect({ timeoutMs: 15000 });
        await sleep(300);
        const data = { text: "raw", n: 1 };
        const pr = await pub.publish("/conf/raw", data, { id: "pub77" });
        const preply = replyFor(pr, "/conf/raw", "pub77");
        assert.equal(preply?.successful, true, `publish reply: ${show(pr)}`);

        const r = await held;
        assert.equal(r.status, 200, show(r));
        assert.ok(r.ms < 10000, `held connect was not woken by the delivery (${r.ms} ms): ${show(r)}`);
        assert.ok(Array.isArray(r.json), show(r));
        const ev = r.json.find((m) => m.channel === "/conf/raw");
        assert.ok(ev, `no delivery in the connect response: ${show(r)}`);
        assert.deepStrictEqual(ev.data, data);
        assert.ok(!("clientId" in ev), `delivery has clientId: ${JSON.stringify(ev)}`);
        assert.ok(!("id" in ev), `delivery has id: ${JSON.stringify(ev)}`);
        const idxEvent = r.json.indexOf(ev);
        const idxConnect = r.json.findIndex((m) => m.channel === "/meta/connect");
        assert.ok(idxConnect >= 0, `no connect reply: ${show(r)}`);
        assert.ok(idxEvent < idxConnect, `events must precede the connect reply: ${show(r)}`);

        await sub.disconnect();
        await pub.disconnect();
    });
});
