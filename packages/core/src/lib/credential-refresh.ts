// Keeps a short-lived credential (the service's ICT, the client's ICT) and renews it before it
// expires. Renewal is single-flight: however many requests find it stale at once, one renewal runs
// and all of them wait for it; a failed renewal keeps the old credential while it is still valid.

/** A held credential and its renewal schedule (unix seconds). */
export interface Renewable {
  expiresAt: number;
  /** When to start renewing; `Infinity` for a credential that is never renewed. */
  renewAt: number;
}

/** When to renew a token valid until `exp` and issued at `iat`: `margin` before expiry, or half-way for short-lived ones. */
export function renewalTime(exp: number, iat: number | undefined, now: number, margin: number): number {
  return exp - Math.min(margin, (exp - Math.min(iat ?? now, now)) / 2);
}

/** Single-flight renewal of one credential. */
export class CredentialRefresher<T extends Renewable> {
  #current: T | undefined;
  #pending: Promise<T> | undefined;

  /**
   * @param obtain loads a new credential.
   * @param now the clock in unix seconds.
   * @param failure turns a renewal error into the error callers see when no valid credential is held.
   */
  constructor(
    private readonly obtain: () => Promise<T>,
    private readonly now: () => number,
    private readonly failure: (error: unknown) => Error,
  ) {}

  /** The held credential, or a fresh one when it is due for renewal. */
  async get(): Promise<T> {
    const held = this.#current;
    if (held && held.renewAt > this.now()) return held;
    this.#pending ??= this.obtain().finally(() => {
      this.#pending = undefined;
    });
    try {
      this.#current = await this.#pending;
    } catch (error) {
      if (held && held.expiresAt > this.now()) return held;
      throw this.failure(error);
    }
    return this.#current;
  }

  /** Forgets the held credential, so the next call obtains a new one. */
  clear(): void {
    this.#current = undefined;
  }
}
