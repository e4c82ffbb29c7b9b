// The guest agent's core (src/agent/core.ts) over an in-memory transport, on this host: its
// replies to hello, exec, write and read, its errors, how a session ends, how a new host's
// hello ends the session before it, and how it finds and starts commands (the addon's
// spawn, PATH looked up as execvp does, /bin/sh for a file that is neither script nor binary).
import t from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { encodeFrame, FrameSplitter, parseReply, type AgentReply, type AgentRequest } from '../../src/lib/agent-protocol.ts';
import { BIN, haveBin } from '../lib/host.ts';

if (!haveBin()) t.fail(`${BIN} is missing: run make build`);
process.env.RUNIT_TS_ADDON ??= join(dirname(BIN), 'runit-ts.node');
const { Agent, findCommand } = await import('../../src/agent/core.ts');
type Agent = InstanceType<typeof Agent>;
// in the guest the agent's watch of its port keeps its process running; here this does
// (a child's SIGCHLD, the last thing an exec waits for, would not)
const alive = setInterval(() => undefined, 60_000);
t.teardown(() => clearInterval(alive));

/** An agent core whose replies are collected; `until` waits for one matching. */
function agentHarness(): { agent: Agent; replies: AgentReply[]; raw: Buffer[]; until: (f: (r: AgentReply) => boolean) => Promise<AgentReply>; send: (r: AgentRequest) => void } {
  const replies: AgentReply[] = [];
  const raw: Buffer[] = [];
  const waiters: [(r: AgentReply) => boolean, (r: AgentReply) => void][] = [];
  const split = new FrameSplitter();
  const agent = new Agent({
    write(data) {
      raw.push(data);
      for (const line of split.push(data)) {
        if (typeof line !== 'string' || line === '') continue;
        const r = parseReply(line);
        replies.push(r);
        for (const w of [...waiters]) if (w[0](r)) (waiters.splice(waiters.indexOf(w), 1), w[1](r));
      }
    },
  });
  const until = (f: (r: AgentReply) => boolean) => {
    const seen = replies.find(f);
    return seen ? Promise.resolve(seen) : new Promise<AgentReply>((res) => waiters.push([f, res]));
  };
  return { agent, replies, raw, until, send: (r) => agent.receive(encodeFrame(r)) };
}

t.test('the agent core: hello, exec, files, errors', async (t) => {
  const h = agentHarness();
  h.send({ v: 1, id: 1, op: 'hello', nonce: 'n1' });
  const hello = await h.until((r) => r.id === 1);
  t.same(hello, { v: 1, id: 1, type: 'hello', nonce: 'n1', pid: process.pid });
  t.equal(h.raw[0]?.toString(), '\n', 'a newline goes before the hello reply');

  h.send({ v: 1, id: 2, op: 'exec', argv: ['sh', '-c', 'cat; echo err >&2; exit 3'], stdin: Buffer.from('in\n').toString('base64') });
  const exit = await h.until((r) => r.id === 2 && r.type === 'exit');
  t.same(exit, { v: 1, id: 2, type: 'exit', code: 3, signal: null, timedOut: false });
  const out = (stream: string) => Buffer.concat(h.replies.filter((r) => r.id === 2 && r.type === 'output' && r.stream === stream).map((r) => Buffer.from((r as { data: string }).data, 'base64'))).toString();
  t.equal(out('stdout'), 'in\n');
  t.equal(out('stderr'), 'err\n');

  h.send({ v: 1, id: 3, op: 'exec', argv: ['sleep', '30'], timeoutMs: 100 });
  t.same(await h.until((r) => r.id === 3 && r.type === 'exit'), { v: 1, id: 3, type: 'exit', code: null, signal: 'SIGKILL', timedOut: true });

  const dir = mkdtempSync(join(tmpdir(), 'runit-ts-agent-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'a', 'b.txt');
  h.send({ v: 1, id: 4, op: 'write', path: file, data: Buffer.from('one ').toString('base64') });
  await h.until((r) => r.id === 4);
  h.send({ v: 1, id: 5, op: 'write', path: file, data: Buffer.from('two').toString('base64'), append: true });
  t.same(await h.until((r) => r.id === 5), { v: 1, id: 5, type: 'done', size: 3 });
  t.equal(readFileSync(file, 'utf8'), 'one two', 'written, then appended, its directory made');
  h.send({ v: 1, id: 6, op: 'read', path: file });
  t.same(await h.until((r) => r.id === 6 && r.type === 'done'), { v: 1, id: 6, type: 'done', size: 7 });
  h.send({ v: 1, id: 7, op: 'read', path: join(dir, 'none') });
  const missing = await h.until((r) => r.id === 7);
  t.equal(missing.type, 'error');
  t.equal((missing as { code?: string }).code, 'ENOENT');

  h.send({ v: 1, id: 8, op: 'exec', argv: ['/no/such/program'] });
  const noProg = await h.until((r) => r.id === 8);
  t.match(noProg, { type: 'error', code: 'ENOENT' });

  h.agent.receive(Buffer.from('{"v":1,"id":9,"op":"exec","argv":[]}\nrubbish\n'));
  t.match(await h.until((r) => r.id === 9), { type: 'error', code: 'EPROTO', message: /argv/ });
  t.match(await h.until((r) => r.id === 0 && r.type === 'error'), { code: 'EPROTO', message: /not JSON/ });
});

t.test('the agent core: a session that ends kills its commands and answers nothing more', async (t) => {
  const h = agentHarness();
  h.send({ v: 1, id: 1, op: 'exec', argv: ['sh', '-c', 'echo started; sleep 30'] });
  await h.until((r) => r.id === 1 && r.type === 'output');
  const t0 = Date.now();
  h.agent.endSession();
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(h.replies.some((r) => r.type === 'exit'), 'no exit sent to a session that ended');
  t.ok(Date.now() - t0 < 5000);
  // a partial frame of the old session is forgotten
  h.agent.receive(Buffer.from('{"v":1,"id":2,'));
  h.agent.endSession();
  h.send({ v: 1, id: 3, op: 'hello', nonce: 'again' });
  t.match(await h.until((r) => r.id === 3), { type: 'hello', nonce: 'again' });
});


t.test('the agent core: a hello with another nonce ends the session before it, one sent again does not', async (t) => {
  const h = agentHarness();
  h.send({ v: 1, id: 1, op: 'hello', nonce: 'first' });
  await h.until((r) => r.id === 1);
  h.send({ v: 1, id: 2, op: 'exec', argv: ['sh', '-c', 'echo started; sleep 30'] });
  await h.until((r) => r.id === 2 && r.type === 'output');
  h.send({ v: 1, id: 3, op: 'hello', nonce: 'first' });
  await h.until((r) => r.id === 3);
  h.send({ v: 1, id: 4, op: 'exec', argv: ['true'] });
  await h.until((r) => r.id === 4 && r.type === 'exit');
  t.notOk(h.replies.some((r) => r.id === 2 && r.type === 'exit'), 'the same nonce again: the command runs on');
  const t0 = Date.now();
  // a host that came while the session stood (a restored machine's): its hello ends it
  h.send({ v: 1, id: 5, op: 'hello', nonce: 'second' });
  t.match(await h.until((r) => r.id === 5), { type: 'hello', nonce: 'second' });
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(h.replies.some((r) => r.id === 2 && r.type === 'exit'), 'the earlier session\'s command is not answered');
  t.ok(Date.now() - t0 < 5000, 'and it was killed, not waited for');
  h.send({ v: 1, id: 6, op: 'exec', argv: ['sh', '-c', 'echo still'] });
  t.same(await h.until((r) => r.id === 6 && r.type === 'exit'), { v: 1, id: 6, type: 'exit', code: 0, signal: null, timedOut: false }, 'the new session runs commands');
});

t.test('the agent core: stdin is empty without one, output comes before the exit, a signal is named', async (t) => {
  const h = agentHarness();
  h.send({ v: 1, id: 1, op: 'exec', argv: ['sh', '-c', 'cat; echo "[$?]"'] });
  t.same(await h.until((r) => r.id === 1 && r.type === 'exit'), { v: 1, id: 1, type: 'exit', code: 0, signal: null, timedOut: false });
  const out = h.replies.filter((r) => r.id === 1 && r.type === 'output').map((r) => Buffer.from((r as { data: string }).data, 'base64').toString()).join('');
  t.equal(out, '[0]\n', 'end of file at once on stdin');
  t.ok(h.replies.findIndex((r) => r.id === 1 && r.type === 'output') < h.replies.findIndex((r) => r.id === 1 && r.type === 'exit'), 'the output first');
  h.send({ v: 1, id: 2, op: 'exec', argv: ['sh', '-c', 'kill -TERM $$'] });
  t.same(await h.until((r) => r.id === 2 && r.type === 'exit'), { v: 1, id: 2, type: 'exit', code: null, signal: 'SIGTERM', timedOut: false });
  h.send({ v: 1, id: 3, op: 'exec', argv: ['sh', '-c', 'echo "$X $PWD"'], env: { X: 'given' }, cwd: '/tmp' });
  await h.until((r) => r.id === 3 && r.type === 'exit');
  t.equal(Buffer.from((h.replies.find((r) => r.id === 3 && r.type === 'output') as { data: string }).data, 'base64').toString(), 'given /tmp\n', 'env and cwd');
  h.send({ v: 1, id: 4, op: 'exec', argv: ['true'], cwd: '/no/such/dir' });
  t.match(await h.until((r) => r.id === 4), { type: 'error', code: 'ENOENT' }, 'a working directory that is not there');
});

t.test('findCommand: PATH as execvp reads it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'runit-ts-agent-path-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const d of ['a', 'b', 'c']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'a', 'tool'), 'not executable', { mode: 0o644 });
  writeFileSync(join(dir, 'b', 'tool'), '#!/bin/sh\n', { mode: 0o755 });
  mkdirSync(join(dir, 'c', 'tool'));
  t.equal(findCommand('tool', `${join(dir, 'c')}:${join(dir, 'a')}:${join(dir, 'b')}`, '/'), join(dir, 'b', 'tool'), 'a directory and a file that cannot run are passed over');
  t.equal(findCommand('./tool', '/nowhere', join(dir, 'b')), './tool', 'a name with a slash is taken as it is');
  t.equal(findCommand('tool', 'b', dir), join(dir, 'b', 'tool'), 'a relative directory is taken from the working directory');
  t.throws(() => findCommand('tool', join(dir, 'a'), '/'), { code: 'EACCES' }, 'only one that cannot run: EACCES');
  t.throws(() => findCommand('none', `${join(dir, 'a')}:/no/such`, '/'), { code: 'ENOENT' });
  t.throws(() => findCommand('', '/bin', '/'), { code: 'ENOENT' });
});

t.test('the agent core: a file that is neither script nor binary is run by /bin/sh', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'runit-ts-agent-sh-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'plain');
  writeFileSync(file, 'echo "ran as $0 with $1"\n');
  chmodSync(file, 0o755);
  const h = agentHarness();
  h.send({ v: 1, id: 1, op: 'exec', argv: [file, 'arg'] });
  t.same(await h.until((r) => r.id === 1 && r.type === 'exit'), { v: 1, id: 1, type: 'exit', code: 0, signal: null, timedOut: false });
  t.equal(Buffer.from((h.replies.find((r) => r.id === 1 && r.type === 'output') as { data: string }).data, 'base64').toString(), `ran as ${file} with arg\n`);
  t.equal(readFileSync(file, 'utf8'), 'echo "ran as $0 with $1"\n');
});
