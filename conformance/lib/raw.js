// Minimal raw Bayeux-over-HTTP client built on fetch, with its own cookie jar
// (the server binds sessions to the BAYEUX_BROWSER cookie, like CometD).

export class CookieJar {
    constructor() {
        this.cookies = new Map();
    }

    /** Stores every Set-Cookie of a fetch Response (name=value only; attributes ignored). */
    store(res) {
        const list = typeof res.headers.getSetCookie === "function"
            ? res.headers.getSetCookie()
            : (res.headers.get("set-cookie") ? [res.headers.get("set-cookie")] : []);
        for (const line of list) {
            const nv = line.split(";")[0].trim();
            const eq = nv.indexOf("=");
            if (eq > 0) this.cookies.set(nv.slice(0, eq), nv.slice(eq + 1));
        }
        return list;
    }

    set(name, value) {
        this.cookies.set(name, value);
    }

    header() {
        return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    }
}

/**
 * POSTs `body` (object/array → JSON, string → as is) to `url`.
 * Returns { status, headers, contentType, text, json, ms } (json undefined when the body is not JSON).
 */
export async function post(url, body, { jar, contentType = "application/json;charset=UTF-8", headers = {}, timeoutMs = 10000 } = {}) {
    const h = { "Content-Type": contentType, ...headers };
    if (jar && jar.cookies.size) h.Cookie = jar.header();
    const t0 = Date.now();
    const res = await fetch(url, {
        method: "POST",
        headers: h,
        body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
    });
    return finish(res, jar, t0);
}

export async function get(url, { jar, headers = {}, timeoutMs = 10000 } = {}) {
    const h = { ...headers };
    if (jar && jar.cookies.size) h.Cookie = jar.header();
    const t0 = Date.now();
    const res = await fetch(url, { headers: h, signal: AbortSignal.timeout(timeoutMs) });
    return finish(res, jar, t0);
}

async function finish(res, jar, t0) {
    const setCookies = jar ? jar.store(res) : [];
    const text = await res.text();
    let json;
    try {
        json = JSON.parse(text);
    } catch {
        json = undefined;
    }
    return {
        status: res.status,
        headers: res.headers,
        contentType: res.headers.get("content-type") || "",
        setCookies,
        text,
        json,
        ms: Date.now() - t0,
    };
}

export function handshakeMessage(id = "1", extra = {}) {
    return {
        id,
        version: "1.0",
        minimumVersion: "1.0",
        channel: "/meta/handshake",
        supportedConnectionTypes: ["long-polling", "callback-polling"],
        advice: { timeout: 60000, interval: 0 },
        ...extra,
    };
}

/** Pretty JSON for assertion messages, so a failure shows exactly what the server returned. */
export function show(r) {
    if (r && typeof r === "object" && "status" in r && "text" in r) {
        return `HTTP ${r.status} ${r.contentType} body=${r.text.length > 2000 ? r.text.slice(0, 2000) + "…" : r.text}`;
    }
    return JSON.stringify(r);
}

/**
 * A raw long-polling session: its own cookie jar, message ids, clientId.
 * Every method returns the full HTTP result (see post()).
 */
export class RawSession {
    constructor(endpoint) {
        this.endpoint = endpoint; // http://127.0.0.1:PORT/cometd
        this.jar = new CookieJar();
        this.nextId = 1;
        this.clientId = null;
    }

    id() {
        return String(this.nextId++);
    }

    send(messages, opts = {}) {
        return post(this.endpoint + (opts.path || ""), messages, { jar: this.jar, ...opts });
    }

    async handshake(extra = {}) {
        const r = await this.send([handshakeMessage(this.id(), extra)], { path: "/handshake" });
        const reply = Array.isArray(r.json) ? r.json.find((m) => m.channel === "/meta/handshake") : undefined;
        if (r.status !== 200 || !reply || reply.successful !== true || typeof reply.clientId !== "string") {
            throw new Error(`raw handshake failed: ${show(r)}`);
        }
        this.clientId = reply.clientId;
        r.reply = reply;
        return r;
    }

    connect({ timeout, timeoutMs = 40000 } = {}) {
        const msg = { id: this.id(), channel: "/meta/connect", clientId: this.clientId, connectionType: "long-polling" };
        if (timeout !== undefined) msg.advice = { timeout };
        return this.send([msg], { path: "/connect", timeoutMs });
    }

    subscribe(subscription) {
        return this.send([{ id: this.id(), channel: "/meta/subscribe", clientId: this.clientId, subscription }]);
    }

    unsubscribe(subscription) {
        return this.send([{ id: this.id(), channel: "/meta/unsubscribe", clientId: this.clientId, subscription }]);
    }

    publish(channel, data, extra = {}) {
        return this.send([{ id: this.id(), channel, clientId: this.clientId, data, ...extra }]);
    }

    disconnect() {
        return this.send([{ id: this.id(), channel: "/meta/disconnect", clientId: this.clientId }], { path: "/disconnect" });
    }
}

/** The reply in r.json for `channel` (and `id` if given). */
export function replyFor(r, channel, id) {
    if (!Array.isArray(r.json)) return undefined;
    return r.json.find((m) => m.channel === channel && (id === undefined || m.id === id) && "successful" in m);
}
