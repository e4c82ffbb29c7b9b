// runit-ts as a library: typed control of services supervised by runit's runsv (or
// ours), test doubles of that control, and the declarative service builder.
//
//   import { SupervisedServices } from 'runit-ts';
//   const sv = new SupervisedServices({ scanDir: '/etc/service' });
//   await sv.restart('web', { timeoutMs: 5000 });
//   console.log((await sv.status('web')).pid);

export { SupervisedServices, runCheck, DEFAULT_POLL_MS, DEFAULT_WAIT_S, EVENT_SOCKET, type ClientOptions } from './control/client.ts';
export { statusJson } from './control/cli.ts';
export { FakeServices, FailingServices, RecordingServices, type FakeServiceOptions, type RecordedCommand } from './control/doubles.ts';
export {
  ServiceError,
  type ProcessStatus,
  type ServiceControl,
  type ServiceErrorReason,
  type ServiceEvent,
  type ServiceSignal,
  type ServiceState,
  type ServiceStatus,
  type WaitCondition,
  type WaitOptions,
} from './control/types.ts';
export {
  DEFAULT_PRUNE_TIMEOUT_MS,
  DEFAULT_ROOTS,
  ServiceBuilder,
  type ApplyResult,
  type BuilderOptions,
  type BuilderRoots,
  type LoadedTemplate,
  type LoadResult,
} from './servicebuilder/builder.ts';
export {
  DEFAULT_LOG,
  DEFAULT_LOG_DIR,
  DEFAULT_LOG_USER,
  DEFAULT_LOGSLEEP_S,
  DEFAULT_SLEEP_S,
  parseTemplates,
  renderService,
  shellQuote,
  TemplateError,
  type RenderOptions,
  type RestartPolicy,
  type ServiceFiles,
  type ServiceTemplate,
  type Templates,
} from './servicebuilder/template.ts';
