// servicebuilder -c CONFDIR -s STAGEDIR -d SCANDIR: make runit service directories from
// YAML templates, link them where runsvdir looks, and retire the ones no longer described.
import { writeSync } from 'node:fs';
import { Getopt } from '../lib/getopt.ts';
import { SupervisedServices } from '../control/client.ts';
import { DEFAULT_ROOTS, ServiceBuilder } from './builder.ts';

export const HELP = `usage: servicebuilder [-n] [-q] [-c confdir] [-s stagedir] [-d scandir]

Reads every *.yaml (or *.yml) in confdir (default ${DEFAULT_ROOTS.configRoot}), each
mapping service names to templates:

  web:
    run: [python3, -m, http.server, "8080"]   # argv of the service (required)
    log: [svlogd, -tt, ./main]                # argv of its logger (this is the default)
    finish: [logger, web stopped]             # argv of ./finish
    sleep: 2                                  # seconds before run execs (default 2)
    logsleep: 0                               # the same for log/run (default 0)
    env: { PORT: "8080" }                     # envdir ./env, applied with chpst -e
    user: www-data                            # chpst -u user[:group]
    cwd: /srv/web                             # working directory of the service
    restart: always                           # never: a down file (start by hand)
    log_config: [s1000000, n5]                # svlogd config of the default log dir

makes a service directory for each in stagedir (default ${DEFAULT_ROOTS.stagingRoot}),
writing only files whose contents change, links it into scandir (default
${DEFAULT_ROOTS.runitRoot}, the directory runsvdir watches), and stops (sv exit, killed
after 7 s) and removes every staged service that no template describes. A file
that cannot be read is reported and skipped; the others are applied, and nothing
is pruned in that run.
  -n   do not prune
  -q   quiet: print errors only
Exit codes: 0 done, 1 a template file had errors, 100 usage, 111 fatal error.
`;

export async function main(argv: string[], argv0 = 'servicebuilder'): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(HELP);
    return 0;
  }
  const err = (s: string) => writeSync(2, `${argv0}: ${s}\n`);
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
    else {
      writeSync(2, HELP.split('\n')[0] + '\n');
      return 100;
    }
  }
  if (g.index < argv.length) {
    writeSync(2, HELP.split('\n')[0] + '\n');
    return 100;
  }
  const builder = new ServiceBuilder(roots, {
    control: new SupervisedServices({ scanDir: roots.runitRoot }),
    log: quiet ? undefined : (l) => writeSync(1, `${l}\n`),
  });
  let result;
  try {
    result = await builder.apply({ prune });
  } catch (e) {
    err(`fatal: ${(e as Error).message}`);
    return 111;
  }
  for (const e of result.errors) err(e.message.split('\n').join(`\n${argv0}: `));
  return result.errors.length ? 1 : 0;
}
