// The TypeScript SDK worker. See worker.ts for the overview and
// docs/worker-protocol.md for what it speaks.
export { Worker, workerUrl, type QueueConfig, type WorkerEvents, type WorkerOptions, type WorkerStats } from './worker.ts';
export { PermanentError, failureOf, type FailureReport, type Handler, type HandlerContext } from './handler.ts';
export { ThreadPool, ThreadHandlerError, type ThreadPoolOptions, type ThreadRunHooks } from './threads.ts';
export { checkAssignmentIds, EXEC_ROOTS, ExecError, execDirs, execEnv, InvalidAssignmentError, runExec, type ExecAttempt, type ExecOptions, type ExecOutcome } from './exec.ts';
export { normalizeTrace, readTree, sampleProcess, TraceBuffer, TraceSampler, type TraceSamplerOptions } from './trace.ts';
export { dirPublisher, type DirPublisherConfig } from './publish/dir.ts';
export { s3Publisher, type S3PublisherConfig } from './publish/s3.ts';
export { listOutput, publishDir, PublishError, type OutputFile, type PublishBounds, type Publisher } from './publish/publisher.ts';
