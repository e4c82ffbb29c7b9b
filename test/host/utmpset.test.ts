// utmpset: logout records in utmp/wtmp, byte for byte as Debian's runit 2.1.2 utmpset
// writes them (the time fields aside). utmpset's files are fixed (/var/run/utmp,
// /var/log/wtmp), so each run gets a private mount namespace with tmpfs on /run and
// /var/log (needs root). The aarch64 layout is checked through the core functions.
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { BIN, DEBIAN, haveBin } from '../lib/host.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);
process.env.RUNIT_TS_ADDON ??= join(dirname(BIN), 'runit-ts.node');

const work = mkdtempSync(join(tmpdir(), 'utmpset-test-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const OURS = join(work, 'utmpset');
symlinkSync(BIN, OURS);
const DEB = join(DEBIAN, 'usr/sbin/utmpset');
// scripts/setup always fetches Debian's runit: without it the comparisons must fail, not pass alone
if (!existsSync(DEB)) t.fail(`${DEB} is missing: run scripts/setup`);
const root = process.getuid?.() === 0;

const { LAYOUTS, utmpLogout, wtmpLogout, hostLayout, DEAD_PROCESS } = await import('../../src/utmpset/utmp.ts');
const { errorStr } = await import('../../src/lib/errstr.ts');
type Layout = (typeof LAYOUTS)['x86_64'];

interface Rec {
  type: number;
  pid: number;
  line: string;
  id: string;
  user: string;
  host: string;
  session: number;
  sec: number;
  usec: number;
}

function encode(l: Layout, r: Rec): Buffer {
  const b = Buffer.alloc(l.size);
  b.writeInt16LE(r.type, 0);
  b.writeInt32LE(r.pid, 4);
  b.write(r.line, 8, 32, 'latin1');
  b.write(r.id, 40, 4, 'latin1');
  b.write(r.user, 44, 32, 'latin1');
  b.write(r.host, 76, 256, 'latin1');
  if (l.timeBytes === 4) {
    b.writeInt32LE(r.session, 336);
    b.writeInt32LE(r.sec, 340);
    b.writeInt32LE(r.usec, 344);
  } else {
    b.writeBigInt64LE(BigInt(r.session), 336);
    b.writeBigInt64LE(BigInt(r.sec), 344);
    b.writeBigInt64LE(BigInt(r.usec), 352);
  }
  b.writeInt32LE(0x0100007f, l.timeBytes === 4 ? 348 : 360); // ut_addr_v6[0]: 127.0.0.1
  return b;
}

const recs = (_l: Layout): Rec[] => [
  { type: 7, pid: 100, line: 'tty1', id: '1', user: 'alice', host: 'host1', session: 7, sec: 1000, usec: 12345 },
  { type: 7, pid: 101, line: 'tty5', id: '5', user: 'bob', host: 'host5', session: 8, sec: 2000, usec: 54321 },
  { type: 6, pid: 102, line: 'tty6', id: '6', user: '', host: '', session: 9, sec: 3000, usec: 1 },
  { type: 7, pid: 103, line: 'L'.repeat(32), id: 'abcd', user: 'carol', host: 'h', session: 1, sec: 4000, usec: 2 },
  { type: 7, pid: 104, line: 'tty5', id: '5b', user: 'dave', host: 'later', session: 2, sec: 5000, usec: 3 },
];

/** Read back the time of a record, and blank it so runs at different seconds compare. */
function takeTime(l: Layout, b: Buffer, i: number): number {
  const off = i * l.size + l.tvSec;
  if (off + l.timeBytes > b.length) return NaN;
  const v = l.timeBytes === 4 ? b.readInt32LE(off) : Number(b.readBigInt64LE(off));
  b.fill(0, off, off + l.timeBytes);
  return v;
}

t.test('usage', async (t) => {
  for (const args of [[], ['-x', 'tty1'], ['-V', 'tty1'], ['-w']]) {
    const ours = await execa(OURS, args, { reject: false });
    t.equal(ours.exitCode, 1, `utmpset ${args.join(' ')}: exit 1`);
    const deb = await execa(DEB, args, { reject: false });
    const n = (s: string) => s.replace(/^usage: \S+/m, 'usage: utmpset').replace(/^\$Id: .*\$$/m, '$Id$');
    t.equal(n(ours.stderr), n(deb.stderr), `utmpset ${args.join(' ')}: same as Debian's`);
  }
});

interface NsRun {
  code: number | undefined;
  stderr: string;
  utmp?: Buffer;
  wtmp?: Buffer;
}

/** Run bin in a private mount namespace where /run/utmp and /var/log/wtmp are ours to make. */
async function inNamespace(bin: string, args: string[], files: { utmp?: Buffer; wtmp?: Buffer }): Promise<NsRun> {
  const d = mkdtempSync(join(work, 'ns-'));
  if (files.utmp) writeFileSync(join(d, 'utmp.in'), files.utmp);
  if (files.wtmp) writeFileSync(join(d, 'wtmp.in'), files.wtmp);
  const script = [
    'mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/log || exit 99',
    '[ -f "$D/utmp.in" ] && cp "$D/utmp.in" /run/utmp',
    '[ -f "$D/wtmp.in" ] && cp "$D/wtmp.in" /var/log/wtmp',
    '"$B" "$@"; rc=$?',
    '[ -f /run/utmp ] && cp /run/utmp "$D/utmp.out"',
    '[ -f /var/log/wtmp ] && cp /var/log/wtmp "$D/wtmp.out"',
    'exit $rc',
  ].join('\n');
  const r = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', ...args], { reject: false, env: { D: d, B: bin } });
  const read = (f: string) => (existsSync(join(d, f)) ? readFileSync(join(d, f)) : undefined);
  return { code: r.exitCode, stderr: r.stderr, utmp: read('utmp.out'), wtmp: read('wtmp.out') };
}

t.test('logout in utmp and wtmp, side by side with Debian', { skip: root ? false : 'needs root (mount namespaces)' }, async (t) => {
  const l = hostLayout();
  const utmp = Buffer.concat(recs(l).map((r) => encode(l, r)));
  const scenarios: Array<[string, string[], { utmp?: Buffer; wtmp?: Buffer }]> = [
    ['-w tty5: first tty5 entry with a user, plus a wtmp record', ['-w', 'tty5'], { utmp, wtmp: Buffer.alloc(0) }],
    ['tty1 without -w', ['tty1'], { utmp }],
    ['tty6 has no user: no such entry', ['-w', 'tty6'], { utmp, wtmp: Buffer.alloc(0) }],
    ['unknown line', ['tty9'], { utmp }],
    ['no utmp file', ['tty1'], {}],
    ['no wtmp file: created', ['-w', 'tty1'], { utmp }],
    ['a full ut_line runs into ut_id and ut_user, as C strings do', ['-w', `${'L'.repeat(32)}abcdcarol`], { utmp, wtmp: Buffer.alloc(0) }],
  ];
  for (const [name, args, files] of scenarios) {
    const t0 = Math.floor(Date.now() / 1000);
    const ours = await inNamespace(OURS, args, files);
    const t1 = Math.floor(Date.now() / 1000);
    for (const which of ['utmp', 'wtmp'] as const) {
      const b = ours[which];
      if (!b) continue;
      const input = files[which] ?? Buffer.alloc(0);
      for (let i = 0; i * l.size < b.length; i++) {
        const at = i * l.size + l.tvSec;
        const before = input.length > at ? (l.timeBytes === 4 ? input.readInt32LE(at) : Number(input.readBigInt64LE(at))) : NaN;
        const v = takeTime(l, b, i);
        if (v !== before) t.ok(v >= t0 && v <= t1, `${name}: ${which} record ${i} time is now`);
      }
    }
    const deb = await inNamespace(DEB, args, files);
    for (const which of ['utmp', 'wtmp'] as const) if (deb[which]) for (let i = 0; i * l.size < deb[which]!.length; i++) takeTime(l, deb[which]!, i);
    t.same(ours, deb, `${name}: same as Debian's`);
    if (name.startsWith('-w tty5')) {
      const u = ours.utmp!;
      const r1 = u.subarray(l.size, 2 * l.size);
      t.equal(r1.readInt16LE(0), DEAD_PROCESS, 'type DEAD_PROCESS');
      t.equal(r1.readInt32LE(4), 101, 'pid kept');
      t.equal(r1.toString('latin1', 44, 76).replace(/\0+$/, ''), '', 'user cleared');
      t.equal(r1.toString('latin1', 76, 332).replace(/\0+$/, ''), '', 'host cleared');
      t.equal(r1.toString('latin1', 8, 12), 'tty5', 'line kept');
      t.same(u.subarray(4 * l.size), encode(l, recs(l)[4]!).fill(0, l.tvSec, l.tvSec + l.timeBytes), 'the second tty5 entry is untouched');
      const w = ours.wtmp!;
      t.equal(w.length, l.size, 'one wtmp record');
      t.equal(w.readInt16LE(0), DEAD_PROCESS);
      t.equal(w.toString('latin1', 8, 13), 'tty5\0');
      t.equal(w.readInt32LE(4), 0, 'wtmp record: no pid');
    }
  }
});

t.test('the aarch64 layout (400 bytes, 64-bit times)', async (t) => {
  const l = LAYOUTS.aarch64;
  t.same([l.size, l.tvSec, l.timeBytes], [400, 344, 8]);
  t.same([LAYOUTS.x86_64.size, LAYOUTS.x86_64.tvSec, LAYOUTS.x86_64.timeBytes], [384, 340, 4]);
  const d = mkdtempSync(join(work, 'a64-'));
  mkdirSync(join(d, 'x'));
  const u = join(d, 'utmp');
  writeFileSync(u, Buffer.concat(recs(l).map((r) => encode(l, r))));
  t.ok(utmpLogout(u, 'tty5', 0x123456789, l, errorStr), 'logged out');
  const b = readFileSync(u);
  const r = b.subarray(l.size, 2 * l.size);
  t.equal(r.readBigInt64LE(344), 0x123456789n, 'tv_sec: 64 bits at 344');
  t.equal(r.readBigInt64LE(352), 54321n, 'tv_usec kept');
  t.equal(r.readBigInt64LE(336), 8n, 'ut_session kept');
  t.equal(r.readInt32LE(360), 0x0100007f, 'ut_addr_v6 kept at 360');
  t.equal(r.readInt16LE(0), DEAD_PROCESS);
  t.notOk(utmpLogout(u, 'tty6', 1, l, errorStr), 'no user: no such entry');
  const w = join(d, 'wtmp');
  wtmpLogout(w, 'ttyS0', 0x123456789, l, errorStr);
  const wb = readFileSync(w);
  t.equal(wb.length, 400);
  t.equal(wb.readBigInt64LE(344), 0x123456789n);
  t.equal(wb.toString('latin1', 8, 14), 'ttyS0\0');
  t.throws(() => utmpLogout(join(d, 'x'), 'tty1', 1, l, errorStr), /unable to open .*x: is a directory|unable to/, 'errors are reported');
});
