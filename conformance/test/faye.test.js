// Scenarios 1-8 with the real Faye Node client (npm "faye" 1.4.3, CommonJS,
// imported as a default export), long-polling transport (WebSocket disabled).

import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { BayeuxServer, exitWatchdog, sleep, waitFor } from "../lib/server.js";
import { post, show } from "../lib/raw.js";
import {
    createFaye,
    disconnectAllFaye,
    fayeClientId,
    fayeConnect,
    fayeCookieHeader,
    fayeDeliveries,
    fayeDisconnect,
    fayePublish,
    fayeSubscribe,
} from "../lib/clients.js";
import { RICH_PAYLOAD } from "../lib/payload.js";

const T = { timeout: 30000 };

let server;

/**
 * n connected Faye clients, as an array. (Faye clients are thenables, so they must never be
 * the resolution value of a promise: see lib/clients.js.)
 */
async function connected(n = 1) {
    const clients = [];
    for (let i = 0; i < n; i++) {
        const c = createFaye(server.url);
        const reply = await fayeConnect(c);
        assert.ok(reply && reply.successful, `no successful handshake: ${JSON.stringify(c.wire.in)}`);
        clients.push(c);
    }
    return clients;
}

describe("Faye Node client (long-polling)", () => {
    before(async () => {
        server = new BayeuxServer();
        await server.start();
    });

    afterEach(async () => {
        await disconnectAllFaye();
    });

    after(async () => {
        await disconnectAllFaye();
        if (server) await server.close();
        exitWatchdog();
    });

    test("1. handshake succeeds and returns a clientId of >= 20 chars", T, async () => {
        const c = createFaye(server.url);
        const reply = await fayeConnect(c);
        assert.ok(reply, `no successful handshake reply on the wire: ${JSON.stringify(c.wire.in)}`);
        assert.equal(reply.successful, true);
        assert.equal(typeof reply.clientId, "string");
        assert.ok(reply.clientId.length >= 20, `clientId too short: ${JSON.stringify(reply.clientId)}`);
        assert.equal(fayeClientId(c), reply.clientId);
        assert.ok(reply.supportedConnectionTypes.includes("long-polling"), JSON.stringify(reply));
        assert.match(fayeCookieHeader(c), /BAYEUX_BROWSER=/, "Faye's cookie jar holds no BAYEUX_BROWSER cookie");
        // Faye's first /meta/connect carries no advice.timeout=0 (unless batched with other messages),
        // so the server legitimately holds it: no connect reply is expected here.
    });

    test("2. two clients exchange a rich payload", T, async () => {
        const [a, b] = await connected(2);
        const got = [];
        await fayeSubscribe(a, "/conf/room", (d) => got.push(d));
        await fayePublish(b, "/conf/room", RICH_PAYLOAD); // resolves only on successful:true
        await waitFor(() => got.length >= 1, 5000, "delivery on /conf/room");
        assert.deepStrictEqual(got[0], RICH_PAYLOAD);
        await sleep(200);
        assert.equal(got.length, 1, `expected exactly one delivery, got ${JSON.stringify(got)}`);
    });

    test("3. wildcard subscriptions: * is one segment, ** is many, no duplicate copies", T, async () => {
        const [pub, one, two] = await connected(3);
        const gotOne = [];
        const gotTwo = [];
        await fayeSubscribe(one, "/conf/w/*", (d) => gotOne.push(d.ch));
        await fayeSubscribe(two, "/conf/w/**", (d) => gotTwo.push(d.ch));
        await fayeSubscribe(one, "/conf/sentinel/w", (d) => gotOne.push(d.ch));
        await fayeSubscribe(two, "/conf/sentinel/w", (d) => gotTwo.push(d.ch));
        for (const ch of ["/conf/w/a", "/conf/w/a/b", "/conf/sentinel/w"]) {
            await fayePublish(pub, ch, { ch });
        }
        await waitFor(() => gotOne.includes("/conf/sentinel/w") && gotTwo.includes("/conf/sentinel/w"), 5000,
            () => `sentinel at both subscribers; one=${JSON.stringify(gotOne)} two=${JSON.stringify(gotTwo)}`);
        assert.deepStrictEqual(gotOne, ["/conf/w/a", "/conf/sentinel/w"], "subscriber on /conf/w/*");
        assert.deepStrictEqual(gotTwo, ["/conf/w/a", "/conf/w/a/b", "/conf/sentinel/w"], "subscriber on /conf/w/**");

        // One session subscribed to both /conf/x/* and /conf/x/y gets ONE copy on the wire
        // (Faye then calls each matching local subscription once).
        const [both] = await connected();
        const viaStar = [];
        const viaExact = [];
        await fayeSubscribe(both, "/conf/x/*", (d) => viaStar.push(d.ch));
        await fayeSubscribe(both, "/conf/x/y", (d) => viaExact.push(d.ch));
        await fayePublish(pub, "/conf/x/y", { ch: "/conf/x/y" });
        await fayePublish(pub, "/conf/x/sentinel", { ch: "/conf/x/sentinel" });
        await waitFor(() => viaStar.includes("/conf/x/sentinel"), 5000, "sentinel on /conf/x/*");
        await sleep(300);
        const wire = fayeDeliveries(both, "/conf/x/y");
        assert.equal(wire.length, 1, `server sent ${wire.length} copies of /conf/x/y: ${JSON.stringify(wire)}`);
        assert.deepStrictEqual(viaExact, ["/conf/x/y"]);
        assert.deepStrictEqual(viaStar, ["/conf/x/y", "/conf/x/sentinel"]);
    });

    test("4. unsubscribe stops deliveries", T, async () => {
        const [a, b] = await connected(2);
        const got = [];
        const { subscription: sub } = await fayeSubscribe(a, "/conf/unsub/a", (d) => got.push(d));
        const sentinel = [];
        await fayeSubscribe(a, "/conf/unsub/sentinel", (d) => sentinel.push(d));
        await fayePublish(b, "/conf/unsub/a", { n: 1 });
        await waitFor(() => got.length === 1, 5000, "first delivery before unsubscribe");

        sub.cancel(); // Faye sends /meta/unsubscribe but exposes no callback: watch the wire for the reply.
        const ack = await waitFor(() => a.wire.in.find((m) => m.channel === "/meta/unsubscribe"), 5000, "unsubscribe reply");
        assert.equal(ack.successful, true, `unsubscribe reply: ${JSON.stringify(ack)}`);

        await fayePublish(b, "/conf/unsub/a", { n: 2 });
        await fayePublish(b, "/conf/unsub/sentinel", { n: 3 });
        await waitFor(() => sentinel.length === 1, 5000, "sentinel after unsubscribe");
        await sleep(200);
        const wire = fayeDeliveries(a, "/conf/unsub/a");
        assert.equal(wire.length, 1, `server still delivered after unsubscribe: ${JSON.stringify(wire)}`);
        assert.deepStrictEqual(got, [{ n: 1 }]);
    });

    test("5. ten publishes in a row arrive complete and in order", T, async () => {
        const [sub, pub] = await connected(2);
        const got = [];
        await fayeSubscribe(sub, "/conf/batch", (d) => got.push(d.i));
        // Faye batches messages queued in the same tick into one HTTP request.
        const pubs = [];
        for (let i = 0; i < 10; i++) pubs.push(fayePublish(pub, "/conf/batch", { i }));
        await Promise.all(pubs);
        await waitFor(() => got.length >= 10, 5000, () => `10 deliveries, got ${JSON.stringify(got)}`);
        await sleep(200);
        assert.deepStrictEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });

    test("6. /service/echo: reply to the caller's subscription, never broadcast", T, async () => {
        // Faye has no remoteCall. A Faye client subscribes to /service/echo (the server acknowledges it
        // without recording a subscription) and publishes to it; the server's reply is a message on
        // /service/echo sent to the caller only, which Faye hands to the local /service/echo subscription.
        const [a, b] = await connected(2);
        const aEcho = [];
        const bEcho = [];
        const bSentinel = [];
        await fayeSubscribe(a, "/service/echo", (d) => aEcho.push(d));
        await fayeSubscribe(b, "/service/echo", (d) => bEcho.push(d));
        await fayeSubscribe(b, "/conf/svc/sentinel", (d) => bSentinel.push(d));

        const data = { q: "ping", n: 7, nested: { ok: true } };
        await fayePublish(a, "/service/echo", data);
        await waitFor(() => aEcho.length >= 1, 5000,
            () => `echo at the caller; wire: ${JSON.stringify(a.wire.in.slice(-10))}`);
        assert.deepStrictEqual(aEcho[0], data);

        await fayePublish(a, "/conf/svc/sentinel", { done: true });
        await waitFor(() => bSentinel.length === 1, 5000, "sentinel at the bystander");
        await sleep(200);
        assert.equal(aEcho.length, 1, `caller got ${aEcho.length} echoes`);
        assert.deepStrictEqual(fayeDeliveries(b, "/service/echo"), [], "service message broadcast to another session");
        assert.equal(bEcho.length, 0);
    });

    test("6b. /service/echo: publish(...).then runs once, and one message per id carries data", T, async () => {
        const [a] = await connected();
        const thens = [];
        const echoes = [];
        await fayeSubscribe(a, "/service/echo", (d) => echoes.push(d));
        const pub = a.publish("/service/echo", { once: 1 });
        pub.then(() => thens.push("ok"), (e) => thens.push(`error: ${e && e.message}`));
        await waitFor(() => thens.length >= 1 && echoes.length >= 1, 5000,
            () => `publish ack and echo; wire: ${JSON.stringify(a.wire.in.slice(-10))}`);
        // A sentinel round trip after it: anything late would have arrived by then.
        await fayePublish(a, "/service/echo", { sentinel: 1 });
        await waitFor(() => echoes.length >= 2, 5000, "echo of the sentinel");
        assert.deepStrictEqual(thens, ["ok"], "publish(...).then callbacks");
        assert.deepStrictEqual(echoes, [{ once: 1 }, { sentinel: 1 }], "echoes at the caller");
        const sent = a.wire.out.find((m) => m.channel === "/service/echo" && m.data?.once === 1);
        const answers = a.wire.in.filter((m) => m.id === sent.id && m.data !== undefined);
        assert.equal(answers.length, 1, `messages with data for id ${sent.id}: ${JSON.stringify(answers)}`);
    });

    test("9. a publisher's messages sent without waiting reach a subscriber in order (100 x 10)", { timeout: 120000 }, async () => {
        // Faye does not wait for one request's reply before the next: the 100 publishes
        // leave in several HTTP requests at once (a request is flushed at 2 KiB), on
        // several connections. The server must process one client's requests in the
        // order they arrive, never interleaved.
        const [sub, pub] = await connected(2);
        const want = Array.from({ length: 100 }, (_, i) => i);
        for (let run = 0; run < 10; run++) {
            const ch = `/conf/order/r${run}`;
            const got = [];
            await fayeSubscribe(sub, ch, (d) => got.push(d.i));
            const pubs = [];
            for (const i of want) pubs.push(fayePublish(pub, ch, { i, pad: "x".repeat(40) }));
            await Promise.all(pubs);
            await waitFor(() => got.length >= want.length, 10000,
                () => `run ${run}: 100 deliveries, got ${got.length}: ${JSON.stringify(got)}`);
            assert.deepStrictEqual(got, want, `run ${run}: deliveries out of order`);
        }
    });

    test("7. after disconnect the old clientId is refused (402); meta publish/subscribe refused", T, async () => {
        const [a] = await connected();
        const clientId = fayeClientId(a);
        const headers = { Cookie: fayeCookieHeader(a) };

        const ok = await post(server.url, [{ id: "900", channel: "/conf/room", clientId, data: { raw: 1 } }], { headers });
        assert.equal(ok.status, 200, show(ok));
        assert.equal(ok.json?.find((m) => m.id === "900")?.successful, true, `raw publish with live session: ${show(ok)}`);

        const metaPub = await post(server.url, [{ id: "901", channel: "/meta/foo", clientId, data: {} }], { headers });
        assert.equal(metaPub.status, 200, `publish to /meta/foo: ${show(metaPub)}`);
        const mp = metaPub.json?.find((m) => m.id === "901");
        assert.ok(mp, `no reply to publish on /meta/foo: ${show(metaPub)}`);
        assert.equal(mp.successful, false, show(metaPub));

        const metaSub = await post(server.url, [{ id: "902", channel: "/meta/subscribe", clientId, subscription: "/meta/*" }], { headers });
        assert.equal(metaSub.status, 200, `subscribe to /meta/*: ${show(metaSub)}`);
        const ms = metaSub.json?.find((m) => m.id === "902");
        assert.ok(ms, `no reply to subscribe /meta/*: ${show(metaSub)}`);
        assert.equal(ms.successful, false, show(metaSub));

        await fayeDisconnect(a); // resolves only on successful:true
        const r = await post(server.url, [{ id: "903", channel: "/conf/room", clientId, data: { after: "disconnect" } }], { headers });
        assert.equal(r.status, 200, `publish after disconnect: ${show(r)}`);
        const m = Array.isArray(r.json) ? r.json.find((x) => x.channel === "/conf/room") : undefined;
        assert.ok(m, `no /conf/room reply: ${show(r)}`);
        assert.equal(m.successful, false, show(r));
        assert.match(String(m.error), /^402/, show(r));
        assert.equal(m.advice?.reconnect, "handshake", show(r));
    });

    test("8. server restart: Faye re-handshakes, re-subscribes by itself and receives new messages", { timeout: 60000 }, async () => {
        const a = createFaye(server.url);
        const got = [];
        await fayeSubscribe(a, "/conf/restart", (d) => got.push(d));
        const oldClientId = fayeClientId(a);
        const countOk = (ch) => a.wire.in.filter((m) => m.channel === ch && m.successful === true).length;
        assert.equal(countOk("/meta/handshake"), 1);

        const stopped = await server.restart();
        assert.equal(stopped.forced, false, `server did not exit within 10 s of SIGTERM (had to SIGKILL): stderr:\n${server.stderr}`);
        assert.equal(stopped.code, 0, `server exit after SIGTERM: ${JSON.stringify(stopped)}; stderr:\n${server.stderr}`);

        // Faye retries failed requests every 5 s (its default `retry`), then gets 402 + reconnect:handshake.
        await waitFor(() => countOk("/meta/handshake") >= 2, 30000,
            () => `re-handshake after restart; last wire in: ${JSON.stringify(a.wire.in.slice(-5))}`);
        assert.notEqual(fayeClientId(a), oldClientId);
        await waitFor(() => countOk("/meta/subscribe") >= 2, 15000,
            () => `automatic re-subscription; last wire in: ${JSON.stringify(a.wire.in.slice(-5))}`);

        const [b] = await connected();
        await fayePublish(b, "/conf/restart", { after: "restart" });
        await waitFor(() => got.some((d) => d && d.after === "restart"), 10000,
            () => `delivery after restart; got ${JSON.stringify(got)}; wire: ${JSON.stringify(a.wire.in.slice(-5))}`);
    });
});
