import t from 'tap';
import { createSocket } from 'node:dgram';
import { parseServer, query, readTimestamp, serve, writeTimestamp } from '../../src/sntp/sntp.ts';

t.test('NTP timestamps', async (t) => {
  const b = Buffer.alloc(8);
  writeTimestamp(b, 0, 1_700_000_000_250);
  t.equal(b.readUInt32BE(0), 1_700_000_000 + 2208988800, 'seconds since 1900');
  t.equal(b.readUInt32BE(4), 2 ** 30, 'a quarter second');
  t.ok(Math.abs(readTimestamp(b, 0) - 1_700_000_000_250) < 0.001, 'and back');
});

t.test('server names', async (t) => {
  t.same(parseServer('pool.example'), { host: 'pool.example', port: 123 });
  t.same(parseServer('10.0.2.2:1123'), { host: '10.0.2.2', port: 1123 });
  t.same(parseServer('[::1]:123'), { host: '::1', port: 123 });
  t.same(parseServer('::1'), { host: '::1', port: 123 });
  t.throws(() => parseServer('host:99999'), /not a port/);
});

t.test('a query against a server on loopback', async (t) => {
  const srv = await serve(0, '127.0.0.1', 3600_000);
  t.teardown(() => srv.close());
  const r = await query(`127.0.0.1:${srv.address().port}`, 5000);
  t.ok(Math.abs(r.offset - 3600) < 0.5, `offset ${r.offset} s: the server's clock is an hour ahead`);
  t.ok(r.delay >= 0 && r.delay < 1, `delay ${r.delay} s`);
  t.equal(r.stratum, 2);
});

t.test('an answer that is not to our query is ignored; no answer times out', async (t) => {
  // a server that answers with a wrong originate timestamp
  const sock = createSocket('udp4');
  await new Promise<void>((ok) => sock.bind(0, '127.0.0.1', ok));
  t.teardown(() => sock.close());
  sock.on('message', (_m, rinfo) => {
    const r = Buffer.alloc(48);
    r[0] = (4 << 3) | 4;
    r[1] = 2;
    sock.send(r, rinfo.port, rinfo.address);
  });
  await t.rejects(query(`127.0.0.1:${sock.address().port}`, 500), /no answer from .* in 0\.5 s/);
});
