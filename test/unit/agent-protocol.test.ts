// The guest agent's protocol (src/lib/agent-protocol.ts): framing, every request and reply
// shape, malformed input; and the QEMU options that attach the agent port, 9p shares and an
// incoming snapshot. The agent core itself (it starts commands with the addon) is in
// test/host/agent-core.test.ts.
import t from 'tap';
import {
  AGENT_PORT_NAME,
  AgentProtocolError,
  encodeFrame,
  FrameSplitter,
  MAX_FRAME_BYTES,
  parseReply,
  parseRequest,
  type AgentReply,
  type AgentRequest,
} from '../../src/lib/agent-protocol.ts';
import { qemuCommand, RAM_BACKEND_ID } from '../../src/harness/qemu.ts';

t.test('every request survives encoding and parsing', async (t) => {
  const reqs: AgentRequest[] = [
    { v: 1, id: 1, op: 'hello', nonce: 'abc' },
    { v: 1, id: 2, op: 'exec', argv: ['sh', '-c', 'exit 3'], env: { A: 'b c' }, cwd: '/tmp', stdin: Buffer.from('in').toString('base64'), timeoutMs: 500 },
    { v: 1, id: 3, op: 'exec', argv: ['true'] },
    { v: 1, id: 4, op: 'write', path: '/x/y', data: 'AAEC', append: true, mode: 0o640 },
    { v: 1, id: 5, op: 'read', path: '/etc/hostname' },
    { v: 1, id: 6, op: 'mount', tag: 'src', path: '/mnt/src', readOnly: true },
    { v: 1, id: 7, op: 'umount', path: '/mnt/src' },
    { v: 1, id: 8, op: 'subscribe' },
  ];
  for (const r of reqs) {
    const wire = encodeFrame(r);
    t.equal(wire.at(-1), 0x0a, `${r.op} ends in a newline`);
    t.same(parseRequest(wire.subarray(0, -1).toString()), r, r.op);
  }
});

t.test('every reply survives encoding and parsing', async (t) => {
  const replies: AgentReply[] = [
    { v: 1, id: 1, type: 'hello', nonce: 'abc', pid: 42 },
    { v: 1, id: 2, type: 'output', stream: 'stderr', data: 'aGk=' },
    { v: 1, id: 2, type: 'exit', code: 3, signal: null, timedOut: false },
    { v: 1, id: 2, type: 'exit', code: null, signal: 'SIGKILL', timedOut: true },
    { v: 1, id: 5, type: 'data', data: '' },
    { v: 1, id: 5, type: 'done', size: 0 },
    { v: 1, id: 6, type: 'error', message: 'no such file', code: 'ENOENT' },
    { v: 1, id: 0, type: 'event', event: { event: 'down', service: 'crond', time: '2026-01-01T00:00:00Z', monotonic: 1.5 } },
  ];
  for (const r of replies) t.same(parseReply(encodeFrame(r).subarray(0, -1).toString()), r, r.type);
});

t.test('the splitter cuts frames at newlines, across chunks', async (t) => {
  const s = new FrameSplitter();
  t.same(s.push(Buffer.from('{"a":1}\n{"b"')), ['{"a":1}']);
  t.same(s.push(Buffer.from(':2}')), [], 'a partial frame waits');
  t.same(s.push(Buffer.from('\n\n{"c":3}\n')), ['{"b":2}', '', '{"c":3}'], 'empty lines come out as empty strings');
  s.push(Buffer.from('{"half'));
  s.reset();
  t.same(s.push(Buffer.from('{"d":4}\n')), ['{"d":4}'], 'reset forgets a partial frame');
  // a multi-byte character split between chunks
  const e = Buffer.from('{"s":"é"}\n');
  t.same([...s.push(e.subarray(0, 7)), ...s.push(e.subarray(7))], ['{"s":"é"}']);
});

t.test('an overlong frame is dropped and reported once; the next one is read', async (t) => {
  const s = new FrameSplitter();
  const big = Buffer.alloc(MAX_FRAME_BYTES + 10, 0x61);
  const out = [...s.push(big.subarray(0, 1000)), ...s.push(big.subarray(1000)), ...s.push(Buffer.from('aaa\n{"ok":1}\n'))];
  t.equal(out.length, 2);
  t.type(out[0], AgentProtocolError);
  t.match((out[0] as Error).message, /over the limit/);
  t.equal(out[1], '{"ok":1}');
  t.throws(() => encodeFrame({ v: 1, id: 1, op: 'write', path: '/x', data: 'A'.repeat(MAX_FRAME_BYTES) }), /over the limit/);
});

t.test('malformed requests are refused with what was wrong', async (t) => {
  const bad: [string, RegExp, number][] = [
    ['not json', /not JSON.*"not json"/, 0],
    ['[1,2]', /not a JSON object/, 0],
    ['{"v":2,"id":3,"op":"hello","nonce":"x"}', /protocol version 2, expected 1/, 3],
    ['{"v":1,"id":-1,"op":"hello","nonce":"x"}', /bad id -1/, 0],
    ['{"v":1,"id":"7","op":"hello","nonce":"x"}', /bad id "7"/, 0],
    ['{"v":1,"id":0,"op":"hello","nonce":"x"}', /positive/, 0],
    ['{"v":1,"id":4,"op":"frob"}', /unknown request op "frob"/, 4],
    ['{"v":1,"id":4}', /unknown request op nothing/, 4],
    ['{"v":1,"id":5,"op":"exec","argv":[]}', /argv must be a non-empty list/, 5],
    ['{"v":1,"id":5,"op":"exec","argv":["a",1]}', /argv must be/, 5],
    ['{"v":1,"id":5,"op":"exec","argv":["a"],"cwd":"tmp"}', /cwd must be an absolute path, got "tmp"/, 5],
    ['{"v":1,"id":5,"op":"exec","argv":["a"],"env":{"A=B":"c"}}', /env must be an object of strings/, 5],
    ['{"v":1,"id":5,"op":"exec","argv":["a"],"stdin":"***"}', /stdin must be base64, got "\*\*\*"/, 5],
    ['{"v":1,"id":5,"op":"exec","argv":["a"],"timeoutMs":-5}', /timeoutMs must be a whole number/, 5],
    ['{"v":1,"id":6,"op":"write","path":"/x","data":"AA==","mode":99999}', /mode must be a file mode/, 6],
    ['{"v":1,"id":7,"op":"mount","tag":"a,b","path":"/m"}', /tag must be a 9p mount tag/, 7],
    ['{"v":1,"id":8,"op":"read"}', /path must be an absolute path, got nothing/, 8],
  ];
  for (const [line, msg, id] of bad) {
    const e = t.throws(() => parseRequest(line), msg, line) as unknown as AgentProtocolError;
    t.type(e, AgentProtocolError);
    t.equal(e.id, id, `${line}: answered to id ${id}`);
  }
});

t.test('unknown fields are ignored (room for later versions of a frame)', async (t) => {
  t.same(parseRequest('{"v":1,"id":6,"op":"read","path":"/x","later":true}'), { v: 1, id: 6, op: 'read', path: '/x' });
});

t.test('malformed replies are refused', async (t) => {
  t.throws(() => parseReply('{"v":1,"id":1,"type":"exit","code":"3","signal":null,"timedOut":false}'), /code must be a whole number or null/);
  t.throws(() => parseReply('{"v":1,"id":1,"type":"output","stream":"stdin","data":""}'), /stream must be/);
  t.throws(() => parseReply('{"v":1,"id":0,"type":"event","event":{"event":"up"}}'), /event must be a service event/);
  t.throws(() => parseReply('{"v":1,"id":1,"type":"nope"}'), /unknown reply type "nope"/);
  t.throws(() => parseReply('{"v":1,"id":1,"type":"hello","nonce":"x"}'), /pid must be a process id/);
});

t.test('qemuCommand: the agent port, 9p shares and an incoming snapshot', async (t) => {
  const c = qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg', agentSocket: '/tmp/a.sock', shares: [{ host: '/src', tag: 'src', readOnly: true }, { host: '/out', tag: 'out' }], incoming: "exec:cat '/s'" });
  const a = c.args.join(' ');
  t.match(a, '-device virtio-serial-pci,id=vser0 -chardev socket,id=agent0,path=/tmp/a.sock,server=on,wait=off');
  t.match(a, `-device virtserialport,bus=vser0.0,chardev=agent0,name=${AGENT_PORT_NAME}`);
  t.match(a, '-virtfs local,path=/src,mount_tag=src,security_model=none,readonly=on');
  t.match(a, '-virtfs local,path=/out,mount_tag=out,security_model=none');
  t.notMatch(a, 'mount_tag=out,security_model=none,readonly');
  t.same(c.args.slice(c.args.indexOf('-incoming'), c.args.indexOf('-incoming') + 2), ['-incoming', "exec:cat '/s'"]);
  t.notMatch(qemuCommand({ arch: 'aarch64', kernel: '/k', accel: 'tcg' }).args.join(' '), /virtserialport|virtfs|incoming/, 'nothing without the options');
  t.throws(() => qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg', shares: [{ host: '/a,b', tag: 't' }] }), /share path must not contain ','/);
  t.throws(() => qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg', shares: [{ host: '/a', tag: 'bad tag' }] }), /share tag must be .*"bad tag"/);
  t.throws(() => qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg', shares: [{ host: '/a', tag: 't' }, { host: '/b', tag: 't' }] }), /tag t given twice/);
});

t.test('qemuCommand: the guest RAM as a named backend (shared file, private file, anonymous)', async (t) => {
  const after = (args: readonly string[], flag: string) => args[args.indexOf(flag) + 1];
  const shared = qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg', memory: 512, ram: { file: '/dev/shm/r/ram', shared: true } });
  t.equal(after(shared.args, '-machine'), `pc,memory-backend=${RAM_BACKEND_ID}`);
  t.equal(after(shared.args, '-object'), `memory-backend-file,id=${RAM_BACKEND_ID},size=512M,mem-path=/dev/shm/r/ram,share=on`);
  const priv = qemuCommand({ arch: 'aarch64', kernel: '/k', accel: 'tcg', ram: { file: '/s.state.ram', shared: false } });
  t.equal(after(priv.args, '-machine'), `virt,memory-backend=${RAM_BACKEND_ID}`);
  t.equal(after(priv.args, '-object'), `memory-backend-file,id=${RAM_BACKEND_ID},size=1024M,mem-path=/s.state.ram,share=off`, 'mapped private: the file is never written');
  t.equal(after(qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg', memory: 256, ram: 'anonymous' }).args, '-object'), `memory-backend-ram,id=${RAM_BACKEND_ID},size=256M`);
  t.notMatch(qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg' }).args.join(' '), /memory-backend/, 'QEMU\'s own RAM without the option');
  t.throws(() => qemuCommand({ arch: 'x86_64', kernel: '/k', accel: 'tcg', ram: { file: '/a,b', shared: true } }), /RAM file path must not contain ',': \/a,b/);
});
