// Prints the comparison table of bench/run-peers.sh from the JSON lines
// bin/bayeux-bench wrote: node table.js DIR SERVER... (first SERVER is the
// one compared; files are DIR/<scenario>.<server>.json).
'use strict';
const fs = require('fs');
const path = require('path');

const [dir, ...servers] = process.argv.slice(2);
const names = { bayeux: 'bayeux', faye: 'faye', cometd: 'cometd-nodejs-server' };

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
const metrics = {
  fanout: traffic,
  rooms: traffic,
  'rooms-cometd': traffic,
  idle: [
    ['clients ready', (r) => r.clients, true],
    ['RSS per client KiB', (r) => r.server_rss_kb && r.server_rss_kb.per_client_kb, false],
    ['server RSS max MiB', (r) => r.server_rss_kb && r.server_rss_kb.max / 1024, false],
    ['server CPU %', (r) => r.server_cpu_pct, false],
    ['errors', (r) => Object.values(r.errors || {}).reduce((a, b) => a + b, 0), false],
    ['other CPU % (noise)', (r) => r.other_cpu_pct, null],
  ],
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
for (const scenario of Object.keys(metrics)) {
  const results = servers.map((s) => load(scenario, s));
  if (results.every((r) => r === null)) continue;
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
if (warnings.length) {
  console.log('\nwarnings:');
  for (const w of warnings) console.log(`  ${w}`);
}
