// svlogd: our applet side by side with Debian's runit 2.1.2 svlogd on the same inputs
// (same files, names, modes, contents and exit codes, timestamps aside), scenarios of
// its signals, processor, locks and full disks, and the in-process Svlogd class the
// supervisor uses for log services.
import t, { type Test } from 'tap';
import dgram from 'node:dgram';
import {
  chmodSync, closeSync, existsSync, fstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync,
  writeFileSync, writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { BIN, debianBin, haveBin, until } from '../lib/host.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);
process.env.RUNIT_TS_ADDON ??= join(dirname(BIN), 'runit-ts.node');

const work = mkdtempSync(join(tmpdir(), 'svlogd-test-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
mkdirSync(join(work, 'bin'));
const OURS = join(work, 'bin', 'svlogd');
symlinkSync(BIN, OURS);
const DEB = debianBin('svlogd');
// scripts/setup always fetches Debian's runit: without it the comparisons must fail, not pass alone
if (!existsSync(DEB)) t.fail(`${DEB} is missing: run scripts/setup`);

let seq = 0;
function root(): string {
  const d = join(work, `r${++seq}`);
  mkdirSync(d);
  return d;
}

const STAMP = /(^|\n)(@[0-9a-f]{24}|\d{4}-\d\d-\d\d[_T]\d\d:\d\d:\d\d\.\d{5}) /g;
/** Stamps and rotated-file names vary from run to run; nothing else may. */
function norm(s: string): string {
  return s
    .replace(STAMP, '$1STAMP ')
    .replace(/@[0-9a-f]{24}/g, '@X')
    .replace(/^usage: \S+/gm, 'usage: svlogd')
    .replace(/^\$Id: .*\$$/gm, '$Id$');
}

/** A log directory as text: every file's normalised name, mode, size and contents. */
function listing(dir: string): string {
  if (!existsSync(dir)) return '(missing)';
  return readdirSync(dir)
    .sort()
    .map((f) => {
      const p = join(dir, f);
      const st = statSync(p);
      const body = st.isFile() ? readFileSync(p, 'latin1') : '(dir)';
      return `${norm(f)} ${(st.mode & 0o777).toString(8)} ${st.size}\n${norm(body)}`;
    })
    .join('\n--\n');
}

interface Case {
  args?: string[];
  /** config per log dir (dirs default to ['log']) */
  config?: string | Record<string, string>;
  dirs?: string[];
  input: string | Buffer;
  /** files to create first, relative to the root */
  files?: Record<string, [string, number]>;
}

interface Outcome {
  code: number | undefined;
  stderr: string;
  dirs: string;
}

async function runCase(bin: string, c: Case, env: Record<string, string> = {}): Promise<Outcome> {
  const r = root();
  const dirs = c.dirs ?? ['log'];
  for (const d of dirs) {
    if (d.startsWith('nonexistent')) continue;
    mkdirSync(join(r, d), { recursive: true });
    const cfg = typeof c.config === 'string' ? c.config : c.config?.[d];
    if (cfg !== undefined) writeFileSync(join(r, d, 'config'), cfg);
  }
  for (const [f, [text, mode]] of Object.entries(c.files ?? {})) {
    writeFileSync(join(r, f), text);
    chmodSync(join(r, f), mode);
  }
  const res = await execa(bin, [...(c.args ?? []), ...dirs], { cwd: r, input: c.input, reject: false, encoding: 'latin1', env });
  const stderr = norm(res.stderr)
    .split('\n')
    .filter((l) => l !== 'svlogd: info: sigchild received.')
    .join('\n');
  return { code: res.exitCode, stderr, dirs: [...new Set(dirs)].map((d) => `[${d}]\n${listing(join(r, d))}`).join('\n') };
}

/** Run ours and Debian's on the same case; they must agree. */
async function same(t: Test, name: string, c: Case): Promise<Outcome> {
  const ours = await runCase(OURS, c);
  const deb = await runCase(DEB, c);
  t.same(ours, deb, `${name}: same as Debian's svlogd`);
  return ours;
}

// ------------------------------------------------------------------ inputs

let rnd = 42;
const rand = (n: number) => {
  rnd = (rnd * 1103515245 + 12345) & 0x7fffffff;
  return rnd % n;
};
const IN_RAND = Array.from({ length: 300 }, (_, i) => `${i}:${'x'.repeat(rand(130))}`).join('\n') + '\n';
const IN_MIX = Buffer.concat([
  Buffer.from('alpha one\nbeta two\n\ttab\tline\n\ngamma three\nerror: something\nwarning: other\nabcabcabc\naaab\n'),
  Buffer.from([0xc3, 0xa9, 0x01, 0x7f, 0x20, 0x41, 0x0a]), // é, control bytes
  Buffer.from(`${'L'.repeat(1500)}\n${'M'.repeat(1000)}\n${'N'.repeat(999)}\nshort\n`),
]);

// ------------------------------------------------------------------ side by side

t.test('command line errors and exit codes', async (t) => {
  for (const args of [[], ['-r'], ['-r', 'ab', 'log'], ['-r', '', 'log'], ['-l', '10', '-b', '10', 'log'], ['-V', 'log'], ['-x', 'log'], ['--', '-t']]) {
    const o = await same(t, `svlogd ${args.join(' ')}`, { args, dirs: [], input: '' });
    if (args[0] !== '--') t.equal(o.code, 111, `svlogd ${args.join(' ')} exits 111`);
  }
  const o = await same(t, 'missing directory', { dirs: ['nonexistent'], input: 'x\n' });
  t.equal(o.code, 111);
  t.match(o.stderr, /unable to open log directory: nonexistent: file does not exist\nsvlogd: fatal: no functional log directories\./);
  await same(t, 'a file where the directory should be', { dirs: [], args: ['afile'], files: { afile: ['', 0o644] }, input: 'x\n' });
  await same(t, 'one missing, one good', { dirs: ['nonexistent', 'log'], input: 'x\n', args: ['-v'] });
  await same(t, 'the same directory twice: the second cannot lock', { dirs: ['log', 'log'], input: 'x\n', args: ['-v'] });
});

t.test('options: timestamps, replacement, line length', async (t) => {
  const cases: string[][] = [[], ['-t'], ['-tt'], ['-ttt'], ['-tttt'], ['-r', 'x'], ['-R', 'ab'], ['-r', 'Q', '-R', 'lp'], ['-l', '5'], ['-l', '9', '-r', '_'], ['-l', '20', '-b', '21'], ['-v']];
  for (const args of cases) await same(t, `svlogd ${args.join(' ')}`, { args, input: IN_MIX });
  const o = await runCase(OURS, { args: ['-tt'], input: 'a\nb\n' });
  t.match(o.dirs, /STAMP a\nSTAMP b\n/, '-tt stamps every line');
  const raw = await runCase(OURS, { args: ['-r', '_', '-R', 'e'], input: IN_MIX });
  t.match(raw.dirs, /alpha on_\n/, '-R chars replaced');
  t.match(raw.dirs, /___ A\n/, 'non-printable bytes replaced');
});

t.test('config: size, count, age, prefix, patterns, stderr selection', async (t) => {
  const cases: Array<[string, string, string[]]> = [
    ['s100\nn5\n', IN_RAND, []],
    ['s1000\nn3\n', IN_RAND, ['-l', '50']],
    ['s3000\nn3\n', IN_RAND, ['-l', '50', '-tt']],
    ['s150\n', IN_RAND, []], // smaller than the line length: cuts inside lines
    ['s0\n', IN_RAND, []],
    ['s1k\nn2\n', IN_RAND, []],
    ['s2k\nn0\n', IN_RAND, ['-t']],
    ['-*\ne*o*\n+gamma*\nE*e*\n+a+b\n', IN_MIX.toString('latin1'), []],
    ['e*o*\npPFX>\n-beta*\n', IN_MIX.toString('latin1'), ['-r', '_', '-l', '7']],
    ['e*\n', IN_MIX.toString('latin1'), ['-tt', '-l', '20']],
    ['-*\n+*L\ne*\n', IN_MIX.toString('latin1'), []],
    ['# comment\n\nsgarbage\nn\nN\nt\n!\np\nU', IN_RAND, []],
    ['t3600\n', 'a\nb\n', ['-v']],
  ];
  for (const [config, input, args] of cases) await same(t, `config ${JSON.stringify(config)} ${args.join(' ')}`, { config, input, args });
  const o = await runCase(OURS, { config: 's100\nn5\n', input: IN_RAND });
  t.equal(o.dirs.match(/@X\.s 744 100\n/g)?.length, 5, 'five full old files kept, 0744');
  t.match(o.dirs, /current 744 \d+/, 'current is 0744 after a clean exit');
});

t.test('several log directories at once', async (t) => {
  await same(t, 'two dirs, different configs', {
    dirs: ['main', 'errors'],
    config: { main: 's3000\nn2\npM: \n', errors: '-*\n+*error*\n+*warning*\n' },
    input: IN_MIX,
    args: ['-tt', '-v'],
  });
});

t.test('processor: sh -c, .u/.t/.s, state and newstate on fds 4 and 5', async (t) => {
  await same(t, 'cat', { config: 's200\nn3\n!cat\n', input: IN_RAND, args: ['-v'] });
  const o = await same(t, 'tr and state', { config: 's200\n!tr a-z A-Z; echo state >&5; cat <&4\n', input: IN_RAND });
  t.match(o.dirs, /state 644 6\nstate\n/, 'newstate became state');
  t.notMatch(o.dirs, /@X\.[ut] /, 'no .u or .t left');
  await same(t, 'fails once, then succeeds', { config: 's300\n!test -e failed || { touch failed; exit 1; }; cat\n', input: IN_RAND, args: ['-v'] });
});

t.test('existing current: appended if complete, kept as .u if not', async (t) => {
  await same(t, 'complete (0744)', { input: 'new\n', files: { 'log/current': ['old\n', 0o744] }, args: ['-v'] });
  const o = await same(t, 'incomplete (0644)', { input: 'new\n', files: { 'log/current': ['old\n', 0o644] }, args: ['-v'] });
  t.match(o.dirs, /@X\.u 644 4\nold\n/);
});

t.test('a current not closed cleanly is cut after its last newline (what a power loss leaves past it)', async (t) => {
  const nul = (n: number) => '\0'.repeat(n);
  // ext4 after a power loss: a size committed before the data of a block already on disk (NULs), a size inside a line
  for (const [what, old, kept] of [
    ['NUL bytes', `line one\nline two\n${nul(2401)}`, 'line one\nline two\n'],
    ['a line cut short', 'line one\nline tw', 'line one\n'],
    ['a line cut short, then NULs', `line one\nline tw${nul(100)}`, 'line one\n'],
  ] as const) {
    const o = await runCase(OURS, { input: 'new\n', files: { 'log/current': [old, 0o644] } });
    t.match(o.dirs, new RegExp(`@X\\.u 644 ${kept.length}\n${kept}\n--\n`), `${what}: the .u holds the whole lines`);
    t.match(o.dirs, /current 744 4\nnew\n/, `${what}: current goes on with the new lines (closed at the end of the input: 0744)`);
    const deb = await runCase(DEB, { input: 'new\n', files: { 'log/current': [old, 0o644] } });
    t.match(deb.dirs, new RegExp(`@X\\.u 644 ${old.length}\n`), `${what}: runit keeps the file as it is (we differ on purpose)`);
  }
  const o = await runCase(OURS, { input: 'new\n', files: { 'log/current': [nul(4096), 0o644] } });
  t.notMatch(o.dirs, /@X\.u/, 'nothing but NULs: no .u at all');
  t.match(o.dirs, /current 744 4\nnew\n/, 'and current holds the new lines');
});

t.test('UDP: u copies to the network, U sends only (loopback)', async (t) => {
  const sock = dgram.createSocket('udp4');
  const got: string[] = [];
  sock.on('message', (m) => got.push(norm(m.toString('latin1'))));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const port = sock.address().port;
  t.teardown(() => sock.close());
  const collect = async (bin: string, config: string, args: string[] = []) => {
    got.length = 0;
    const o = await runCase(bin, { config, input: IN_MIX, args });
    await until(() => got.length >= 14, 3000, 'datagrams');
    await new Promise((r) => setTimeout(r, 100));
    return { ...o, udp: [...got].sort() };
  };
  for (const [config, args] of [[`u127.0.0.1:${port}\n`, ['-tt']], [`U127.0.0.1:${port}\npP:\n`, ['-l', '10']]] as Array<[string, string[]]>) {
    const ours = await collect(OURS, config, args);
    t.equal(ours.udp.length, 14, `${config.trim()}: a datagram per line`);
    t.same(ours, await collect(DEB, config, args), `${config.trim()}: same as Debian's`);
  }
});

// ------------------------------------------------------------------ live scenarios

interface Live {
  proc: ResultPromise;
  dir: string;
  root: string;
  write: (s: string) => void;
}

function live(bin: string, opts: { args?: string[]; config?: string; env?: Record<string, string> } = {}): Live {
  const r = root();
  const dir = join(r, 'log');
  mkdirSync(dir);
  if (opts.config !== undefined) writeFileSync(join(dir, 'config'), opts.config);
  const proc = execa(bin, [...(opts.args ?? []), 'log'], { cwd: r, reject: false, stdin: 'pipe', encoding: 'latin1', env: opts.env });
  return { proc, dir, root: r, write: (s) => void proc.stdin!.write(s) };
}

const read = (p: string) => (existsSync(p) ? readFileSync(p, 'latin1') : '');
const olds = (dir: string, suffix = '.s') => readdirSync(dir).filter((f) => f.startsWith('@') && f.endsWith(suffix)).sort();

t.test('signals: ALRM rotates, HUP rereads config, TERM ends after the line', async (t) => {
  for (const [name, bin] of [['ours', OURS], ['Debian', DEB]]) {
    const l = live(bin!, { args: ['-v'] });
    l.write('one\n');
    await until(() => read(join(l.dir, 'current')) === 'one\n', 5000, `${name}: first line`);
    t.equal(statSync(join(l.dir, 'current')).mode & 0o777, 0o644, `${name}: current is 0644 while open`);
    l.proc.kill('SIGALRM');
    await until(() => olds(l.dir).length === 1, 5000, `${name}: rotation on ALRM`);
    t.equal(read(join(l.dir, olds(l.dir)[0]!)), 'one\n', `${name}: ALRM moved current to @....s`);
    t.equal(read(join(l.dir, 'current')), '', `${name}: new current is empty`);
    writeFileSync(join(l.dir, 'config'), 's10\n');
    let err = '';
    l.proc.stderr!.on('data', (d: Buffer | string) => (err += d.toString()));
    l.proc.kill('SIGHUP');
    await until(() => /append: log\/current/.test(err), 5000, `${name}: reopened`);
    l.write('0123456789abcdef\n');
    await until(() => olds(l.dir).length === 2, 5000, `${name}: rotation by the new size`);
    l.proc.kill('SIGTERM');
    const res = await l.proc;
    t.equal(res.exitCode, 0, `${name}: TERM exits 0`);
    t.equal(
      norm(res.stderr as string),
      ['new: log/current', 'sigalarm received.', 'rename: log/current @X.s 4', 'sighangup received.', 'close: log', 'read: log/config', 'append: log/current', 'rename: log/current @X.s 10', 'sigterm received.', 'close: log'].map((l) => `svlogd: info: ${l}`).join('\n'),
      `${name}: -v reports it all`,
    );
    t.equal(statSync(join(l.dir, 'current')).mode & 0o777, 0o744, `${name}: current is 0744 after TERM`);
  }
});

t.test('TERM in the middle of a line, and an unterminated last line (runit drops them, we keep them)', async (t) => {
  for (const [name, bin] of [['ours', OURS], ['Debian', DEB]]) {
    const l = live(bin!);
    l.write('abc');
    await new Promise((r) => setTimeout(r, 1000));
    l.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    t.equal(l.proc.exitCode ?? null, null, `${name}: waits for the end of the line`);
    l.write('def\n');
    const res = await l.proc;
    t.equal(res.exitCode, 0, `${name}: then exits 0`);
    const cur = read(join(l.dir, 'current'));
    if (name === 'ours') t.equal(cur, 'abcdef\n', 'ours: the interrupted line is logged');
    else t.equal(cur, '', "Debian's: the interrupted line is lost");
    const o = await runCase(bin!, { input: 'a\nb' });
    t.match(o.dirs, name === 'ours' ? /current 744 4\na\nb\n/ : /current 744 2\na\n\n--/, `${name}: unterminated last line`);
  }
});

t.test('t: rotation by age', async (t) => {
  const l = live(OURS, { config: 't1\n' });
  l.write('old\n');
  await until(() => olds(l.dir).length >= 1, 5000, 'age rotation');
  t.equal(read(join(l.dir, olds(l.dir)[0]!)), 'old\n');
  l.proc.stdin!.end();
  t.equal((await l.proc).exitCode, 0);
});

t.test('lock: a directory in use by another svlogd (ours or runit\'s)', async (t) => {
  const holders = [OURS, DEB];
  for (const holder of holders) {
    const l = live(holder);
    l.write('x\n');
    await until(() => read(join(l.dir, 'current')) === 'x\n', 5000, 'holder running');
    for (const bin of holders) {
      const r = await execa(bin, ['log'], { cwd: l.root, input: 'y\n', reject: false });
      t.equal(r.exitCode, 111, `${bin === OURS ? 'ours' : 'Debian'} vs ${holder === OURS ? 'ours' : 'Debian'}: 111`);
      t.equal(r.stderr, 'svlogd: warning: unable to lock directory: log: temporary failure\nsvlogd: fatal: no functional log directories.');
    }
    l.proc.stdin!.end();
    await l.proc;
  }
});

t.test('-T: local time stamps', async (t) => {
  const stamp = async (args: string[], env: Record<string, string>) => {
    const r = root();
    mkdirSync(join(r, 'log'));
    await execa(OURS, [...args, 'log'], { cwd: r, input: 'x\n', env });
    const m = /^(\d{4})-(\d\d)-(\d\d)[_T](\d\d):(\d\d):(\d\d)\.\d{5} x\n$/.exec(read(join(r, 'log', 'current')));
    t.ok(m, `${args.join(' ')}: stamp format`);
    return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : NaN;
  };
  const utc = await stamp(['-tt'], { TZ: 'Etc/GMT-5' });
  const local = await stamp(['-tt', '-T'], { TZ: 'Etc/GMT-5' });
  const iso = await stamp(['-ttt', '-T'], { TZ: 'Etc/GMT+3' });
  t.ok(Math.abs(local - utc - 5 * 3600e3) < 60e3, '-tt -T in UTC+5 is five hours ahead of -tt');
  t.ok(Math.abs(iso - utc + 3 * 3600e3) < 60e3, '-ttt -T in UTC-3 is three hours behind');
  t.ok(Math.abs(utc - Date.now()) < 60e3, '-tt is UTC');
});

t.test('clock stepped back: the newest file and unprocessed .u files stay', async (t) => {
  // files named far in the future sort after anything written now, as after a clock step back
  const future = (n: number, s: string) => `@400000010000000${n}00000000.${s}`;
  const files: Record<string, [string, number]> = {};
  for (let i = 1; i <= 3; i++) files[`log/${future(i, 's')}`] = [`future ${i}\n`, 0o744];
  files[`log/${future(4, 'u')}`] = ['unprocessed\n', 0o744];
  const c: Case = { config: 's20\nn3\n', input: 'line one is long\nline two is long\nline three long\n', files, args: ['-l', '10'] };
  const o = await runCase(OURS, c);
  const kept = (o.dirs.match(/^@X\.s 744 \d+\n[^\n]*/gm) ?? []).map((k) => k.split('\n')[1]);
  t.equal(kept.length, 3, 'n3: three .s files');
  t.ok(kept.includes('line three long'), 'the newest rotated file is not removed');
  t.match(o.dirs, /@X\.u 744 12\nunprocessed\n/, 'the .u file is neither counted nor removed');
  // the files in name order are the log in the order written: a file rotated now is named
  // after the future ones (runit names it by the clock: before them)
  const r = root();
  mkdirSync(join(r, 'log'));
  writeFileSync(join(r, 'log', 'config'), 's20\n');
  for (const [f, [text, mode]] of Object.entries(files)) writeFileSync(join(r, f), text, { mode });
  await execa(OURS, ['-l', '10', 'log'], { cwd: r, input: c.input });
  const names = readdirSync(join(r, 'log')).filter((f) => f.startsWith('@')).sort();
  t.same(names.slice(-2).map((f) => f.slice(-2)), ['.s', '.s'], `the two files rotated now come last by name: ${names.join(' ')}`);
  const text = [...names, 'current'].map((f) => read(join(r, 'log', f))).join('');
  t.equal(text, 'future 1\nfuture 2\nfuture 3\nunprocessed\nline one is long\nline two is long\nline three long\n', 'read in name order, then current: the lines in the order written');
  const deb = await runCase(DEB, c);
  const debKept = (deb.dirs.match(/^@X\.s 744 \d+\n[^\n]*/gm) ?? []).map((k) => k.split('\n')[1]);
  t.notOk(debKept.includes('line three long'), "runit removes the file it just rotated (we differ on purpose)");
});

// ------------------------------------------------------------------ full disk

t.test('full disk: N deletes old files, no line is lost or cut', { skip: process.getuid?.() !== 0 ? 'needs root (tmpfs)' : false }, async (t) => {
  const lines = Array.from({ length: 2000 }, (_, i) => `${String(i).padStart(4, '0')} ${'z'.repeat(60)}`);
  const input = lines.join('\n') + '\n';
  const runOne = async (bin: string) => {
    const r = root();
    mkdirSync(join(r, 'log'));
    mkdirSync(join(r, 'copy'));
    writeFileSync(join(r, 'in'), input);
    const script = 'cd "$1" && mount -t tmpfs -o size=48k tmpfs log && printf "s4000\\nn100\\nN3\\n" > log/config && "$2" log < in 2>err; rc=$?; cp -a log/. copy/; exit $rc';
    const res = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', r, bin], { reject: false });
    const dir = join(r, 'copy');
    const names = readdirSync(dir).filter((f) => f.startsWith('@')).sort();
    const text = [...names, 'current'].map((f) => read(join(dir, f))).join('');
    return { code: res.exitCode, text, err: read(join(r, 'err')), files: names.length };
  };
  const ours = await runOne(OURS);
  t.equal(ours.code, 0);
  t.match(ours.err, /svlogd: warning: out of disk space, delete: log\/@[0-9a-f]{24}\.s\n/, 'warns about each deletion');
  const got = ours.text.split('\n').filter(Boolean);
  t.ok(got.length > 20, `${got.length} lines kept`);
  t.same(got, lines.slice(lines.length - got.length), 'what is kept is the end of the input, whole lines, none missing');
  const deb = await runOne(DEB);
  t.same({ ...ours, err: norm(ours.err) }, { ...deb, err: norm(deb.err) }, "same files and messages as Debian's");
});

t.test('full disk without old files to delete: pause, retry, nothing lost', { skip: process.getuid?.() !== 0 ? 'needs root (tmpfs)' : false }, async (t) => {
  const lines = Array.from({ length: 300 }, (_, i) => `${String(i).padStart(4, '0')} ${'y'.repeat(60)}`);
  const runOne = async (bin: string) => {
    const r = root();
    mkdirSync(join(r, 'log'));
    mkdirSync(join(r, 'copy'));
    writeFileSync(join(r, 'in'), lines.join('\n') + '\n');
    // 32 KiB, most of it taken by a filler; once svlogd pauses, the filler goes
    const script = [
      'cd "$1" && mount -t tmpfs -o size=32k tmpfs log || exit 99',
      'head -c 24576 /dev/zero > log/filler',
      '"$2" log < in 2>err & pid=$!',
      'i=0; while ! grep -q pausing err && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done',
      'rm log/filler; wait $pid; rc=$?; cp -a log/. copy/; exit $rc',
    ].join('\n');
    const res = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', r, bin], { reject: false });
    return { code: res.exitCode, current: read(join(r, 'copy', 'current')), err: norm(read(join(r, 'err'))) };
  };
  const ours = await runOne(OURS);
  t.equal(ours.code, 0);
  t.equal(ours.err, 'svlogd: pausing: unable to write to current: log: out of disk space\n', 'pauses (n = N: nothing may be deleted)');
  t.equal(ours.current, lines.join('\n') + '\n', 'every line written once space is back, none cut');
  t.same(ours, await runOne(DEB), "same as Debian's");
});

// ------------------------------------------------------------------ in-process logger

t.test('in-process Svlogd: a pipe fd, signals as methods, the fd stays the caller\'s', async (t) => {
  const { Svlogd } = await import('../../src/svlogd/svlogd.ts');
  const { native } = await import('../../src/lib/native.ts');
  const r = root();
  mkdirSync(join(r, 'log'));
  const [rd, wr] = native().pipe();
  const errs: string[] = [];
  const a = new Svlogd({ dirs: ['log'], cwd: r, timestamp: 2, stderr: (b) => errs.push(b.toString()) , verbose: 1 });
  const exits: unknown[] = [];
  a.on('exit', (code, signal) => exits.push([code, signal]));
  a.start(rd);
  t.teardown(() => void a.kill('SIGKILL'));
  t.equal(a.pid, process.pid, 'its pid is the supervisor\'s');
  writeSync(wr, 'one\ntwo\n');
  await until(() => /two\n$/.test(read(join(r, 'log', 'current'))), 5000, 'lines logged');
  t.match(read(join(r, 'log', 'current')), /^\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d\.\d{5} one\n/);
  a.kill('SIGALRM');
  await until(() => olds(join(r, 'log')).length === 1, 5000, 'ALRM rotation');
  a.kill('SIGSTOP');
  writeSync(wr, 'while stopped\n');
  await new Promise((res) => setTimeout(res, 300));
  t.equal(read(join(r, 'log', 'current')), '', 'STOP: nothing read');
  a.kill('SIGCONT');
  await until(() => /while stopped/.test(read(join(r, 'log', 'current'))), 5000, 'CONT: reading again');
  writeSync(wr, 'half');
  await new Promise((res) => setTimeout(res, 200));
  a.kill('SIGTERM');
  writeSync(wr, ' line\nnext logger\n');
  const ex = await a.done;
  t.same(ex, { code: 0, signal: null }, 'TERM: exit 0');
  t.same(exits, [[0, null]], "'exit' event as a ChildProcess gives it");
  t.match(read(join(r, 'log', 'current')), /half line\n/);
  t.equal(statSync(join(r, 'log', 'current')).mode & 0o777, 0o744);
  t.ok(fstatSync(rd).isFIFO(), 'the caller\'s fd is still open');
  t.match(errs.join(''), /svlogd: info: sigalarm received\.\n/);
  // a second logger on the same fd; KILL ends it at once without the clean close
  const b = new Svlogd({ dirs: ['log'], cwd: r });
  b.start(rd);
  t.teardown(() => void b.kill('SIGKILL'));
  writeSync(wr, 'after kill\n');
  await until(() => /after kill\n/.test(read(join(r, 'log', 'current'))), 5000, 'second logger');
  t.equal(b.kill('SIGKILL'), true);
  t.same(await b.done, { code: null, signal: 'SIGKILL' });
  t.equal(statSync(join(r, 'log', 'current')).mode & 0o777, 0o644, 'killed: current not marked complete');
  t.equal(b.kill('SIGTERM'), false, 'a dead logger takes no signals');
  closeSync(wr);
  closeSync(rd);
});

t.test('in-process Svlogd: EOF, HUP, fatal errors', async (t) => {
  const { Svlogd } = await import('../../src/svlogd/svlogd.ts');
  const { native } = await import('../../src/lib/native.ts');
  const r = root();
  mkdirSync(join(r, 'log'));
  const [rd, wr] = native().pipe();
  const a = new Svlogd({ dirs: ['log'], cwd: r, stderr: () => {} }).start(rd);
  t.teardown(() => void a.kill('SIGKILL'));
  closeSync(rd);
  writeSync(wr, 'x\n');
  await until(() => read(join(r, 'log', 'current')) === 'x\n', 5000, 'x logged');
  writeFileSync(join(r, 'log', 'config'), 'pP:\n');
  a.kill('SIGHUP');
  await new Promise((res) => setTimeout(res, 200));
  writeSync(wr, 'y\n');
  closeSync(wr);
  t.same(await a.done, { code: 0, signal: null }, 'EOF: exit 0');
  t.equal(read(join(r, 'log', 'current')), 'x\nP:y\n', 'HUP reread config');
  const errs: string[] = [];
  const b = new Svlogd({ dirs: ['missing'], cwd: r, stderr: (d) => errs.push(d.toString()) }).start(native().pipe()[0]);
  t.same(await b.done, { code: 111, signal: null });
  t.equal(errs.join(''), 'svlogd: warning: unable to open log directory: missing: file does not exist\nsvlogd: fatal: no functional log directories.\n');
});

t.test('in-process loggers are cheap: 20 of them', async (t) => {
  const { Svlogd } = await import('../../src/svlogd/svlogd.ts');
  const { native } = await import('../../src/lib/native.ts');
  const r = root();
  globalThis.gc?.();
  const before = process.memoryUsage().rss;
  const loggers = [];
  const pipes: Array<[number, number]> = [];
  for (let i = 0; i < 20; i++) {
    mkdirSync(join(r, `log${i}`));
    const p = native().pipe();
    pipes.push(p);
    loggers.push(new Svlogd({ dirs: [`log${i}`], cwd: r, timestamp: 2 }).start(p[0]));
  }
  for (let k = 0; k < 50; k++) for (const [, w] of pipes) writeSync(w, `line ${k} ${'x'.repeat(80)}\n`);
  await until(() => pipes.every((_, i) => read(join(r, `log${i}`, 'current')).split('\n').length > 50), 10000, 'all logged');
  const grown = (process.memoryUsage().rss - before) / 1048576;
  t.ok(grown < 8, `20 loggers cost ${grown.toFixed(1)} MB of RSS together (a Node process each would be 8-15 MB)`);
  for (const [rd, w] of pipes) {
    closeSync(w);
    closeSync(rd);
  }
  for (const l of loggers) t.same(await l.done, { code: 0, signal: null });
});

t.test('log/run recognition for in-process loggers', async (t) => {
  const { parseLogRun, recogniseLogRun } = await import('../../src/svlogd/logrun.ts');
  const yes = [
    '#!/bin/sh\nexec svlogd -tt ./main\n',
    '#!/bin/sh -e\n# log\nexec 2>&1\nexec svlogd -t main other\n',
    "#!/usr/bin/env sh\n\nexec /usr/bin/svlogd 'main'\n",
  ];
  const no = [
    '#!/bin/sh\nexec chpst -u log svlogd main\n',
    '#!/bin/sh\nexec svlogd -tt $DIR\n',
    '#!/bin/sh\nexec svlogd main 2>/dev/null\n',
    '#!/bin/sh\nsvlogd main\n',
    '#!/bin/sh\nexec svlogd main\necho after\n',
    '#!/usr/bin/python3\nexec svlogd main\n',
    '#!/bin/sh\nexec multilog t ./main\n',
    '#!/bin/sh\nexec svlogd "main"\n',
  ];
  for (const s of yes) t.ok(parseLogRun(s), `recognised: ${JSON.stringify(s)}`);
  for (const s of no) t.notOk(parseLogRun(s), `not recognised: ${JSON.stringify(s)}`);
  t.same(parseLogRun(yes[1]!), { program: 'svlogd', args: ['-t', 'main', 'other'], stderrToStdout: true });
  const r = root();
  mkdirSync(join(r, 'bin'));
  symlinkSync(BIN, join(r, 'bin', 'svlogd'));
  writeFileSync(join(r, 'run'), yes[0]!, { mode: 0o755 });
  const env = { PATH: `${join(r, 'bin')}:/usr/bin:/bin` };
  const got = recogniseLogRun(join(r, 'run'), { env, self: BIN });
  t.same(got?.settings.timestamp, 2, 'settings parsed');
  t.same(got?.settings.dirs, ['./main']);
  t.notOk(recogniseLogRun(join(r, 'run'), { env: { PATH: dirname(DEB) }, self: BIN }), "runit's svlogd first in PATH: a process");
  chmodSync(join(r, 'run'), 0o644);
  t.notOk(recogniseLogRun(join(r, 'run'), { env, self: BIN }), 'not executable: left to runsv (which fails it)');
  writeFileSync(join(r, 'run2'), '#!/bin/sh\nexec svlogd -r ab main\n', { mode: 0o755 });
  t.notOk(recogniseLogRun(join(r, 'run2'), { env, self: BIN }), 'a usage error: run as a process, which reports it');
  // the same text in two log services (parsed once): each gets settings of its own, and
  // a script changed in place is read anew
  chmodSync(join(r, 'run'), 0o755);
  writeFileSync(join(r, 'run3'), yes[0]!, { mode: 0o755 });
  const a = recogniseLogRun(join(r, 'run'), { env, self: BIN });
  const b = recogniseLogRun(join(r, 'run3'), { env, self: BIN });
  t.not(a?.settings, b?.settings, 'settings of its own each');
  t.same(a?.settings.dirs, ['./main']);
  writeFileSync(join(r, 'run3'), '#!/bin/sh\nexec svlogd -t ./other\n', { mode: 0o755 });
  const c = recogniseLogRun(join(r, 'run3'), { env, self: BIN });
  t.same([c?.settings.timestamp, c?.settings.dirs], [1, ['./other']], 'a changed script: its new text');
});
