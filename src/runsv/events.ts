// The supervisor's side of the events (beyond runit): runsvdir's EventHub keeps the
// state changes its services report (src/lib/events.ts says what an event is) and
// serves them on the unix socket DIR/.events (mode 0600) as JSON lines: to a client that
// connects, first the events kept from before (marked "replay": true, up to
// EVENT_BACKLOG), then each event as it happens.
import { chmodSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Server, Socket } from 'node:net';
import type { EventSink, ServiceEvent } from '../lib/events.ts';
import { monotonicNow } from '../lib/servicemodel.ts';
import { isoTime } from '../lib/sys.ts';

/** Events kept for clients that connect later. */
export const EVENT_BACKLOG = 1000;
/** A client that has this much unread is dropped rather than let the supervisor's memory grow. */
export const MAX_CLIENT_BACKLOG_BYTES = 1 << 20;

/** An event as kept: its times taken, its line made only when a client wants it. */
interface Kept {
  e: Omit<ServiceEvent, 'time' | 'monotonic'>;
  at: number;
  monotonic: number;
  line?: string;
}

/** The event's JSON line (the wall time formatted now: most events are never sent). */
function lineOf(k: Kept): string {
  return (k.line ??= JSON.stringify({ ...k.e, time: isoTime(k.at), monotonic: k.monotonic } satisfies ServiceEvent) + '\n');
}

/** Fans events out to every connected client; keeps a backlog for late ones. */
export class EventHub {
  private readonly clients = new Set<Socket>();
  private readonly backlog: Kept[] = [];
  private server: Server | undefined;
  private path: string | undefined;
  /** in-process listeners (container-init), told of each event as it is recorded */
  private readonly listeners = new Set<(e: Omit<ServiceEvent, 'time' | 'monotonic'>) => void>();

  /** Tell `f` of every event from now on (in the supervisor's process); returns the undo. */
  subscribe(f: (e: Omit<ServiceEvent, 'time' | 'monotonic'>) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  /** Record an event and send it to every client. */
  readonly emit: EventSink = (e) => {
    const { at, monotonic, ...rest } = e;
    for (const f of this.listeners) {
      try {
        f(rest);
      } catch {
        /* a listener's failure is its own, never the supervisor's */
      }
    }
    const k: Kept = { e: rest, at: at ?? Date.now(), monotonic: monotonic ?? monotonicNow() };
    this.backlog.push(k);
    if (this.backlog.length > EVENT_BACKLOG) this.backlog.shift();
    if (this.clients.size) {
      const line = lineOf(k);
      for (const c of this.clients) this.send(c, line);
    }
  };

  /** Write a line to a client, dropping one that does not read. */
  private send(c: Socket, line: string): void {
    if (c.writableLength > MAX_CLIENT_BACKLOG_BYTES) {
      c.destroy();
      this.clients.delete(c);
      return;
    }
    c.write(line);
  }

  /**
   * Serve the events on a unix socket at path (a stale one is replaced), mode 0600 from
   * its first moment there: bind() gives a socket 0777 & ~umask and the umask is the
   * whole process's (changing it would change every file made meanwhile), so it is bound
   * in a fresh directory only we can enter (mkdtemp, 0700) beside path, given its mode
   * there and renamed into place. No other user can connect at any moment.
   */
  listen(path: string): Promise<void> {
    let tmp: string;
    try {
      rmSync(path, { force: true });
      // (a short name: a unix socket's path has 108 bytes at most)
      tmp = mkdtempSync(join(dirname(path), '.ev'));
    } catch (e) {
      // a directory we may not write in (a read-only root, another user's): the caller says so
      return Promise.reject(e);
    }
    const bound = join(tmp, 's');
    const done = () => rmSync(tmp, { recursive: true, force: true });
    // node:net loaded here, once the supervisor's first pass is done (not at its start)
    const server = process.getBuiltinModule('node:net').createServer((c) => {
      c.on('error', () => this.clients.delete(c));
      c.on('close', () => this.clients.delete(c));
      c.resume(); // nothing is read from clients; do not let their input pile up
      for (const k of this.backlog) this.send(c, lineOf(k).replace(/}\n$/, ',"replay":true}\n'));
      this.clients.add(c);
    });
    this.server = server;
    this.path = path;
    server.unref(); // the supervisor's life is its services', not its clients'
    return new Promise((res, rej) => {
      server.once('error', (e) => {
        done();
        rej(e);
      });
      server.listen(bound, () => {
        server.removeAllListeners('error');
        // an accept that fails (EMFILE: out of descriptors) drops that client, never the supervisor
        server.on('error', () => {});
        try {
          chmodSync(bound, 0o600);
          renameSync(bound, path);
          res();
        } catch (e) {
          server.close();
          this.server = undefined;
          rej(e);
        } finally {
          done();
        }
      });
    });
  }

  /** Stop serving; clients see EOF. */
  close(): void {
    for (const c of this.clients) c.end();
    this.clients.clear();
    this.server?.close();
    this.server = undefined;
    if (this.path) rmSync(this.path, { force: true });
    this.path = undefined;
  }
}
