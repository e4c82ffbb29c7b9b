// Unit tests of the pure parts of svlogd and chpst: the pattern language, config
// parsing, djb-style getopt, timestamps, pathexec's environment order.
import t from 'tap';
import { Getopt, scanUlong } from '../../src/lib/getopt.ts';
import { parseConfig } from '../../src/svlogd/config.ts';
import { pmatch } from '../../src/svlogd/pattern.ts';
import { Stamper, tai64nName } from '../../src/svlogd/stamp.ts';
import { Env } from '../../src/chpst/chpst.ts';

const m = (p: string, s: string) => pmatch(Buffer.from(p), Buffer.from(s), 0, s.length);

t.test('pmatch: runit\'s pattern language', async (t) => {
  const cases: Array<[string, string, boolean]> = [
    ['abc', 'abc', true], ['abc', 'abcd', false], ['abc', 'ab', false], ['', '', true], ['', 'a', false],
    ['*', '', true], ['*', 'anything', true], ['a*', 'abc', true], ['*c', 'abc', true], ['*c', 'abd', false],
    ['*b*', 'abc', true], ['*b', 'abcb', false], // no backtracking: * stops at the first b
    ['a+b', 'ab', true], ['a+b', 'ac', false], ['+a', 'aaa', true], ['+ab', 'aaab', true], ['+ab', 'aaa', true], // the line ran out: a match
    ['x+a', 'xaaa', true], ['+a', 'b', false], ['+a', '', false],
    ['*error*', 'an error here', true], ['*error*', 'an err', false], ['e*o*', 'hello', false], ['e*o*', 'echo', true],
  ];
  for (const [p, s, want] of cases) t.equal(m(p, s), want, `${JSON.stringify(p)} ~ ${JSON.stringify(s)}`);
  t.ok(pmatch(Buffer.from('b*'), Buffer.from('xxbcdyy'), 2, 3), 'matches a slice');
});

t.test('config lines', async (t) => {
  const warns: string[] = [];
  const c = parseConfig(Buffer.from('s10k\nn5\nN2\nt2m\n!gzip\npPFX: \n+*a*\n-b*\ne*\nE*x\nu10.0.0.1:600\n# c\n\nzzz\n'), (w, x) => warns.push(`${w}: ${x}`));
  t.same(
    { s: c.sizemax, n: c.nmax, N: c.nmin, t: c.tmax, p: c.processor, pre: c.prefix.toString(), a: c.udpAddress, port: c.udpPort, only: c.udpOnly },
    { s: 10240, n: 5, N: 2, t: 120, p: 'gzip', pre: 'PFX: ', a: '10.0.0.1', port: 600, only: false },
  );
  t.same(c.inst.map((i) => `${i.kind}${i.pattern}`), ['+*a*', '-b*', 'e*', 'E*x']);
  t.same(warns, []);
  t.equal(parseConfig(Buffer.from('s2m\n'), () => {}).sizemax, 2 * 1048576);
  t.equal(parseConfig(Buffer.from('t3h\n'), () => {}).tmax, 3 * 3600);
  t.equal(parseConfig(Buffer.from('s\n'), () => {}).sizemax, 0, '"s" alone: 0');
  const u = parseConfig(Buffer.from('U300.1.2.3\nu1.2.3.4:0\nu1.2.3\nU'), (w, x) => warns.push(`${w}: ${x}`));
  t.equal(u.udpOnly, true, 'U sets UDP-only even with a bad address (as runit)');
  t.equal(u.udpAddress, '44.1.2.3', 'octets modulo 256 (as runit)');
  t.same(warns, ['unable to scan port number: 0', 'unable to scan ip address: 1.2.3']);
  t.equal(parseConfig(Buffer.from('u1.2.3.4\n'), () => {}).udpPort, 514, 'default port');
  t.equal(parseConfig(Buffer.from('n3\nn'), () => {}).nmax, 3, 'a last one-character line without newline is skipped');
});

t.test('getopt as djb\'s sgetopt', async (t) => {
  const errs: string[] = [];
  const run = (argv: string[], spec: string) => {
    const g = new Getopt(argv, spec, '/x/prog', (s) => errs.push(s));
    const got: string[] = [];
    for (let o = g.next(); o; o = g.next()) got.push(o.arg === undefined ? o.c : `${o.c}=${o.arg}`);
    return [got, g.rest()];
  };
  t.same(run(['-tt', '-l80', '-b', '9', 'dir'], 'l:b:t'), [['t', 't', 'l=80', 'b=9'], ['dir']]);
  t.same(run(['--', '-t'], 't'), [[], ['-t']]);
  t.same(run(['-', '-t'], 't'), [[], ['-', '-t']]);
  t.same(run(['-tx'], 't'), [['t', '?'], []]);
  t.same(run(['-l'], 'l:'), [['?'], []]);
  t.same(errs, ['prog: illegal option -- x\n', 'prog: option requires an argument -- l\n']);
  t.same(scanUlong('12ab'), [12, 2]);
  t.same(scanUlong(''), [0, 0]);
});

t.test('timestamps', async (t) => {
  const ms = Date.UTC(2026, 10, 21, 6, 19, 12) + 34.567891;
  const b = Buffer.alloc(26);
  new Stamper(2).write(ms, b, 0);
  t.equal(b.toString(), '2026-11-21_06:19:12.03456 ');
  new Stamper(3).write(ms, b, 0);
  t.equal(b.toString(), '2026-11-21T06:19:12.03456 ');
  new Stamper(1).write(ms, b, 0);
  const sec = (0x400000000000000an + BigInt(Math.floor(ms / 1000))).toString(16);
  t.equal(b.toString(), `@${sec}${(34567 * 1000 + 500).toString(16).padStart(8, '0')} `, 'TAI64N: 2^62 + 10 + seconds, nanoseconds = usec*1000+500');
  t.equal(tai64nName(ms), b.toString().slice(0, 25));
});

t.test('chpst environment: pathexec order', async (t) => {
  const e = new Env();
  e.set('A', 'new');
  e.set('B', undefined);
  e.set('N', 'x=y');
  t.same(e.build({ A: '1', B: '2', C: '3', D: '4' }), ['D=4', 'A=new', 'C=3', 'N=x=y'], 'a removed slot takes the last variable, new ones go at the end');
});
