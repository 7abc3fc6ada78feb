// Thin promise wrappers around the two real peer clients:
//  - CometD JavaScript client (npm "cometd", ESM) running in Node through
//    "cometd-nodejs-client" (ESM), long-polling only;
//  - Faye Node client (npm "faye", CommonJS, default import), long-polling only.
// Each client records every wire message (in and out) through an extension, so
// tests can count what the server really sent, independently of the client's
// local listener fan-out.

import { adapt } from "cometd-nodejs-client";
import { CometD } from "cometd";
import faye from "faye";
import { withTimeout } from "./server.js";

const DEBUG = !!process.env.CONFORMANCE_DEBUG;

// ---------------------------------------------------------------- CometD ----

// adapt() installs window.XMLHttpRequest. Its cookie jar is ONE jar per process
// (options.globalCookies, keyed by host name; Domain/Path/Max-Age are ignored):
// all CometD clients of a test file share the BAYEUX_BROWSER cookie, i.e. they
// look like several tabs of one browser. adapt() stores the jar on the object
// we pass, so tests can read the cookie to replay it with raw fetch.
const adaptOptions = {};
adapt(adaptOptions);

const clone = (m) => JSON.parse(JSON.stringify(m));

/** "name=value; ..." of the cookies the cometd-nodejs-client jar holds for host. */
export function cometdCookieHeader(host = "127.0.0.1") {
    const jar = (adaptOptions.globalCookies || {})[host] || {};
    return Object.values(jar).join("; ");
}

let cometdCounter = 0;
const liveCometDs = new Set();

export function createCometD(url, name, transport = "long-polling") {
    const cometd = new CometD(name || `conformance-${++cometdCounter}`);
    // One transport only, so a test shows which one works: no fallback.
    // callback-polling needs a DOM, so it is never used here.
    cometd.unregisterTransport("callback-polling");
    if (transport === "websocket") {
        cometd.unregisterTransport("long-polling");
    } else {
        cometd.unregisterTransport("websocket");
    }
    cometd.configure({
        url,
        logLevel: DEBUG ? "debug" : "warn",
        useWorkerScheduler: false,
    });
    cometd.wire = { in: [], out: [] };
    cometd.registerExtension("conformance-wire", {
        incoming(message) {
            cometd.wire.in.push(clone(message));
            return message;
        },
        outgoing(message) {
            cometd.wire.out.push(clone(message));
            return message;
        },
    });
    liveCometDs.add(cometd);
    return cometd;
}

/** Wire messages received by a CometD client on `channel` that carry data (deliveries/echoes). */
export function cometdDeliveries(cometd, channel) {
    return cometd.wire.in.filter((m) => m.channel === channel && m.data !== undefined);
}

/** Handshake; resolves with the first /meta/handshake reply (successful or not). */
export function cometdHandshake(cometd, props, ms = 10000) {
    return withTimeout(new Promise((resolve) => {
        let done = false;
        cometd.handshake(props, (reply) => {
            if (!done) {
                done = true;
                resolve(reply);
            }
        });
    }), ms, "CometD handshake reply");
}

/** Subscribe; resolves with { subscription, reply } once the /meta/subscribe reply arrives. */
export function cometdSubscribe(cometd, channel, onMessage, ms = 10000) {
    return withTimeout(new Promise((resolve) => {
        const subscription = cometd.subscribe(channel, onMessage, (reply) => resolve({ subscription, reply }));
    }), ms, `CometD subscribe reply for ${channel}`);
}

export function cometdUnsubscribe(cometd, subscription, ms = 10000) {
    return withTimeout(new Promise((resolve) => {
        cometd.unsubscribe(subscription, (reply) => resolve(reply));
    }), ms, `CometD unsubscribe reply for ${subscription.channel}`);
}

/** Publish; resolves with the publish reply. */
export function cometdPublish(cometd, channel, data, ms = 10000) {
    return withTimeout(new Promise((resolve) => {
        cometd.publish(channel, data, (reply) => resolve(reply));
    }), ms, `CometD publish reply for ${channel}`);
}

export function cometdRemoteCall(cometd, target, data, timeout = 5000) {
    return withTimeout(new Promise((resolve) => {
        cometd.remoteCall(target, data, timeout, (reply) => resolve(reply));
    }), timeout + 5000, `CometD remoteCall reply for ${target}`);
}

export function cometdDisconnect(cometd, ms = 10000) {
    if (cometd.isDisconnected()) return Promise.resolve(undefined);
    return withTimeout(new Promise((resolve) => {
        cometd.disconnect((reply) => resolve(reply));
    }), ms, "CometD disconnect reply");
}

/** Disconnects every CometD client still alive (best effort, bounded). */
export async function disconnectAllCometD() {
    const all = [...liveCometDs];
    liveCometDs.clear();
    await Promise.all(all.map(async (c) => {
        try {
            await cometdDisconnect(c, 3000);
        } catch {
            // server may be gone; CometD then fails the disconnect locally
        }
    }));
}

// ------------------------------------------------------------------ Faye ----

if (DEBUG) {
    faye.logger = { debug: console.log, info: console.log, warn: console.warn, error: console.error };
}

const liveFayes = new Set();

/**
 * A Faye client, long-polling only. Faye keeps a tough-cookie jar per client
 * (client._dispatcher.cookies), so every Faye client is its own "browser".
 */
export function createFaye(url, options = {}) {
    const client = new faye.Client(url, options);
    client.disable("websocket");
    client.wire = { in: [], out: [] };
    client.addExtension({
        incoming(message, callback) {
            client.wire.in.push(clone(message));
            callback(message);
        },
        outgoing(message, callback) {
            client.wire.out.push(clone(message));
            callback(message);
        },
    });
    client.endpointUrl = url;
    liveFayes.add(client);
    return client;
}

/** Wire messages received by a Faye client on `channel` that carry data (deliveries/echoes; acks carry none). */
export function fayeDeliveries(client, channel) {
    return client.wire.in.filter((m) => m.channel === channel && m.data !== undefined);
}

/** Connects (handshake + first connect); resolves with the successful /meta/handshake reply seen on the wire. */
export async function fayeConnect(client, ms = 10000) {
    await withTimeout(new Promise((resolve) => client.connect(resolve)), ms, () =>
        `Faye connect; handshake replies seen: ${JSON.stringify(client.wire.in.filter((m) => m.channel === "/meta/handshake"))}`);
    const replies = client.wire.in.filter((m) => m.channel === "/meta/handshake" && m.successful);
    return replies[replies.length - 1];
}

// NOTE: Faye's Client, Subscription and Publication objects are thenables (Deferrable mixin).
// Never resolve a promise (or return from an async function) with one of them: the promise would
// adopt their deferred state instead (a Client never settles again after connecting). Wrap them.

/** Subscribes and waits for the server's acknowledgement; resolves with { subscription }. */
export async function fayeSubscribe(client, channel, onMessage, ms = 10000) {
    const subscription = client.subscribe(channel, onMessage);
    await withTimeout(new Promise((resolve, reject) => subscription.then(resolve, reject)), ms, `Faye subscribe ack for ${channel}`);
    return { subscription };
}

/** Publishes; resolves when the server acknowledges with successful:true, rejects with Faye's error otherwise. */
export function fayePublish(client, channel, data, ms = 10000) {
    const pub = client.publish(channel, data);
    return withTimeout(new Promise((resolve, reject) => pub.then(resolve, reject)), ms, `Faye publish ack for ${channel}`);
}

export function fayeClientId(client) {
    return client._dispatcher.clientId;
}

export function fayeCookieHeader(client) {
    return client._dispatcher.cookies.getCookieStringSync(client.endpointUrl);
}

export async function fayeDisconnect(client, ms = 5000) {
    liveFayes.delete(client);
    const p = client.disconnect();
    if (p) {
        await withTimeout(new Promise((resolve, reject) => p.then(resolve, reject)), ms, "Faye disconnect reply");
    }
}

export async function disconnectAllFaye() {
    const all = [...liveFayes];
    liveFayes.clear();
    await Promise.all(all.map(async (c) => {
        try {
            await fayeDisconnect(c, 3000);
        } catch {
            // ignore
        }
        // Whatever state it is in, stop it from retrying: no reconnects after the test.
        try {
            c._advice.reconnect = "none";
            c._dispatcher.close();
        } catch {
            // ignore
        }
    }));
}
