// Describe services in servicebuilder's YAML, then stage, link and prune them.
// Usage: node examples/builder.ts CONFDIR STAGEDIR SCANDIR
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServiceBuilder, SupervisedServices } from '../src/index.ts';

const [configRoot = '/etc/servicebuilder.d', stagingRoot = '/var/service-stage', runitRoot = '/var/service'] = process.argv.slice(2);
mkdirSync(configRoot, { recursive: true });
writeFileSync(join(configRoot, 'web.yaml'), `web:
  run: [sleep, "1000"]
  sleep: 0
  env: { PORT: "8080" }
  restart: always
`);
const builder = new ServiceBuilder({ configRoot, stagingRoot, runitRoot }, { control: new SupervisedServices({ scanDir: runitRoot }) });
const r = await builder.apply(); // stage, link into runitRoot, prune what no file describes
console.log(JSON.stringify({ staged: r.staged, activated: r.activated, pruned: r.pruned, errors: r.errors.map((e) => e.message) }));
