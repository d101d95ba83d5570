// One catalogue of typed errors with stable codes. Every error Gaffer answers
// with is one of these; the HTTP layer maps `status`, clients match on `code`.
// docs/errors.md lists the same codes; a test keeps the two in step.

export const ERRORS = {
  INVALID_INPUT: { status: 400, message: 'The request is not valid' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The payload is larger than its limit' },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are larger than their limit' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request did not arrive within its time limit' },
  UNKNOWN_FIELD: { status: 400, message: 'The request has a field that is not part of the API' },
  UNAUTHORIZED: { status: 401, message: 'A valid bearer token is required' },
  FORBIDDEN: { status: 403, message: 'The token does not carry the scope this needs' },
  JOB_NOT_FOUND: { status: 404, message: 'No job has this id' },
  WORKER_NOT_FOUND: { status: 404, message: 'No worker has this id' },
  ATTEMPT_NOT_FOUND: { status: 404, message: 'No attempt has this id' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No route has this method and path' },
  PIPELINE_NOT_FOUND: { status: 404, message: 'No pipeline instance has this id' },
  UNKNOWN_TEMPLATE: { status: 400, message: 'No pipeline template has this name' },
  UNKNOWN_DEPENDENCY: { status: 400, message: 'A job named in dependsOn does not exist' },
  STALE_LEASE: { status: 409, message: 'The lease is no longer current: another attempt owns the job now' },
  INVALID_STATE: { status: 409, message: 'The job is not in a state that allows this' },
  WORKER_ID_TAKEN: { status: 403, message: 'The worker id belongs to another operator' },
  NOT_ATTEMPT_HOLDER: { status: 403, message: 'The attempt is held by another worker' },
  WORKER_DRAINING: { status: 409, message: 'The worker is draining and takes no new work' },
  PROTOCOL_ERROR: { status: 400, message: 'The frame breaks the worker protocol' },
  NOT_READY: { status: 503, message: 'The coordinator is not ready: its store is unavailable' },
  STORE_BUSY: { status: 503, message: 'The store is busy; try again' },
  INTERNAL: { status: 500, message: 'An internal error; the request may not have been applied' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class GafferError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;

  constructor(code: ErrorCode, message?: string, details?: unknown) {
    super(message ?? ERRORS[code].message);
    this.name = 'GafferError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function isGafferError(err: unknown, code?: ErrorCode): err is GafferError {
  return err instanceof GafferError && (code === undefined || err.code === code);
}

/**
 * An invariant that must hold in production too. A failed assertion is a bug,
 * never an operating error: it throws and names what broke.
 */
export function assert(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`invariant violated: ${what}`);
}
