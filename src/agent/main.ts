// runit-ts agent: the guest agent of the harness image (services/agent runs it). Thin:
// finds the virtio-serial port, then hands it to the core (src/agent/core.ts).
import { Getopt } from '../lib/getopt.ts';
import { INTERPRETER_ONLY, setV8Flags } from '../lib/trim.ts';
import { Agent, findPort, PortTransport } from './core.ts';
import { AGENT_PORT_NAME, PROTOCOL_VERSION } from '../lib/agent-protocol.ts';

export const HELP = `usage: runit-ts agent [-p port-name] [-d scandir]

The guest agent of the QEMU harness (runit-ts/harness: Machine.exec and friends).
Serves the host on the virtio-serial port named port-name (default ${AGENT_PORT_NAME};
QEMU: -device virtserialport,name=${AGENT_PORT_NAME}), found as /dev/vportNpM
through /sys/class/virtio-ports (waits for it to appear): runs commands (argv, env,
cwd, stdin, timeout) with separate stdout and stderr and their exit code or signal,
copies files both ways, mounts 9p shares, and forwards the supervisor's events of
scandir (default $SVDIR, else /etc/service). Protocol version ${PROTOCOL_VERSION}:
newline-delimited JSON (src/lib/agent-protocol.ts). Runs until TERM.
Exit codes: 0 stopped by TERM or INT, 100 usage.
`;

/** How often (ms) the port is looked for until it appears (the module may still be loading). */
const PORT_WAIT_MS = 100;
/**
 * V8's flags for the agent: its JavaScript in the interpreter only (src/lib/trim.ts), and
 * the bytecode of functions not run for a while kept. A guest saved as a snapshot restarts
 * with TCG's translations gone: V8 compiling then (a function whose bytecode was flushed, a
 * hot one moved up a tier) runs V8's compiler, all of it code TCG must translate first, in
 * the middle of the restored machine's first request. No memory reducer: V8 collects an
 * idle heap some seconds after its last collection; in a guest saved within those seconds,
 * that collection (V8's whole collector, translated again) comes after the restore,
 * beside the first command.
 */
const AGENT_V8_FLAGS = `${INTERPRETER_ONLY} --no-flush-bytecode --no-memory-reducer`;

/** The applet: serve the port until TERM (runsv's sv down). */
export async function main(argv: string[]): Promise<number> {
  let port = AGENT_PORT_NAME;
  let scanDir = process.env['SVDIR'] ?? '/etc/service';
  if (argv[0] === '--help') {
    process.stdout.write(HELP);
    return 0;
  }
  const g = new Getopt(argv, 'p:d:h', 'runit-ts agent');
  for (let o = g.next(); o !== undefined; o = g.next()) {
    if (o.c === 'p') port = o.arg!;
    else if (o.c === 'd') scanDir = o.arg!;
    else {
      (o.c === 'h' ? process.stdout : process.stderr).write(o.c === 'h' ? HELP : HELP.split('\n')[0] + '\n');
      return o.c === 'h' ? 0 : 100;
    }
  }
  if (g.index < argv.length) {
    process.stderr.write(HELP.split('\n')[0] + '\n');
    return 100;
  }
  setV8Flags(AGENT_V8_FLAGS);
  let path = findPort(port);
  if (path === undefined) process.stderr.write(`agent: waiting for virtio-serial port ${port}\n`);
  while (path === undefined) {
    await new Promise((r) => setTimeout(r, PORT_WAIT_MS));
    path = findPort(port);
  }
  let agent: Agent | undefined;
  const transport = new PortTransport(path, {
    onData: (d) => agent?.receive(d),
    onConnect: () => undefined,
    onDisconnect: () => agent?.endSession(),
  });
  agent = new Agent(transport, { scanDir });
  process.stderr.write(`agent: serving ${port} on ${path}\n`);
  return new Promise<number>((resolve) => {
    const stop = () => {
      agent?.endSession();
      transport.close();
      resolve(0);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
