// A CometD JS client (long-polling) that subscribes to $CHANNEL and records
// the "seq" of every message it receives, optionally with the ack
// extension. Driven by e2e/reliability_test.go through a fault-injecting
// proxy: it prints READY once subscribed, then one JSON summary line when
// it has $TOTAL distinct messages or $DEADLINE_MS passed.
import { adapt } from "cometd-nodejs-client";
import { CometD, AckExtension } from "cometd";

adapt();
const url = process.env.URL;
const channel = process.env.CHANNEL || "/rel/x";
const total = Number(process.env.TOTAL || 1000);
const deadline = Date.now() + Number(process.env.DEADLINE_MS || 60000);
const useAck = process.env.ACK === "1";

const cometd = new CometD("reliability");
cometd.unregisterTransport("websocket");
cometd.unregisterTransport("callback-polling");
cometd.configure({ url, logLevel: "warn", useWorkerScheduler: false, maxNetworkDelay: 5000, backoffIncrement: 50, maxBackoff: 200 });
if (useAck) {
    cometd.registerExtension("ack", new AckExtension());
}

const seqs = [];
let handshakes = 0;
let ready = false;
cometd.addListener("/meta/handshake", (m) => {
    if (!m.successful) {
        return;
    }
    handshakes++;
    cometd.subscribe(channel, (msg) => seqs.push(msg.data.seq), (reply) => {
        if (reply.successful && !ready) {
            ready = true;
            console.log("READY");
        }
    });
});
cometd.handshake();

function summary() {
    const seen = new Set();
    let dup = 0;
    let reordered = 0;
    let last = -1;
    for (const s of seqs) {
        if (seen.has(s)) {
            dup++;
            continue;
        }
        seen.add(s);
        if (s < last) {
            reordered++;
        }
        last = Math.max(last, s);
    }
    let lost = 0;
    for (let i = 0; i < total; i++) {
        if (!seen.has(i)) {
            lost++;
        }
    }
    return { received: seqs.length, distinct: seen.size, lost, duplicated: dup, reordered, handshakes };
}

const timer = setInterval(() => {
    const done = new Set(seqs).size >= total;
    if (done || Date.now() > deadline) {
        clearInterval(timer);
        console.log(JSON.stringify(summary()));
        cometd.disconnect();
        setTimeout(() => process.exit(0), 200);
    }
}, 100);
