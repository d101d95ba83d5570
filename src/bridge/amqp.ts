// The AMQP RPC bridge: a RabbitMQ RPC server (requests on a queue, each with a
// replyTo and a correlationId) whose work is done by Gaffer jobs. How a request
// is neither lost nor answered twice (docs/tutorials/rabbitmq-rpc.md#guarantees):
//
// 1. A request is submitted as a job with an idempotency key from its message id
//    or correlation id, so a redelivered request finds the job it made before.
// 2. Only once the submit is durable, one AMQP transaction acks the request and
//    writes a "reply owed" record (job id, replyTo, correlationId) as a
//    persistent message to a durable pending queue of the bridge's own.
// 3. The bridge consumes that pending queue; when the record's job ends, one
//    AMQP transaction publishes the reply to replyTo and acks the record.
//
// A bridge killed anywhere leaves each request either unacked (redelivered,
// resubmitted under its key: same job) or owed in the pending queue (answered
// by the next bridge), and each record either unacked (answered later) or
// acked together with its reply. The AMQP client is @cloudamqp/amqp-client,
// which has the transactions (tx.select/tx.commit) this needs.
import { setMaxListeners } from 'node:events';
import { AMQPClient, type AMQPChannel, type AMQPMessage } from '@cloudamqp/amqp-client';
import type { GafferClient } from '../client/client.ts';
import { GafferClientError } from '../client/client.ts';
import type { GafferError } from '../types/errors.ts';
import { assert } from '../types/errors.ts';
import { BRIDGE_DEFAULTS } from '../types/limits.ts';
import type { Job } from '../types/model.ts';
import { decodePending, encodePending, errorReply, idempotencyKeyOf, payloadOf, replyOf, type PayloadFormat, type Reply } from './codec.ts';
import { TxBatcher } from './tx.ts';
import { JobTracker, type BridgeSettings } from './tracker.ts';
import { pause } from '../types/clock.ts';

export type { BridgeSettings };


/** One AMQP queue whose requests become jobs of one Gaffer queue. */
export interface BridgeMap {
  from: string;
  to: string;
}

export interface BridgeLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AmqpBridgeOptions {
  /** amqp://user:pass@host:port/vhost (amqps:// for TLS). */
  url: string;
  client: GafferClient;
  maps: BridgeMap[];
  payload: PayloadFormat;
  log: BridgeLog;
  settings?: Partial<BridgeSettings>;
}

/** The durable queue holding the replies owed for requests of `from`. */
export const pendingQueueOf = (from: string): string => `${from}.gaffer-pending`;

/** Status codes after which a submit is tried again; any other refusal is answered as an error. */
const retryable = (err: unknown): boolean =>
  !(err instanceof GafferClientError) || err.status === 0 || err.status === 408 || err.status === 429 || err.status >= 500;

/** Whether the queue exists: a passive declare, on a channel of its own (a missing queue closes the channel it is asked on). */
async function queueExists(conn: AMQPClient, name: string): Promise<boolean> {
  const probe = await conn.channel();
  probe.onerror = () => undefined;
  try {
    await probe.queueDeclare(name, { passive: true });
    await probe.close();
    return true;
  } catch {
    return false;
  }
}

interface Session {
  conn: AMQPClient;
  ch: AMQPChannel;
  tx: TxBatcher;
  /** Aborted when the connection or channel is lost: everything of this session stops. */
  ended: AbortSignal;
  /** Ends the session (closing its connection): the bridge opens a new one. */
  end(reason: string): void;
}

export class AmqpBridge {
  private readonly options: AmqpBridgeOptions;
  private readonly settings: BridgeSettings;
  private readonly tracker: JobTracker;
  private readonly stopped = new AbortController();
  private loop: Promise<void> | undefined;
  /** Replies sent since start, and requests taken (acked as jobs): for logs and tests. */
  readonly counts = { submitted: 0, replied: 0, refused: 0 };

  constructor(options: AmqpBridgeOptions) {
    assert(options.maps.length > 0, 'a bridge maps at least one queue');
    this.options = options;
    this.settings = { ...BRIDGE_DEFAULTS, ...options.settings };
    this.tracker = new JobTracker(options.client, options.log, this.settings);
  }

  /** Connects and starts consuming; rejects when the first connection or queue declaration fails. */
  async start(): Promise<void> {
    const first = await this.open();
    this.tracker.start();
    this.loop = this.run(first);
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    await this.loop;
    await this.tracker.stop();
  }

  /** Keeps a session open: on loss, reconnects with backoff until stopped. */
  private async run(first: { conn: AMQPClient; done: Promise<string> }): Promise<void> {
    let session: { conn: AMQPClient; done: Promise<string> } | null = first;
    let delay = this.settings.reconnectBaseDelayMs;
    while (!this.stopped.signal.aborted) {
      if (session) {
        const reason = await session.done;
        if (this.stopped.signal.aborted) return;
        this.options.log.warn({ reason }, 'broker connection lost; reconnecting');
        delay = this.settings.reconnectBaseDelayMs;
      }
      await pause(delay, this.stopped.signal);
      if (this.stopped.signal.aborted) return;
      try {
        session = await this.open();
        this.options.log.info({}, 'broker connection restored');
      } catch (err) {
        session = null;
        this.options.log.warn({ err: (err as Error).message, retryInMs: delay }, 'cannot reach the broker');
        delay = Math.min(delay * 2, this.settings.reconnectMaxDelayMs);
      }
    }
  }

  /** One connection and channel: declares the queues, consumes requests and owed replies. `done` resolves when it is lost. */
  private async open(): Promise<{ conn: AMQPClient; done: Promise<string> }> {
    const conn = new AMQPClient(this.options.url);
    await conn.connect();
    const ended = new AbortController();
    // Every awaited job and every submit being retried listens on it: up to awaitMaxJobs + prefetchMaxMessages per queue.
    setMaxListeners(0, ended.signal);
    let end: (reason: string) => void = () => undefined;
    const done = new Promise<string>((resolve) => {
      const onStop = (): void => end('stopped');
      end = (reason) => {
        if (ended.signal.aborted) return;
        this.stopped.signal.removeEventListener('abort', onStop);
        ended.abort(new Error(reason));
        resolve(reason);
        // A close the client asks for calls neither onerror nor ondisconnect: `end` is the one way a session ends.
        if (!conn.closed) void conn.close().catch(() => undefined);
      };
      conn.onerror = (err) => end(err.message);
      conn.ondisconnect = (err) => end(err?.message ?? 'disconnected');
      this.stopped.signal.addEventListener('abort', onStop, { once: true });
    });
    try {
      const ch = await conn.channel();
      ch.onerror = (reason) => end(`channel closed: ${reason}`);
      await ch.txSelect();
      const session: Session = { conn, ch, tx: new TxBatcher(ch, this.settings.commitBatchMaxOps), ended: ended.signal, end };
      for (const map of this.options.maps) await this.consume(session, map);
      session.tx.open();
    } catch (err) {
      end(`set-up failed: ${(err as Error).message}`);
      throw err;
    }
    this.options.log.info({ maps: this.options.maps }, 'bridge consuming');
    return { conn, done };
  }

  private async consume(s: Session, map: BridgeMap): Promise<void> {
    const pending = pendingQueueOf(map.from);
    // A request queue that exists is used as it is (a RabbitMQ RPC server may have declared it); else it is made durable.
    if (!(await queueExists(s.conn, map.from))) await s.ch.queueDeclare(map.from, { durable: true });
    await s.ch.queueDeclare(pending, { durable: true });
    // basic.qos (not global) bounds each consumer made after it on this channel.
    await s.ch.basicQos(this.settings.prefetchMaxMessages);
    await s.ch.basicConsume(map.from, { noAck: false }, (msg) => void this.onRequest(s, map, msg).catch((err) => this.lost(s, err)));
    await s.ch.basicQos(this.settings.awaitMaxJobs);
    await s.ch.basicConsume(pending, { noAck: false }, (msg) => void this.onOwed(s, map, msg).catch((err) => this.lost(s, err)));
  }

  private lost(s: Session, err: unknown): void {
    if (s.ended.aborted) return;
    this.options.log.error({ err: (err as Error).message }, 'bridge step failed; reconnecting');
    s.end(`a step failed: ${(err as Error).message}`);
  }

  /** A request: submit it (durably), then ack it and record the reply owed in one transaction. */
  private async onRequest(s: Session, map: BridgeMap, msg: AMQPMessage): Promise<void> {
    const props = msg.properties;
    const key = idempotencyKeyOf(map.from, props);
    if (key === null) {
      this.options.log.warn({ queue: map.from }, 'request without messageId or correlationId: rejected (a redelivery could not be told from a new request)');
      this.counts.refused++;
      return s.tx.run(() => s.ch.basicReject(msg.deliveryTag, false));
    }
    let job: Job;
    try {
      const payload = payloadOf(msg.body, this.options.payload);
      const submitted = await this.submit(s, { queue: map.to, payload, idempotencyKey: key, labels: { 'amqp-queue': map.from } });
      if (submitted === null) return; // the session ended: the broker redelivers the request
      job = submitted;
    } catch (err) {
      const e = err as GafferError | GafferClientError;
      this.counts.refused++;
      return this.refuse(s, msg, e.code ?? 'INVALID_INPUT', e.message);
    }
    this.counts.submitted++;
    const replyTo = props.replyTo;
    await s.tx.run(async () => {
      if (replyTo) {
        const owed = encodePending({ jobId: job.id, replyTo, correlationId: props.correlationId ?? null });
        await s.ch.basicPublish('', pendingQueueOf(map.from), owed, { deliveryMode: 2, contentType: 'application/json' });
      }
      await s.ch.basicAck(msg.deliveryTag);
    });
  }

  /** Submits until the coordinator takes or refuses the job; null when the session ends first. */
  private async submit(s: Session, spec: Parameters<GafferClient['submit']>[0]): Promise<Job | null> {
    let delay = this.settings.submitRetryBaseDelayMs;
    for (;;) {
      if (s.ended.aborted) return null;
      try {
        return (await this.options.client.submit(spec)).job;
      } catch (err) {
        if (!retryable(err)) throw err;
        this.options.log.warn({ err: (err as Error).message, retryInMs: delay }, 'submit failed; retrying');
      }
      await pause(delay, s.ended);
      delay = Math.min(delay * 2, this.settings.submitRetryMaxDelayMs);
    }
  }

  /** A request that never became a job: an error reply (when it asked for one) and an ack, together. */
  private refuse(s: Session, msg: AMQPMessage, code: string, message: string): Promise<void> {
    const { replyTo, correlationId } = msg.properties;
    return s.tx.run(async () => {
      if (replyTo) await this.publishReply(s, replyTo, correlationId, errorReply(code, message, null));
      await s.ch.basicAck(msg.deliveryTag);
    });
  }

  /** A reply owed: once its job ends, publish the reply and ack the record, together. */
  private async onOwed(s: Session, map: BridgeMap, msg: AMQPMessage): Promise<void> {
    const owed = decodePending(msg.body);
    if (owed === null) {
      this.options.log.warn({ queue: pendingQueueOf(map.from) }, 'not a pending-reply record: dropped');
      return s.tx.run(() => s.ch.basicAck(msg.deliveryTag));
    }
    let job: Job;
    try {
      job = await this.tracker.wait(owed.jobId, s.ended);
    } catch {
      return; // the session ended: the record is redelivered to the next one
    }
    await s.tx.run(async () => {
      await this.publishReply(s, owed.replyTo, owed.correlationId ?? undefined, replyOf(job, this.options.payload));
      await s.ch.basicAck(msg.deliveryTag);
    });
    this.counts.replied++;
  }

  private async publishReply(s: Session, replyTo: string, correlationId: string | undefined, reply: Reply): Promise<void> {
    // Persistent, for a durable reply queue; RabbitMQ drops it if replyTo no longer exists (the client went away).
    await s.ch.basicPublish('', replyTo, reply.body, {
      deliveryMode: 2,
      contentType: reply.contentType,
      headers: reply.headers,
      ...(correlationId !== undefined ? { correlationId } : {}),
    });
  }
}
