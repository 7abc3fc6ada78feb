// Prints the comparison table of bench/run-peers.sh from the JSON lines
// bin/bayeux-bench wrote: node table.js DIR SERVER... (first SERVER is the
// one compared; files are DIR/<scenario>.<server>.json, or
// DIR/<scenario>.<server>.skipped holding why the server did not run it),
// then the targets of the first server, evaluated from the same results.
'use strict';
const fs = require('fs');
const path = require('path');

const [dir, ...servers] = process.argv.slice(2);
const names = { bayeux: 'bayeux', 'bayeux-base': 'bayeux (BAYEUX_BASE_BIN)', faye: 'faye', cometd: 'cometd-nodejs-server' };

// [label, getter, higherIsBetter]
const traffic = [
  ['deliveries/s', (r) => r.deliveries_per_s, true],
  ['latency p50 ms', (r) => r.latency_ms.p50, false],
  ['latency p99 ms', (r) => r.latency_ms.p99, false],
  ['latency max ms', (r) => r.latency_ms.max, false],
  ['lost+dup+reordered', (r) => r.lost + r.duplicated + r.reordered, false],
  ['errors', (r) => Object.values(r.errors || {}).reduce((a, b) => a + b, 0), false],
  ['server CPU %', (r) => r.server_cpu_pct, false],
  ['server RSS max MiB', (r) => r.server_rss_kb && r.server_rss_kb.max / 1024, false],
  ['bench CPU %', (r) => r.bench_cpu_pct, null],
  ['other CPU % (noise)', (r) => r.other_cpu_pct, null],
];
const idle = [
  ['clients ready', (r) => r.clients, true],
  ['RSS per client KiB (window after the burst)', (r) => r.server_rss_kb && r.server_rss_kb.per_client_kb, false],
  ['  at the last client KiB', (r) => r.server_rss_kb && r.server_rss_kb.per_client_burst_kb, false],
  ['  end of the window KiB', (r) => r.server_rss_kb && r.server_rss_kb.per_client_steady_kb, false],
  ['server RSS max MiB', (r) => r.server_rss_kb && r.server_rss_kb.max / 1024, false],
  ['server CPU %', (r) => r.server_cpu_pct, false],
  ['errors', (r) => Object.values(r.errors || {}).reduce((a, b) => a + b, 0), false],
  ['other CPU % (noise)', (r) => r.other_cpu_pct, null],
];
// fanout-redis and fanout-cluster: bayeux on Redis (one node, three nodes).
const redis = [
  ...traffic.slice(0, 7),
  ['server RSS max MiB', (r) => r.server_rss_kb && r.server_rss_kb.max / 1024, false],
  ['redis CPU %', (r) => r.redis_cpu_pct, false],
  ['redis CPU us/msg', (r) => r.redis_cpu_us_per_msg, false],
  ...traffic.slice(8),
];
// In table order; the -ws scenarios are the same over WebSocket.
const metrics = {
  fanout: traffic,
  'fanout-5k': traffic,
  'fanout-4800': traffic,
  rooms: traffic,
  'rooms-cometd': traffic,
  idle,
  'idle-ws': idle,
  'fanout-ws': traffic,
  'fanout-redis': redis,
  'fanout-cluster': redis,
  handshake: [
    ['handshakes/s', (r) => r.handshakes_per_s, true],
    ['latency p50 ms', (r) => r.latency_ms.p50, false],
    ['latency p99 ms', (r) => r.latency_ms.p99, false],
    ['errors', (r) => Object.values(r.errors || {}).reduce((a, b) => a + b, 0), false],
    ['server CPU %', (r) => r.server_cpu_pct, false],
    ['bench CPU %', (r) => r.bench_cpu_pct, null],
    ['other CPU % (noise)', (r) => r.other_cpu_pct, null],
  ],
};

function load(scenario, server) {
  const f = path.join(dir, `${scenario}.${server}.json`);
  try {
    const line = fs.readFileSync(f, 'utf8').trim().split('\n').pop();
    return JSON.parse(line);
  } catch {
    return null;
  }
}

function skipped(scenario, server) {
  try {
    return fs.readFileSync(path.join(dir, `${scenario}.${server}.skipped`), 'utf8').trim() || 'skipped';
  } catch {
    return null;
  }
}

function fmt(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '-';
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

// ratio > 1 means the first server is better than the best of the others.
function ratio(own, others, higher) {
  const vals = others.filter((v) => typeof v === 'number' && !Number.isNaN(v));
  if (higher === null || typeof own !== 'number' || vals.length === 0) return '';
  const best = higher ? Math.max(...vals) : Math.min(...vals);
  // below 1 (% of a core, ms ...) a difference is noise, unless both are counts
  if (Math.abs(own) < 1 && Math.abs(best) < 1 && !(Number.isInteger(own) && Number.isInteger(best))) return '=';
  if (higher) return best > 0 ? `${(own / best).toFixed(2)}x` : own > 0 ? 'inf' : '';
  if (own === 0) return best === 0 ? '=' : 'inf';
  return `${(best / own).toFixed(2)}x`;
}

const header = ['scenario', 'metric', ...servers.map((s) => names[s] || s), 'ratio'];
const rows = [];
const warnings = [];
const skips = new Map(); // reason -> {server, scenarios}
for (const scenario of Object.keys(metrics)) {
  const results = servers.map((s) => load(scenario, s));
  if (results.every((r) => r === null)) continue;
  servers.forEach((s, i) => {
    const why = results[i] === null && skipped(scenario, s);
    if (!why) return;
    const key = `${s}\0${why}`;
    if (!skips.has(key)) skips.set(key, { server: s, why, scenarios: [] });
    skips.get(key).scenarios.push(scenario);
  });
  results.forEach((r, i) => {
    for (const w of (r && r.warnings) || []) warnings.push(`${scenario} / ${servers[i]}: ${w}`);
  });
  for (const [label, get, higher] of metrics[scenario]) {
    const vals = results.map((r) => {
      try {
        return r ? get(r) : undefined;
      } catch {
        return undefined;
      }
    });
    rows.push([scenario, label, ...vals.map(fmt), ratio(vals[0], vals.slice(1), higher)]);
  }
}
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
const line = (cells) => '| ' + cells.map((c, i) => (i < 2 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(' | ') + ' |';
console.log(line(header));
console.log('|' + widths.map((w, i) => (i < 2 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|');
for (const r of rows) console.log(line(r));
console.log(`\nratio: ${names[servers[0]] || servers[0]} against the best of the others (>1: ${names[servers[0]] || servers[0]} is better)`);
for (const { server, why, scenarios } of skips.values()) {
  console.log(`"-" for ${names[server] || server} in ${scenarios.join(', ')}: not run: ${why}`);
}
if (warnings.length) {
  console.log('\nwarnings:');
  for (const w of warnings) console.log(`  ${w}`);
}

// Targets of the first server, from the same JSON results. RSS targets are
// in KB = 1000 bytes; per_client_kb in the JSON is KiB (1024 bytes).
const own = servers[0];
const ownName = names[own] || own;
const kb = (kib) => (kib * 1024) / 1000;
const lost = (r) => r.lost;
// noisy: a note when the run (or the one compared with) had warnings.
const noisy = (...rs) => (rs.some((r) => r && r.warnings && r.warnings.length) ? ' (disturbed run: see warnings)' : '');
const targets = [
  ['fanout (long-polling): p99 <= 0.5 x cometd-nodejs-server p99, 0 lost', () => {
    const r = load('fanout', own);
    const c = load('fanout', 'cometd');
    if (!r) return ['n.a.', 'fanout not run'];
    if (!c) return ['n.a.', `p99 ${fmt(r.latency_ms.p99)} ms, lost ${fmt(lost(r))}; no cometd-nodejs-server fanout result`];
    const limit = 0.5 * c.latency_ms.p99;
    const ok = r.latency_ms.p99 <= limit && lost(r) === 0;
    return [ok, `p99 ${fmt(r.latency_ms.p99)} ms (limit 0.5 x ${fmt(c.latency_ms.p99)} = ${fmt(limit)} ms), lost ${fmt(lost(r))}${noisy(r, c)}`];
  }],
  ['rooms: p99 < 250 ms, 0 lost', () => {
    const r = load('rooms', own);
    if (!r) return ['n.a.', 'rooms not run'];
    return [r.latency_ms.p99 < 250 && lost(r) === 0, `p99 ${fmt(r.latency_ms.p99)} ms, lost ${fmt(lost(r))}${noisy(r)}`];
  }],
  // The same 400k deliveries/s as fanout at half its rate, spread over ten
  // times the subscribers: one response per subscriber per message.
  ['fanout-5k (5,000 subscribers x 80 msg/s): p99 <= 250 ms, 0 lost', () => {
    const r = load('fanout-5k', own);
    if (!r) return ['n.a.', 'fanout-5k not run'];
    return [r.latency_ms.p99 <= 250 && lost(r) === 0, `p99 ${fmt(r.latency_ms.p99)} ms, ${fmt(r.deliveries_per_s)} deliveries/s, lost ${fmt(lost(r))}${noisy(r)}`];
  }],
  ['fanout-4800 (500 subscribers x 4,800 msg/s, 2.4M deliveries/s): the rate kept, p99 < 250 ms, 0 lost', () => {
    const r = load('fanout-4800', own);
    if (!r) return ['n.a.', 'fanout-4800 not run'];
    const rate = r.config && r.config.rate;
    const kept = !rate || r.msgs_per_s >= 0.98 * rate;
    return [kept && r.latency_ms.p99 < 250 && lost(r) === 0,
      `${fmt(r.msgs_per_s)} msg/s sent, ${fmt(r.deliveries_per_s)} deliveries/s, p99 ${fmt(r.latency_ms.p99)} ms, lost ${fmt(lost(r))}${noisy(r)}`];
  }],
  // Right after the burst of 10,000 clients: the window's average, from
  // the warmup's end (as the figures were measured), and the RSS
  // at the moment the last client came, both within the limit; the RSS at
  // the window's end beside them.
  ...[['idle', 'long-polling', 6], ['idle-ws', 'WebSocket', 6]].map(([scenario, transport, limit]) => [
    `${scenario} (${transport}): RSS per client right after the 10,000-client burst <= ${limit} KB`, () => {
      const r = load(scenario, own);
      if (!r) return ['n.a.', `${scenario} not run`];
      const s = r.server_rss_kb || {};
      const kib = s.per_client_kb;
      if (typeof kib !== 'number') return ['n.a.', 'no RSS per client (run without -pid?)'];
      const also = (v, what) => (typeof v === 'number' ? `, ${fmt(kb(v))} KB ${what}` : '');
      const want = r.config && r.config.clients;
      const ready = want && r.clients < want ? `; only ${fmt(r.clients)} of ${fmt(want)} clients ready` : '';
      const burst = s.per_client_burst_kb;
      const met = kb(kib) <= limit && (typeof burst !== 'number' || kb(burst) <= limit);
      return [met, `${fmt(kb(kib))} KB (${fmt(kib)} KiB) per client over the window${also(s.per_client_burst_kb, 'at the last client')}${also(s.per_client_steady_kb, 'at the end')}${ready}${noisy(r)}`];
    }]),
  ['fanout-redis: 0 lost, every publish acknowledged, p99 <= 2 x fanout p99, redis-server < 25% of a core', () => {
    const r = load('fanout-redis', own);
    const m = load('fanout', own);
    if (!r) return ['n.a.', 'fanout-redis not run'];
    const errs = Object.values(r.errors || {}).reduce((a, b) => a + b, 0) + (r.refused || 0);
    let ok = lost(r) === 0 && errs === 0 && r.redis_cpu_pct < 25;
    let p99 = `p99 ${fmt(r.latency_ms.p99)} ms`;
    if (m) {
      ok = ok && r.latency_ms.p99 <= 2 * m.latency_ms.p99;
      p99 += ` (limit 2 x ${fmt(m.latency_ms.p99)} = ${fmt(2 * m.latency_ms.p99)} ms)`;
    } else {
      p99 += ' (no fanout result to compare)';
    }
    return [ok, `${p99}, lost ${fmt(lost(r))}, refused or failed publishes ${fmt(errs)}, redis-server ${fmt(r.redis_cpu_pct)}% of a core${noisy(r, m)}`];
  }],
  ['fanout-cluster: three nodes on one Redis (report; two cores allow no speed-up)', () => {
    const r = load('fanout-cluster', own);
    if (!r) return ['n.a.', 'fanout-cluster not run'];
    const us = r.redis_cpu_us_per_msg;
    const est = typeof us === 'number' && us > 0 ? `; at ${fmt(us)} us of Redis CPU per message one Redis saturates near ${fmt(1e6 / us)} msg/s` : '';
    return [lost(r) === 0 ? 'ok' : 'FAIL', `${fmt(r.deliveries_per_s)} deliveries/s, p99 ${fmt(r.latency_ms.p99)} ms, lost ${fmt(lost(r))}${est}${noisy(r)}`];
  }],
  ['handshake: >= 40,000 handshakes/s', () => {
    const r = load('handshake', own);
    if (!r) return ['n.a.', 'handshake not run'];
    return [r.handshakes_per_s >= 40000, `${fmt(r.handshakes_per_s)}/s${noisy(r)}`];
  }],
];
console.log(`\ntargets (${ownName}; KB = 1000 bytes, the table's KiB = 1024):`);
for (const [label, check] of targets) {
  let verdict, detail;
  try {
    [verdict, detail] = check();
  } catch (e) {
    [verdict, detail] = ['n.a.', `unreadable result (${e.message})`];
  }
  if (typeof verdict === 'boolean') verdict = verdict ? 'PASS' : 'FAIL';
  console.log(`  ${verdict.padEnd(4)}  ${label}: ${detail}`);
}
