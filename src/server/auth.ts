// Bearer tokens with scopes. A request names a token in `Authorization:
// Bearer <token>`; each route and the worker socket need one scope.
import { createHash, timingSafeEqual } from 'node:crypto';
import { GafferError } from '../types/errors.ts';
import { LIMITS } from '../types/limits.ts';

export const SCOPES = ['client', 'worker', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface TokenConfig {
  token: string;
  scopes: readonly Scope[];
  /** Shown in logs instead of the token. */
  name?: string;
  /**
   * Who runs the workers that say hello with this token; defaults to `name`.
   * A worker record belongs to the operator whose token created it.
   */
  operator?: string;
}

/** Who made a request: the token's name, and the operator it names (null when no token is configured). */
export interface Caller {
  name: string;
  operator: string | null;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export class Auth {
  private readonly tokens: { digest: Buffer; scopes: ReadonlySet<Scope>; name: string; operator: string }[];
  /** Names of the tokens shorter than LIMITS.tokenMinChars: refused beyond loopback (assertSafeListen). */
  readonly shortTokens: readonly string[];

  /** Throws INVALID_INPUT for an empty token or one holding whitespace (it could never be sent as a bearer token). */
  constructor(tokens: readonly TokenConfig[]) {
    const short: string[] = [];
    this.tokens = tokens.map((t, i) => {
      const name = t.name ?? `token-${i + 1}`;
      if (t.token === '' || /\s/u.test(t.token)) {
        throw new GafferError('INVALID_INPUT', `token "${name}" is empty or holds whitespace; a bearer token is one word of at least ${LIMITS.tokenMinChars} characters`);
      }
      if (t.token.length < LIMITS.tokenMinChars) short.push(name);
      return { digest: digest(t.token), scopes: new Set(t.scopes), name, operator: t.operator ?? name };
    });
    this.shortTokens = short;
  }

  /** One token with every scope, as `--token` and GAFFER_TOKEN give. */
  static single(token: string): Auth {
    return new Auth([{ token, scopes: SCOPES, name: 'default' }]);
  }

  /** False when no token is configured: every request is allowed (loopback only). */
  get enabled(): boolean {
    return this.tokens.length > 0;
  }

  /** Throws UNAUTHORIZED for a missing or unknown token, FORBIDDEN for a token without the scope. */
  check(authorization: string | undefined, scope: Scope): Caller {
    if (!this.enabled) return { name: 'anonymous', operator: null };
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) throw new GafferError('UNAUTHORIZED', 'send Authorization: Bearer <token>');
    const d = digest(m[1]!);
    const found = this.tokens.find((t) => timingSafeEqual(t.digest, d));
    if (!found) throw new GafferError('UNAUTHORIZED', 'the bearer token is not valid');
    if (!found.scopes.has(scope) && !found.scopes.has('admin')) {
      throw new GafferError('FORBIDDEN', `this token lacks the ${scope} scope`, { scope });
    }
    return { name: found.name, operator: found.operator };
  }
}

/** Loopback addresses a server may listen on without a token. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
