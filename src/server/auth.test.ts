// Which tokens a server starts with: none beyond loopback, none holding
// whitespace anywhere, none shorter than tokenMinChars beyond loopback.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LIMITS } from '../types/limits.ts';
import { Auth } from './auth.ts';
import { assertSafeListen } from './index.ts';

const LONG = 'k'.repeat(LIMITS.tokenMinChars);

describe('tokens at start', () => {
  it('refuses a token that is empty or holds whitespace, wherever the server listens', () => {
    for (const token of ['', ' ', 'a b', `${LONG} `, `${LONG}\t`, `\u00a0${LONG}`]) {
      assert.throws(() => new Auth([{ token, scopes: ['client'], name: 'api' }]), (e: any) => e.code === 'INVALID_INPUT' && /"api".*whitespace/.test(e.message), JSON.stringify(token));
    }
  });

  it('refuses a token shorter than tokenMinChars beyond loopback, naming it but not showing it', () => {
    const auth = new Auth([
      { token: LONG, scopes: ['client'], name: 'long' },
      { token: 'zq7', scopes: ['worker'], name: 'short' },
    ]);
    for (const host of ['0.0.0.0', '10.0.0.5', '::']) {
      assert.throws(
        () => assertSafeListen(auth, host),
        (e: any) => e.code === 'INVALID_INPUT' && e.message.includes(`shorter than ${LIMITS.tokenMinChars}`) && e.message.includes('(short)') && !e.message.includes('zq7'),
      );
    }
    assert.throws(() => assertSafeListen(Auth.single('k'.repeat(LIMITS.tokenMinChars - 1)), '0.0.0.0'), { code: 'INVALID_INPUT' });
  });

  it('takes short tokens on loopback, and long ones anywhere', () => {
    for (const host of ['127.0.0.1', 'localhost', '::1']) assertSafeListen(Auth.single('a'), host);
    assertSafeListen(Auth.single(LONG), '0.0.0.0');
    assert.throws(() => assertSafeListen(new Auth([]), '0.0.0.0'), /without a token/);
  });
});
