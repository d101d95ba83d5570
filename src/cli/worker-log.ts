// What `gaffer serve` logs about workers beyond their connections (the worker
// socket logs attached and disconnected): quarantines, whoever made them,
// releases and drains. An operator's quarantine arrives as a coordinator
// event; the store quarantines a worker on its own (its reputation, a failed
// reliability check) inside a settle and says nothing of it, so the workers
// are also read every intervalMs and a quarantine not seen before is logged.
import type { Logger } from 'pino';
import type { Coordinator } from '../coordinator/coordinator.ts';
import type { Worker } from '../types/model.ts';

export const QUARANTINE_WATCH_INTERVAL_MS = 10_000;

export interface WorkerLog {
  /** Reads the workers once now (tests; the watch reads them on its beat). */
  poll(): Promise<void>;
  stop(): void;
}

export function logWorkers(coordinator: Coordinator, logger: Logger, intervalMs = QUARANTINE_WATCH_INTERVAL_MS): WorkerLog {
  const quarantined = new Set<string>();
  let first = true;
  let stopped = false;
  coordinator.events.on('worker', (e) => {
    if (e.event === 'quarantined' && !quarantined.has(e.workerId)) {
      quarantined.add(e.workerId);
      logger.warn({ workerId: e.workerId, by: 'operator' }, 'worker quarantined');
    } else if (e.event === 'released') {
      quarantined.delete(e.workerId);
      logger.info({ workerId: e.workerId }, 'worker released from quarantine');
    } else if (e.event === 'draining') {
      logger.info({ workerId: e.workerId }, 'worker draining');
    }
  });
  const seen = (workers: readonly Worker[]): void => {
    const now = workers.filter((w) => w.quarantined);
    for (const w of now) {
      if (quarantined.has(w.id)) continue;
      quarantined.add(w.id);
      if (!first) logger.warn({ workerId: w.id, name: w.name, reason: w.quarantineReason, by: 'store' }, 'worker quarantined');
    }
    if (first && now.length > 0) logger.info({ workerIds: now.slice(0, 20).map((w) => w.id), count: now.length }, 'workers in quarantine at start');
    first = false;
    const ids = new Set(now.map((w) => w.id));
    for (const id of quarantined) if (!ids.has(id)) quarantined.delete(id);
  };
  // A failed read is the store's trouble, which the coordinator logs; the next beat reads again.
  const poll = (): Promise<void> => coordinator.listWorkers().then(seen, () => undefined);
  const beat = (): void => {
    if (stopped) return;
    void poll().finally(() => {
      if (!stopped) timer = coordinator.clock.setTimeout(beat, intervalMs);
    });
  };
  let timer = coordinator.clock.setTimeout(beat, 0);
  return {
    poll,
    stop() {
      stopped = true;
      coordinator.clock.clearTimeout(timer);
    },
  };
}
