// servicebuilder -c CONFDIR -s STAGEDIR -d SCANDIR: make runit service directories from
// YAML templates, link them where runsvdir looks, and retire the ones no longer described.
// Its diagnostics are runit's (src/lib/diag.ts): a template file that cannot be used is
// a warning (the others are applied; exit 1), anything else that stops the run is fatal.
import { Getopt } from '../lib/getopt.ts';
import { fatal, outWrite, runToolAsync, usage, warn } from '../lib/diag.ts';
import { SupervisedServices } from '../control/client.ts';
import { DEFAULT_ROOTS, ServiceBuilder, type ApplyResult } from './builder.ts';
import { DEFAULT_LOG_USER } from './template.ts';

/** The arguments of the usage line. */
const USAGE = ' [-n] [-q] [-c confdir] [-s stagedir] [-d scandir]';

export const HELP = `usage: servicebuilder${USAGE}

Reads every *.yaml (or *.yml) in confdir (default ${DEFAULT_ROOTS.configRoot}), each
mapping service names to templates:

  web:
    run: [python3, -m, http.server, "8080"]   # argv of the service (required)
    log: [svlogd, -tt, ./main]                # argv of its logger (default: chpst -u
                                              # ${DEFAULT_LOG_USER} svlogd -tt ./main)
    finish: [logger, web stopped]             # argv of ./finish
    sleep: 2                                  # seconds before run execs (default 2)
    logsleep: 0                               # the same for log/run (default 0)
    env: { PORT: "8080" }                     # envdir ./env, applied with chpst -e
    user: www-data                            # chpst -u user[:group]
    cwd: /srv/web                             # working directory of the service
    restart: always                           # never: a down file (start by hand)
    log_config: [s1000000, n5]                # svlogd config of the default logger

makes a service directory for each in stagedir (default ${DEFAULT_ROOTS.stagingRoot}),
writing only files whose contents change, links it into scandir (default
${DEFAULT_ROOTS.runitRoot}, the directory runsvdir watches), and stops (sv exit, killed
after 7 s) and removes every staged service that no template describes. A file
that cannot be read is reported and skipped; the others are applied, and nothing
is pruned in that run.
Every service gets the log directory log/main (mode 0755), owned by ${DEFAULT_LOG_USER}, the
account the default logger runs as. Not run as root, servicebuilder chowns nothing
and the default logger runs as its own user. Without the account ${DEFAULT_LOG_USER}, a
service with the default logger is reported and not staged.
  -n   do not prune
  -q   quiet: print errors only
Exit codes: 0 done, 1 a template file or service had errors, 100 usage, 111 fatal.
`;

/** The servicebuilder applet (also the npm package's runit-ts-servicebuilder). */
export async function main(argv: string[], argv0 = 'servicebuilder'): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    outWrite(HELP);
    return 0;
  }
  return runToolAsync(async () => {
    const g = new Getopt(argv, 'c:s:d:nq', argv0);
    const roots = { ...DEFAULT_ROOTS };
    let prune = true;
    let quiet = false;
    for (let o = g.next(); o; o = g.next()) {
      if (o.c === 'c') roots.configRoot = o.arg!;
      else if (o.c === 's') roots.stagingRoot = o.arg!;
      else if (o.c === 'd') roots.runitRoot = o.arg!;
      else if (o.c === 'n') prune = false;
      else if (o.c === 'q') quiet = true;
      else usage(argv0, USAGE);
    }
    if (g.index < argv.length) usage(argv0, USAGE);
    const builder = new ServiceBuilder(roots, {
      control: new SupervisedServices({ scanDir: roots.runitRoot }),
      log: quiet ? undefined : (l) => outWrite(`${l}\n`),
    });
    let result: ApplyResult;
    try {
      result = await builder.apply({ prune });
    } catch (e) {
      fatal(argv0, e instanceof Error ? e.message : String(e));
    }
    // a TemplateError holds one problem a line, each naming its file
    for (const e of result.errors) for (const line of e.message.split('\n')) warn(argv0, line);
    return result.errors.length ? 1 : 0;
  });
}
