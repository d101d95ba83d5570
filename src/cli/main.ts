#!/usr/bin/env node
// `gaffer`: the command line. Every command has --help; client commands take
// --json for scripts.
import { Command } from 'commander';
import { GafferClientError } from '../client/client.ts';
import { isGafferError } from '../types/errors.ts';
import { registerAdvise } from './advise.ts';
import { registerBridge } from './bridge.ts';
import { registerClientCommands } from './client-commands.ts';
import { registerQueueCommands } from './queue-commands.ts';
import { registerPipelineCommands } from './pipeline-commands.ts';
import { registerServe } from './serve.ts';
import { registerWorker } from './worker.ts';
import { registerDevstack } from './devstack.ts';
import { registerDevPostgres } from './dev-postgres.ts';
import { registerSimulate } from './simulate.ts';
import { registerWatch } from './watch.ts';

function program(): Command {
  const cmd = new Command('gaffer')
    .description('A coordinator for pools of heavy compute workers')
    .showHelpAfterError()
    .configureHelp({ showGlobalOptions: true });
  registerServe(cmd);
  registerWorker(cmd);
  registerClientCommands(cmd);
  registerQueueCommands(cmd);
  registerPipelineCommands(cmd);
  registerAdvise(cmd);
  registerDevstack(cmd);
  registerDevPostgres(cmd);
  registerSimulate(cmd);
  registerBridge(cmd);
  registerWatch(cmd);
  return cmd;
}

try {
  await program().parseAsync(process.argv);
} catch (err) {
  if (err instanceof GafferClientError || isGafferError(err)) {
    console.error(`gaffer: ${(err as { code: string }).code}: ${(err as Error).message}`);
    process.exitCode = 1;
  } else {
    throw err;
  }
}
