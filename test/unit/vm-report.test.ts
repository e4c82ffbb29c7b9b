// runit-ts-vm test's outputs and config: the schema's errors (one line naming file and
// field), targets resolved against the config's folder, TAP 14 points with YAML blocks
// that a TAP parser reads back, and JUnit XML escaped so that an XML parser reads it back.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfig, parseConfig, targetArgv } from '../../src/vm/config.ts';
import { VmError } from '../../src/vm/errors.ts';
import { junitXml, lastLines, tapHeader, tapPoint, xmlEscape, type TargetResult } from '../../src/vm/report.ts';
import { defaultJobs, suiteCode } from '../../src/vm/suite.ts';

const dir = mkdtempSync(join(tmpdir(), 'runit-ts-vm-cfg-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** The one-line usage error a config text gives. */
function configError(text: string): string {
  try {
    parseConfig(text, 'vm.yaml');
  } catch (e) {
    if (e instanceof VmError && e.kind === 'usage') return e.message;
    throw e;
  }
  return '(no error)';
}

t.test('schema errors: one line each, naming the file and the field', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /^vm\.yaml: the config is empty/],
    ['targets: [', /^vm\.yaml: line \d+: not valid YAML/],
    ['targets: []', /^vm\.yaml: field \/targets: .*must NOT have fewer than 1 items/],
    ['tagets: []', /^vm\.yaml: field \/: missing required field "targets"/],
    ['targets: [{ name: a, command: x }]\nextra: 1', /^vm\.yaml: field \/extra: unknown field \(expected one of: targets\)/],
    ['targets: [{ name: a }]', /^vm\.yaml: field \/targets\/0: missing required field "command"/],
    ['targets: [{ name: a, command: x, arch: mips }]', /^vm\.yaml: field \/targets\/0\/arch: "mips" must be one of: x86_64, aarch64, amd64, arm64/],
    ['targets: [{ name: "a b", command: x }]', /^vm\.yaml: field \/targets\/0\/name: "a b" must match/],
    ['targets: [{ name: a, command: x, timeout: soon }]', /^vm\.yaml: field \/targets\/0\/timeout: "soon" must be of type number/],
    ['targets: [{ name: a, command: 3 }]', /^vm\.yaml: field \/targets\/0\/command: 3 must be of type string or array/],
    ['targets: [{ name: a, command: x, kernal: k }]', /^vm\.yaml: field \/targets\/0\/kernal: unknown field/],
    ['targets: [{ name: a, command: x }, { name: a, command: y }]', /^vm\.yaml: field \/targets\/1\/name: "a" is the name of an earlier target/],
  ];
  for (const [text, want] of cases) {
    const msg = configError(text);
    t.match(msg, want, JSON.stringify(text));
    t.notMatch(msg, /\n/, 'one line');
  }
});

t.test('targets resolve against the config folder; a bad path names the target', async (t) => {
  writeFileSync(join(dir, 'vm.yaml'), `
targets:
  - name: one
    command: "echo hi; exit 3"
    timeout: 5
    arch: arm64
    shares: ["sub:/data,rw"]
  - name: two
    command: ["true"]
    cwdShare: false
    snapshot: true
`);
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(dir, 'sub'));
  const [one, two] = loadConfig(join(dir, 'vm.yaml'));
  t.strictSame(one!.command, ['sh', '-c', 'echo hi; exit 3']);
  t.equal(one!.arch, 'aarch64');
  t.equal(one!.timeout, 5);
  t.equal(one!.cwd, dir, 'the config folder is the working directory');
  t.strictSame(one!.shares, [{ host: dir, guest: dir, rw: false }, { host: join(dir, 'sub'), guest: '/data', rw: true }]);
  t.strictSame(two!.shares, []);
  t.equal(two!.cwd, '/');
  t.equal(two!.snapshot, true);
  t.strictSame(loadConfig(join(dir, 'vm.yaml'), 'tw').map((r) => r.name), ['two'], '--filter');
  t.throws(() => loadConfig(join(dir, 'vm.yaml'), 'zzz'), /no target's name contains 'zzz'/);
  writeFileSync(join(dir, 'bad.yaml'), 'targets: [{ name: k, command: x, kernel: nope/bzImage }]\n');
  t.throws(() => loadConfig(join(dir, 'bad.yaml')), /bad\.yaml: target 0 \(k\): --kernel 'nope\/bzImage' does not exist/);
  t.strictSame(targetArgv(['a', 'b c']), ['a', 'b c']);
});

const pass: TargetResult = { name: 'good', code: 0, ok: true, seconds: 1.234, consoleLog: '/tmp/good.console.log', stderrTail: '' };
const fail: TargetResult = {
  name: 'bad # one',
  code: 124,
  ok: false,
  line: 'the command timed out after 1 s',
  seconds: 2,
  consoleLog: '/tmp/bad.console.log',
  stderrTail: Array.from({ length: 15 }, (_, i) => `line ${i} <&>"'\u0001`).join('\n') + '\n',
};

t.test('TAP 14: plan, points in order, YAML blocks', async (t) => {
  const tap = tapHeader(2) + tapPoint(1, pass) + tapPoint(2, fail);
  const lines = tap.split('\n');
  t.equal(lines[0], 'TAP version 14');
  t.equal(lines[1], '1..2');
  t.equal(lines[2], 'ok 1 - good');
  t.ok(lines.includes('not ok 2 - bad \\# one'), 'a # in a name is escaped');
  // each YAML block sits between "  ---" and "  ..." and parses back
  const blocks = [...tap.matchAll(/\n {2}---\n([\s\S]*?)\n {2}\.\.\.\n/g)].map((m) => parseYaml(m[1]!.replace(/^ {2}/gm, '')) as Record<string, unknown>);
  t.equal(blocks.length, 2);
  t.strictSame(blocks[0], { exitCode: 0, duration_ms: 1234, consoleLog: '/tmp/good.console.log' });
  t.equal(blocks[1]!['exitCode'], 124);
  t.equal(blocks[1]!['message'], 'the command timed out after 1 s');
  t.equal(blocks[1]!['stderr'], lastLines(fail.stderrTail), 'the last lines of stderr');
  t.equal(String(blocks[1]!['stderr']).split('\n').length, 10);
  t.match(String(blocks[1]!['stderr']), /^line 5 /);
});

t.test('JUnit XML: counts, failure, escaping', async (t) => {
  const xml = junitXml('vm & co', [pass, fail]);
  t.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites tests="2" failures="1"/);
  t.match(xml, /<testsuite name="vm &amp; co" tests="2" failures="1" errors="0" skipped="0" time="3.234">/);
  t.match(xml, /<testcase name="good" classname="vm &amp; co" time="1.234">\n {4}<\/testcase>/);
  t.match(xml, /<testcase name="bad # one"[^>]*>\n {6}<failure message="the command timed out after 1 s" type="exit-124">exit code 124\nconsole log: \/tmp\/bad.console.log\n/);
  t.notMatch(xml, /\u0001/, 'control characters are replaced');
  t.match(xml, /line 0 &lt;&amp;&gt;&quot;&apos;\uFFFD/);
  t.equal(xmlEscape('a<b>&"\''), 'a&lt;b&gt;&amp;&quot;&apos;');
  // well-formed: every element opened is closed, in order
  const stack: string[] = [];
  for (const m of xml.matchAll(/<(\/?)([a-z-]+)[^>]*?(\/?)>/g)) {
    if (m[1] === '/') t.equal(stack.pop(), m[2], `</${m[2]}> closes its element`);
    else if (m[3] !== '/') stack.push(m[2]!);
  }
  t.strictSame(stack, []);
});

t.test('suite exit code and default jobs', async (t) => {
  t.equal(suiteCode([pass]), 0);
  t.equal(suiteCode([pass, fail]), 1);
  t.equal(defaultJobs(2), 1);
  t.equal(defaultJobs(1), 1);
  t.equal(defaultJobs(8), 4);
});
