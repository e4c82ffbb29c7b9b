// svlogd throughput: one million lines with -tt through a pipe, ours (the single
// executable) against Debian's runit 2.1.2 svlogd, in the same run.
//
//   ~/.cache/runit-ts/node-x86_64/package/bin/node bench/svlogd.ts [--lines N] [--runs K]
//
// Each logger gets the same input file through `cat file |` and a fresh log directory
// with runit's default config (s1000000, n10: it rotates and removes old files as it
// goes, fsync included). Wall time from start to exit, best of K runs.
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot as repo } from '../image/inputs.ts';
import { cacheDir, requireHostArch } from '../src/lib/platform.ts';
import { parseArgs } from 'node:util';

const arch = requireHostArch();
const cache = cacheDir();
const { values } = parseArgs({ options: { lines: { type: 'string', default: '1000000' }, runs: { type: 'string', default: '3' } } });
const LINES = Number(values.lines);
const RUNS = Number(values.runs);

const ours = process.env.RUNIT_TS_BIN ?? join(repo, 'out', arch, 'runit-ts');
const theirs = join(cache, `runit-${arch}`, 'usr', 'bin', 'svlogd');
for (const [what, p] of [['our executable (make build)', ours], ["Debian's svlogd (make setup)", theirs]]) {
  if (!existsSync(p!)) {
    process.stderr.write(`missing ${what}: ${p}\n`);
    process.exit(1);
  }
}

const work = mkdtempSync(join(tmpdir(), 'bench-svlogd-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const bin = join(work, 'bin');
mkdirSync(bin);
spawnSync('ln', ['-s', ours, join(bin, 'svlogd')]);

// the input: log-like lines of varying length (~60 bytes)
const input = join(work, 'input');
await new Promise<void>((done) => {
  const out = createWriteStream(input);
  const words = ['GET /index.html', 'connection from 10.0.0.7', 'user alice logged in', 'cache miss', 'request took 17 ms', 'warning: slow disk'];
  let i = 0;
  const write = () => {
    let ok = true;
    while (i < LINES && ok) {
      const chunk: string[] = [];
      for (let k = 0; k < 1000 && i < LINES; k++, i++) chunk.push(`${i} worker[${i % 97}]: ${words[i % words.length]} id=${(i * 7919) % 100003}`);
      ok = out.write(chunk.join('\n') + '\n');
    }
    if (i < LINES) out.once('drain', write);
    else out.end(done);
  };
  write();
});
const size = readFileSync(input).length;

function once(svlogd: string, n: number): { secs: number; last: string } {
  const dir = join(work, `log-${n}`);
  mkdirSync(dir);
  const t0 = process.hrtime.bigint();
  const r = spawnSync('sh', ['-c', 'cat "$1" | exec "$2" -tt "$3"', 'sh', input, svlogd, dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${svlogd} exited ${r.status}`);
  const cur = readFileSync(join(dir, 'current'), 'latin1').split('\n');
  const last = (cur.at(-2) ?? '').slice(26);
  rmSync(dir, { recursive: true, force: true });
  return { secs, last };
}

let run = 0;
const best = (svlogd: string) => {
  let b = Infinity;
  let last = '';
  for (let k = 0; k < RUNS; k++) {
    const r = once(svlogd, run++);
    b = Math.min(b, r.secs);
    last = r.last;
  }
  return { secs: b, last };
};

const deb = best(theirs);
const our = best(join(bin, 'svlogd'));
if (deb.last !== our.last) throw new Error(`outputs differ: last line ${JSON.stringify(deb.last)} vs ${JSON.stringify(our.last)}`);
const fmt = (secs: number) => `${secs.toFixed(3)} s  ${(LINES / secs / 1e6).toFixed(2)} M lines/s  ${(size / secs / 1048576).toFixed(1)} MiB/s`;
console.log(`svlogd -tt, ${LINES} lines (${(size / 1048576).toFixed(1)} MiB) through a pipe, best of ${RUNS}:`);
console.log(`  runit 2.1.2 (Debian) ${fmt(deb.secs)}`);
console.log(`  runit-ts             ${fmt(our.secs)}`);
console.log(`  ratio runit-ts / runit: ${(our.secs / deb.secs).toFixed(2)} (below 1: faster)`);
