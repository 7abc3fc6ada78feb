// Scenarios 1-8 with the real CometD JavaScript client (npm "cometd" 9, ESM) in
// Node via "cometd-nodejs-client" (XMLHttpRequest and WebSocket shims), over
// long-polling (test/cometd.test.js) or WebSocket (test/cometd-websocket.test.js).
//
// cometd-nodejs-client keeps ONE cookie jar per process, so all clients below share
// the BAYEUX_BROWSER cookie (tabs of one browser). With the server's default of one
// held connect per browser, the extra sessions get `multiple-clients` advice and poll
// every 2 s; deliveries to them take up to ~2 s, which the 5 s waits allow for.

import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { WebSocket } from "ws";

import { BayeuxServer, exitWatchdog, sleep, waitFor, withTimeout } from "./server.js";
import { post, show } from "./raw.js";
import {
    cometdCookieHeader,
    cometdDeliveries,
    cometdDisconnect,
    cometdHandshake,
    cometdPublish,
    cometdRemoteCall,
    cometdSubscribe,
    cometdUnsubscribe,
    createCometD,
    disconnectAllCometD,
} from "./clients.js";
import { RICH_PAYLOAD } from "./payload.js";

const T = { timeout: 30000 };

let server;
let transport = "long-polling";

async function connected(name) {
    const c = createCometD(server.url, name, transport);
    const reply = await cometdHandshake(c);
    assert.equal(reply.successful, true, `handshake failed: ${JSON.stringify(reply)}`);
    // Wait for the first /meta/connect reply, so the long poll is established.
    await waitFor(() => c.wire.in.some((m) => m.channel === "/meta/connect" && m.successful === true), 5000,
        () => `first successful /meta/connect reply; received: ${JSON.stringify(c.wire.in)}`);
    return c;
}

function assertSubscribed(result, channel) {
    assert.equal(result.reply.successful, true, `subscribe to ${channel} refused: ${JSON.stringify(result.reply)}`);
}

/**
 * Scenario 7 over WebSocket: the session lives on its socket (the ws shim
 * keeps no cookies), so the checks go through the client, and the refusal
 * after disconnect through a fresh raw socket.
 */
async function refusedOverWebSocket(a, clientId) {
    const ok = await cometdPublish(a, "/conf/room", { raw: 1 });
    assert.equal(ok.successful, true, JSON.stringify(ok));

    const ws = new WebSocket(server.url.replace(/^http/, "ws"));
    const inbox = [];
    ws.on("message", (b) => inbox.push(...JSON.parse(String(b))));
    const reply = async (id) => {
        await waitFor(() => inbox.some((m) => m.id === id), 5000, () => `raw WebSocket reply ${id}; got ${JSON.stringify(inbox)}`);
        return inbox.find((m) => m.id === id);
    };
    try {
        await withTimeout(new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); }), 5000, "raw WebSocket open");
        // The CometD client refuses meta publishes itself: send them raw, from a session of their own.
        ws.send(JSON.stringify([{ id: "900", channel: "/meta/handshake", version: "1.0", supportedConnectionTypes: ["websocket"] }]));
        const hs = await reply("900");
        assert.equal(hs.successful, true, JSON.stringify(hs));
        ws.send(JSON.stringify([{ id: "901", channel: "/meta/foo", clientId: hs.clientId, data: {} }]));
        const mp = await reply("901");
        assert.equal(mp.successful, false, `publish to /meta/foo: ${JSON.stringify(mp)}`);
        assert.equal(typeof mp.error, "string", JSON.stringify(mp));
        ws.send(JSON.stringify([{ id: "902", channel: "/meta/subscribe", clientId: hs.clientId, subscription: "/meta/*" }]));
        const ms = await reply("902");
        assert.equal(ms.successful, false, `subscribe to /meta/*: ${JSON.stringify(ms)}`);

        const dr = await cometdDisconnect(a);
        assert.equal(dr?.successful, true, `disconnect reply: ${JSON.stringify(dr)}`);

        // The old clientId is refused (this socket is bound to its own session, so use a new one).
        const ws2 = new WebSocket(server.url.replace(/^http/, "ws"));
        try {
            await withTimeout(new Promise((resolve, reject) => { ws2.once("open", resolve); ws2.once("error", reject); }), 5000, "raw WebSocket open");
            const r = withTimeout(new Promise((resolve) => ws2.once("message", (b) => resolve(JSON.parse(String(b))))), 5000, "raw WebSocket reply");
            ws2.send(JSON.stringify([{ id: "903", channel: "/conf/room", clientId, data: { after: "disconnect" } }]));
            const msgs = await r;
            const m = msgs.find((x) => x.channel === "/conf/room");
            assert.ok(m, `no /conf/room reply: ${JSON.stringify(msgs)}`);
            assert.equal(m.successful, false, JSON.stringify(msgs));
            assert.match(String(m.error), /^402/, JSON.stringify(msgs));
            assert.equal(m.advice?.reconnect, "handshake", JSON.stringify(msgs));
        } finally {
            ws2.close();
        }
    } finally {
        ws.close();
    }
}

/**
 * Defines scenarios 1-8 for the CometD client over the given transport
 * ("long-polling" or "websocket").
 */
export function cometdScenarios(which) {
transport = which;
describe(`CometD JS client (${which})`, () => {
    before(async () => {
        server = new BayeuxServer();
        await server.start();
    });

    afterEach(async () => {
        await disconnectAllCometD();
    });

    after(async () => {
        await disconnectAllCometD();
        if (server) await server.close();
        exitWatchdog();
    });

    test("1. handshake succeeds and returns a clientId of >= 20 chars", T, async () => {
        const c = createCometD(server.url, undefined, transport);
        const reply = await cometdHandshake(c);
        assert.equal(reply.successful, true, `handshake reply: ${JSON.stringify(reply)}`);
        assert.equal(typeof reply.clientId, "string");
        assert.ok(reply.clientId.length >= 20, `clientId too short: ${JSON.stringify(reply.clientId)}`);
        assert.equal(c.getClientId(), reply.clientId);
        await waitFor(() => c.getStatus() === "connected" &&
            c.wire.in.some((m) => m.channel === "/meta/connect" && m.successful === true), 5000,
        () => `connected status; wire: ${JSON.stringify(c.wire.in)}`);
        if (transport === "websocket") {
            assert.equal(c.getTransport().type, "websocket", "the client did not stay on websocket");
        } else {
            // The handshake request went to <url>/handshake (appendMessageTypeToURL): the server accepted the sub-path.
            const cookie = cometdCookieHeader();
            assert.match(cookie, /BAYEUX_BROWSER=/, `no BAYEUX_BROWSER cookie kept by cometd-nodejs-client: ${JSON.stringify(cookie)}`);
        }
    });

    test("2. two clients exchange a rich payload", T, async () => {
        const a = await connected("A");
        const b = await connected("B");
        const got = [];
        assertSubscribed(await cometdSubscribe(a, "/conf/room", (m) => got.push(m)), "/conf/room");
        const reply = await cometdPublish(b, "/conf/room", RICH_PAYLOAD);
        assert.equal(reply.successful, true, `publish reply: ${JSON.stringify(reply)}`);
        await waitFor(() => got.length >= 1, 5000, "delivery on /conf/room");
        assert.equal(got[0].channel, "/conf/room");
        assert.deepStrictEqual(got[0].data, RICH_PAYLOAD);
        await sleep(200);
        assert.equal(got.length, 1, `expected exactly one delivery, got ${JSON.stringify(got)}`);
    });

    test("3. wildcard subscriptions: * is one segment, ** is many, no duplicate copies", T, async () => {
        const pub = await connected("pub");
        const one = await connected("one-star");
        const two = await connected("two-stars");
        const gotOne = [];
        const gotTwo = [];
        assertSubscribed(await cometdSubscribe(one, "/conf/w/*", (m) => gotOne.push(m.channel)), "/conf/w/*");
        assertSubscribed(await cometdSubscribe(two, "/conf/w/**", (m) => gotTwo.push(m.channel)), "/conf/w/**");
        assertSubscribed(await cometdSubscribe(one, "/conf/sentinel/w", (m) => gotOne.push(m.channel)), "/conf/sentinel/w");
        assertSubscribed(await cometdSubscribe(two, "/conf/sentinel/w", (m) => gotTwo.push(m.channel)), "/conf/sentinel/w");

        for (const ch of ["/conf/w/a", "/conf/w/a/b", "/conf/sentinel/w"]) {
            const r = await cometdPublish(pub, ch, { ch });
            assert.equal(r.successful, true, `publish to ${ch}: ${JSON.stringify(r)}`);
        }
        await waitFor(() => gotOne.includes("/conf/sentinel/w") && gotTwo.includes("/conf/sentinel/w"), 5000,
            () => `sentinel at both subscribers; one=${JSON.stringify(gotOne)} two=${JSON.stringify(gotTwo)}`);
        assert.deepStrictEqual(gotOne, ["/conf/w/a", "/conf/sentinel/w"], "subscriber on /conf/w/*");
        assert.deepStrictEqual(gotTwo, ["/conf/w/a", "/conf/w/a/b", "/conf/sentinel/w"], "subscriber on /conf/w/**");

        // One session subscribed to both /conf/x/* and /conf/x/y gets ONE copy (the client fans out locally).
        const both = await connected("both");
        const viaStar = [];
        const viaExact = [];
        assertSubscribed(await cometdSubscribe(both, "/conf/x/*", (m) => viaStar.push(m.channel)), "/conf/x/*");
        assertSubscribed(await cometdSubscribe(both, "/conf/x/y", (m) => viaExact.push(m.channel)), "/conf/x/y");
        assert.equal((await cometdPublish(pub, "/conf/x/y", { n: 1 })).successful, true);
        assert.equal((await cometdPublish(pub, "/conf/x/sentinel", { n: 2 })).successful, true);
        await waitFor(() => viaStar.includes("/conf/x/sentinel"), 5000, "sentinel on /conf/x/*");
        await sleep(300);
        const wireCopies = cometdDeliveries(both, "/conf/x/y");
        assert.equal(wireCopies.length, 1, `server sent ${wireCopies.length} copies of /conf/x/y: ${JSON.stringify(wireCopies)}`);
        assert.deepStrictEqual(viaExact, ["/conf/x/y"]);
        assert.deepStrictEqual(viaStar, ["/conf/x/y", "/conf/x/sentinel"]);
    });

    test("4. unsubscribe stops deliveries", T, async () => {
        const a = await connected("A");
        const b = await connected("B");
        const got = [];
        const { subscription } = await cometdSubscribe(a, "/conf/unsub/a", (m) => got.push(m.data));
        const sentinel = [];
        assertSubscribed(await cometdSubscribe(a, "/conf/unsub/sentinel", (m) => sentinel.push(m.data)), "/conf/unsub/sentinel");

        assert.equal((await cometdPublish(b, "/conf/unsub/a", { n: 1 })).successful, true);
        await waitFor(() => got.length === 1, 5000, "first delivery before unsubscribe");

        const ur = await cometdUnsubscribe(a, subscription);
        assert.equal(ur.successful, true, `unsubscribe reply: ${JSON.stringify(ur)}`);

        assert.equal((await cometdPublish(b, "/conf/unsub/a", { n: 2 })).successful, true);
        assert.equal((await cometdPublish(b, "/conf/unsub/sentinel", { n: 3 })).successful, true);
        await waitFor(() => sentinel.length === 1, 5000, "sentinel after unsubscribe");
        await sleep(200);
        // Count on the wire: the CometD client drops messages for removed listeners locally, which would hide a server bug.
        const wire = cometdDeliveries(a, "/conf/unsub/a");
        assert.equal(wire.length, 1, `server still delivered after unsubscribe: ${JSON.stringify(wire)}`);
        assert.deepStrictEqual(got, [{ n: 1 }]);
    });

    test("5. a batch of 10 publishes arrives complete and in order", T, async () => {
        const sub = await connected("sub");
        const pub = await connected("pub");
        const got = [];
        assertSubscribed(await cometdSubscribe(sub, "/conf/batch", (m) => got.push(m.data.i)), "/conf/batch");
        const replies = [];
        const outBefore = pub.wire.out.length;
        pub.batch(() => {
            for (let i = 0; i < 10; i++) pub.publish("/conf/batch", { i }, (r) => replies.push(r));
        });
        await waitFor(() => replies.length === 10, 5000, () => `10 publish replies, got ${JSON.stringify(replies)}`);
        assert.ok(replies.every((r) => r.successful === true), `publish replies: ${JSON.stringify(replies)}`);
        assert.equal(pub.wire.out.length - outBefore, 10);
        await waitFor(() => got.length >= 10, 5000, () => `10 deliveries, got ${JSON.stringify(got)}`);
        await sleep(200);
        assert.deepStrictEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });

    test("6. /service/echo: remoteCall and publish round trips, never broadcast", T, async () => {
        const a = await connected("caller");
        const b = await connected("bystander");
        const bEcho = [];
        const bSentinel = [];
        // b subscribes to /service/echo (the server accepts it as a no-op) and to a sentinel channel.
        await cometdSubscribe(b, "/service/echo", (m) => bEcho.push(m));
        assertSubscribed(await cometdSubscribe(b, "/conf/svc/sentinel", (m) => bSentinel.push(m)), "/conf/svc/sentinel");

        const data = { q: "ping", n: 7, nested: { ok: true } };
        const rc = await cometdRemoteCall(a, "echo", data, 5000);
        assert.notEqual(rc.successful, false, `remoteCall failed: ${JSON.stringify(rc)}`);
        assert.deepStrictEqual(rc.data, data, `remoteCall reply: ${JSON.stringify(rc)}`);

        // Plain publish to /service/echo: successful publish callback, and the echo comes back to the caller.
        const aEcho = [];
        a.addListener("/service/echo", (m) => aEcho.push(m));
        const data2 = { q: "plain", arr: [1, 2, 3] };
        const pr = await cometdPublish(a, "/service/echo", data2);
        assert.equal(pr.successful, true, `publish to /service/echo: ${JSON.stringify(pr)}`);
        await waitFor(() => aEcho.length >= 1, 5000,
            () => `echo of the plain publish back to the caller; wire: ${JSON.stringify(a.wire.in.slice(-10))}`);
        assert.deepStrictEqual(aEcho[0].data, data2);

        assert.equal((await cometdPublish(a, "/conf/svc/sentinel", { done: true })).successful, true);
        await waitFor(() => bSentinel.length === 1, 5000, "sentinel at the bystander");
        await sleep(200);
        const leaked = cometdDeliveries(b, "/service/echo");
        assert.equal(leaked.length, 0, `service message broadcast to another session: ${JSON.stringify(leaked)}`);
        assert.equal(bEcho.length, 0);
    });

    test("6b. /service/echo: remoteCall and publish callbacks each run once, and the connection stays healthy", T, async () => {
        // CometD matches a remote call's result by id (a message with data), a publish's
        // callback by id (a reply without data), and over WebSocket it closes the socket
        // when a message it sent gets no data-less reply within maxNetworkDelay.
        const maxNetworkDelay = 1500;
        const c = createCometD(server.url, "once", transport);
        c.configure({ maxNetworkDelay });
        const unsuccessful = [];
        c.addListener("/meta/unsuccessful", (m) => unsuccessful.push(m));
        const hs = await cometdHandshake(c);
        assert.equal(hs.successful, true, JSON.stringify(hs));
        await waitFor(() => c.wire.in.some((m) => m.channel === "/meta/connect" && m.successful === true), 5000, "first connect reply");

        const calls = [];
        const pubs = [];
        const echoes = [];
        c.addListener("/service/echo", (m) => echoes.push(m.data));
        c.remoteCall("echo", { rc: 1 }, 5000, (r) => calls.push(r));
        c.publish("/service/echo", { pub: 1 }, (r) => pubs.push(r));
        await waitFor(() => calls.length >= 1 && pubs.length >= 1, 5000,
            () => `remoteCall and publish callbacks; wire: ${JSON.stringify(c.wire.in.slice(-10))}`);
        // Past maxNetworkDelay: a message left without its reply would fail by now.
        await sleep(maxNetworkDelay + 500);
        const sentinel = await cometdRemoteCall(c, "echo", { sentinel: 1 }, 5000);
        assert.deepStrictEqual(sentinel.data, { sentinel: 1 }, JSON.stringify(sentinel));

        assert.equal(calls.length, 1, `remoteCall callback ran ${calls.length} times: ${JSON.stringify(calls)}`);
        assert.equal(calls[0].successful, true, JSON.stringify(calls[0]));
        assert.deepStrictEqual(calls[0].data, { rc: 1 });
        assert.equal(pubs.length, 1, `publish callback ran ${pubs.length} times: ${JSON.stringify(pubs)}`);
        assert.equal(pubs[0].successful, true, JSON.stringify(pubs[0]));
        assert.deepStrictEqual(echoes, [{ pub: 1 }], "the published echo reaches the /service/echo listener once");
        assert.deepStrictEqual(unsuccessful, [], `failed messages: ${JSON.stringify(unsuccessful)}`);
        assert.equal(c.wire.in.filter((m) => m.channel === "/meta/handshake").length, 1, "the client handshook again");
        // Each request message got exactly one reply (a message with successful and no data).
        for (const sent of c.wire.out.filter((m) => m.channel === "/service/echo")) {
            const replies = c.wire.in.filter((m) => m.id === sent.id && m.successful !== undefined && m.data === undefined);
            assert.equal(replies.length, 1, `replies to ${JSON.stringify(sent)}: ${JSON.stringify(replies)}`);
        }
    });

    test("7. after disconnect the old clientId is refused (402); meta publish/subscribe refused", T, async () => {
        const a = await connected("A");
        const clientId = a.getClientId();
        if (transport === "websocket") {
            await refusedOverWebSocket(a, clientId);
            return;
        }
        const cookie = cometdCookieHeader();
        const headers = { Cookie: cookie };

        // Sanity: with the same cookie and clientId, a raw publish is accepted while the session lives.
        const ok = await post(server.url, [{ id: "900", channel: "/conf/room", clientId, data: { raw: 1 } }], { headers });
        assert.equal(ok.status, 200, show(ok));
        assert.equal(ok.json?.find((m) => m.id === "900")?.successful, true, `raw publish with live session: ${show(ok)}`);

        // Publishing to a meta channel: a Bayeux error, HTTP 200, never 500.
        const metaPub = await post(server.url, [{ id: "901", channel: "/meta/foo", clientId, data: {} }], { headers });
        assert.equal(metaPub.status, 200, `publish to /meta/foo: ${show(metaPub)}`);
        const mp = metaPub.json?.find((m) => m.id === "901");
        assert.ok(mp, `no reply to publish on /meta/foo: ${show(metaPub)}`);
        assert.equal(mp.successful, false, show(metaPub));
        assert.equal(typeof mp.error, "string", show(metaPub));

        // Subscribing to /meta/*: refused.
        const metaSub = await post(server.url, [{ id: "902", channel: "/meta/subscribe", clientId, subscription: "/meta/*" }], { headers });
        assert.equal(metaSub.status, 200, `subscribe to /meta/*: ${show(metaSub)}`);
        const ms = metaSub.json?.find((m) => m.id === "902");
        assert.ok(ms, `no reply to subscribe /meta/*: ${show(metaSub)}`);
        assert.equal(ms.successful, false, show(metaSub));

        const dr = await cometdDisconnect(a);
        assert.equal(dr?.successful, true, `disconnect reply: ${JSON.stringify(dr)}`);

        const r = await post(server.url, [{ id: "903", channel: "/conf/room", clientId, data: { after: "disconnect" } }], { headers });
        assert.equal(r.status, 200, `publish after disconnect: ${show(r)}`);
        assert.ok(Array.isArray(r.json), show(r));
        const m = r.json.find((x) => x.channel === "/conf/room");
        assert.ok(m, `no /conf/room reply: ${show(r)}`);
        assert.equal(m.successful, false, show(r));
        assert.match(String(m.error), /^402/, show(r));
        assert.equal(m.advice?.reconnect, "handshake", show(r));
    });

    test("8. server restart: client re-handshakes, re-subscribes and receives new messages", { timeout: 60000 }, async () => {
        const a = createCometD(server.url, "restart-A", transport);
        const got = [];
        const handshakes = [];
        const subscribeReplies = [];
        // The CometD way: (re-)subscribe in a /meta/handshake listener on every successful handshake.
        a.addListener("/meta/handshake", (reply) => {
            handshakes.push(reply);
            if (reply.successful) {
                a.subscribe("/conf/restart", (m) => got.push(m.data), (r) => subscribeReplies.push(r));
            }
        });
        const first = await cometdHandshake(a);
        assert.equal(first.successful, true, JSON.stringify(first));
        await waitFor(() => subscribeReplies.some((r) => r.successful), 5000, "initial subscription");
        const oldClientId = a.getClientId();

        const stopped = await server.restart();
        assert.equal(stopped.forced, false, `server did not exit within 10 s of SIGTERM (had to SIGKILL): stderr:\n${server.stderr}`);
        assert.equal(stopped.code, 0, `server exit after SIGTERM: ${JSON.stringify(stopped)}; stderr:\n${server.stderr}`);

        await waitFor(() => handshakes.some((h) => h.successful && h.reestablish === true), 30000,
            () => `re-handshake after restart; handshake replies: ${JSON.stringify(handshakes)}; last wire in: ${JSON.stringify(a.wire.in.slice(-5))}`);
        assert.notEqual(a.getClientId(), oldClientId);
        await waitFor(() => subscribeReplies.filter((r) => r.successful).length >= 2, 10000,
            () => `re-subscription after restart; subscribe replies: ${JSON.stringify(subscribeReplies)}`);

        const b = await connected("restart-B");
        const pr = await cometdPublish(b, "/conf/restart", { after: "restart" });
        assert.equal(pr.successful, true, JSON.stringify(pr));
        await waitFor(() => got.some((d) => d && d.after === "restart"), 10000,
            () => `delivery after restart; got ${JSON.stringify(got)}; wire: ${JSON.stringify(a.wire.in.slice(-5))}`);
    });
});
}
