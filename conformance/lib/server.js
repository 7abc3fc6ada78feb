// Harness: starts the real bayeux server binary, waits for /healthz, stops
// (SIGTERM) and restarts it on the same port. Every child is killed when the
// test process exits, whatever happened.
//
// Lives in lib/ (not test/) because `node --test` runs every .js file under a
// test/ directory as a test file.

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const conformanceDir = path.resolve(here, "..");

/** Absolute path of the server binary: $BAYEUX_BIN (relative to cwd) or ../bin/bayeux relative to conformance/. */
export function binaryPath() {
    const fromEnv = process.env.BAYEUX_BIN;
    if (fromEnv) return path.resolve(process.cwd(), fromEnv);
    return path.resolve(conformanceDir, "..", "bin", "bayeux");
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls pred() (sync or async) until it returns a truthy value, which is returned.
 * Throws after `ms` milliseconds with `what` (string or function returning a string) in the message.
 */
export async function waitFor(pred, ms = 5000, what = "condition", interval = 20) {
    const deadline = Date.now() + ms;
    let lastError;
    for (;;) {
        try {
            const v = await pred();
            if (v) return v;
        } catch (e) {
            lastError = e;
        }
        if (Date.now() >= deadline) {
            const desc = typeof what === "function" ? what() : what;
            const err = new Error(`timed out after ${ms} ms waiting for ${desc}` +
                (lastError ? ` (last error: ${lastError.message})` : ""));
            throw err;
        }
        await sleep(interval);
    }
}

/** Resolves `promise`, or rejects after `ms` with a message naming `what`. */
export function withTimeout(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A free TCP port on 127.0.0.1 (listen on 0, read it, close). */
export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on("error", reject);
        srv.listen(0, "127.0.0.1", () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

// ---- child bookkeeping: kill everything (and remove data dirs) on the way out ----
const children = new Set();
const dataDirs = new Set();

function killAll() {
    for (const child of children) {
        try {
            child.kill("SIGKILL");
        } catch {
            // already gone
        }
    }
    children.clear();
    for (const dir of dataDirs) {
        try {
            fs.rmSync(dir, { recursive: true, force: true });
        } catch {
            // best effort
        }
    }
    dataDirs.clear();
}

process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.once(sig, () => {
        killAll();
        process.exit(128 + (os.constants.signals[sig] || 0));
    });
}

const TAIL_LIMIT = 64 * 1024;

function appendTail(buf, chunk) {
    const s = buf + chunk;
    return s.length > TAIL_LIMIT ? s.slice(s.length - TAIL_LIMIT) : s;
}

export class BayeuxServer {
    /**
     * @param {object} opts
     * @param {object} [opts.env] extra environment for the server (e.g. { BAYEUX_MAX_MESSAGE_SIZE: "1024" })
     * @param {number} [opts.startTimeoutMs] how long to wait for /healthz (default 10 s)
     */
    constructor(opts = {}) {
        this.extraEnv = opts.env || {};
        this.startTimeoutMs = opts.startTimeoutMs || 10000;
        this.port = null;
        this.dataDir = null;
        this.child = null;
        this.stdout = "";
        this.stderr = "";
        this.exitInfo = null;
        this.starts = 0;
    }

    get base() {
        return `http://127.0.0.1:${this.port}`;
    }

    /** The Bayeux endpoint. */
    get url() {
        return `${this.base}/cometd`;
    }

    get running() {
        return this.child !== null && this.exitInfo === null;
    }

    async start() {
        const bin = binaryPath();
        try {
            fs.accessSync(bin, fs.constants.X_OK);
        } catch {
            throw new Error(`bayeux server binary not found or not executable: ${bin} ` +
                "(build it with `go build -o bin/bayeux ./cmd/bayeux` in the repository root, or set BAYEUX_BIN)");
        }
        if (this.port === null) this.port = await freePort();
        if (this.dataDir === null) {
            this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bayeux-conformance-"));
            dataDirs.add(this.dataDir);
        }

        // A restart on the same port may briefly race with the previous listener; retry a bind failure a few times.
        let lastErr;
        for (let attempt = 0; attempt < 5; attempt++) {
            try {
                await this.#spawnAndWait(bin);
                this.starts++;
                return this;
            } catch (e) {
                lastErr = e;
                if (!/address already in use/i.test(this.stderr + this.stdout)) break;
                await sleep(300);
            }
        }
        throw lastErr;
    }

    async #spawnAndWait(bin) {
        const env = {};
        for (const [k, v] of Object.entries(process.env)) {
            // Do not leak the developer's own BAYEUX_* settings into the server under test.
            if (!k.startsWith("BAYEUX_")) env[k] = v;
        }
        Object.assign(env, {
            BAYEUX_ADDR: `127.0.0.1:${this.port}`,
            BAYEUX_DATA_DIR: this.dataDir,
            BAYEUX_LOG_LEVEL: "warn",
            // Every test client comes from 127.0.0.1: no per-address limits.
            BAYEUX_CLIENT_MAX_CONNECTIONS: "0",
            BAYEUX_MAX_SESSIONS_PER_IP: "0",
            BAYEUX_HANDSHAKE_RATE: "0",
        }, this.extraEnv);

        this.stdout = "";
        this.stderr = "";
        this.exitInfo = null;
        const child = spawn(bin, [], { env, stdio: ["ignore", "pipe", "pipe"] });
        this.child = child;
        children.add(child);
        child.stdout.setEncoding("utf8");
        child.stderr.setEncoding("utf8");
        child.stdout.on("data", (d) => { this.stdout = appendTail(this.stdout, d); });
        child.stderr.on("data", (d) => { this.stderr = appendTail(this.stderr, d); });
        const exited = new Promise((resolve) => {
            child.on("exit", (code, signal) => {
                children.delete(child);
                this.exitInfo = { code, signal };
                resolve(this.exitInfo);
            });
            child.on("error", (err) => {
                children.delete(child);
                this.exitInfo = { code: null, signal: null, error: err };
                resolve(this.exitInfo);
            });
        });
        this.exited = exited;

        const deadline = Date.now() + this.startTimeoutMs;
        while (Date.now() < deadline) {
            if (this.exitInfo) {
                throw new Error(`bayeux server exited during startup (${JSON.stringify(this.exitInfo)}); stderr:\n${this.stderr}\nstdout:\n${this.stdout}`);
            }
            try {
                const res = await fetch(`${this.base}/healthz`, { signal: AbortSignal.timeout(1000) });
                await res.arrayBuffer();
                if (res.status === 200) return;
            } catch {
                // not listening yet
            }
            await sleep(50);
        }
        child.kill("SIGKILL");
        await exited;
        throw new Error(`bayeux server did not answer GET /healthz with 200 within ${this.startTimeoutMs} ms; stderr:\n${this.stderr}\nstdout:\n${this.stdout}`);
    }

    /**
     * SIGTERM, wait up to timeoutMs for exit; SIGKILL after that.
     * Returns { code, signal, forced, ms }.
     */
    async stop(timeoutMs = 10000) {
        if (!this.child) return { code: null, signal: null, forced: false, ms: 0 };
        const child = this.child;
        const t0 = Date.now();
        let forced = false;
        if (!this.exitInfo) {
            child.kill("SIGTERM");
            let timer;
            const timedOut = await Promise.race([
                this.exited.then(() => false),
                new Promise((resolve) => { timer = setTimeout(() => resolve(true), timeoutMs); }),
            ]);
            clearTimeout(timer);
            if (timedOut) {
                forced = true;
                child.kill("SIGKILL");
                await this.exited;
            }
        }
        this.child = null;
        return { ...this.exitInfo, forced, ms: Date.now() - t0 };
    }

    /** Stop (SIGTERM) and start again on the same port with the same data dir. Returns the stop result. */
    async restart() {
        const stopped = await this.stop();
        await this.start();
        return stopped;
    }

    /** Stop and remove the data dir. */
    async close() {
        const r = await this.stop();
        if (this.dataDir) {
            try {
                fs.rmSync(this.dataDir, { recursive: true, force: true });
            } catch {
                // best effort
            }
            dataDirs.delete(this.dataDir);
            this.dataDir = null;
        }
        return r;
    }
}

/** Creates and starts a server with the given extra env. */
export async function startServer(env = {}) {
    const server = new BayeuxServer({ env });
    await server.start();
    return server;
}

/**
 * Makes sure a test file process ends even if a client library left a timer or
 * socket behind: after everything else is done, exit with the runner's exit code.
 * The timer is unref'd, so it never keeps the process alive by itself.
 */
export function exitWatchdog(ms = 3000) {
    setTimeout(() => {
        killAll();
        process.exit();
    }, ms).unref();
}
