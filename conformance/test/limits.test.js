// Per-address limits as real clients see them: a handshake refused for the
// handshake rate carries advice (reconnect "handshake", interval) that the
// CometD client follows: it waits, then handshakes again, instead of
// hammering the server.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { BayeuxServer, exitWatchdog, waitFor } from "../lib/server.js";
import { RawSession } from "../lib/raw.js";
import { createCometD, disconnectAllCometD } from "../lib/clients.js";

const T = { timeout: 30000 };

let server;

describe("per-address limits", () => {
    before(async () => {
        // One handshake every 2 s per address, no burst.
        server = new BayeuxServer({ env: { BAYEUX_HANDSHAKE_RATE: "0.5", BAYEUX_HANDSHAKE_BURST: "1" } });
        await server.start();
    });

    after(async () => {
        await disconnectAllCometD();
        await server?.close();
        exitWatchdog();
    });

    test("a handshake over the rate is refused with advice the CometD client follows", T, async () => {
        await new RawSession(server.url).handshake(); // takes the address's only token
        const c = createCometD(server.url, "limited");
        const replies = () => c.wire.in.filter((m) => m.channel === "/meta/handshake");
        c.handshake();
        const first = await waitFor(() => replies()[0], 5000, "the first handshake reply");
        assert.equal(first.successful, false, JSON.stringify(first));
        assert.equal(first.error, "429::too_many_handshakes", JSON.stringify(first));
        assert.equal(first.advice?.reconnect, "handshake", JSON.stringify(first));
        assert.ok(first.advice.interval >= 1000, `advised interval ${first.advice.interval} ms`);

        await waitFor(() => replies().some((m) => m.successful === true), 15000,
            () => `a successful handshake; replies: ${JSON.stringify(replies())}`);
        const sent = c.wire.out.filter((m) => m.channel === "/meta/handshake").length;
        assert.ok(sent <= 3, `the client sent ${sent} handshakes before one was let in: it did not wait as advised`);
    });
});
