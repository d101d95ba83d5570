// The simulator's event queue: a binary heap ordered by time, then by the
// order events were pushed, so that a run replays exactly.

interface Entry<T> {
  atMs: number;
  seq: number;
  event: T;
}

export class EventQueue<T> {
  private readonly items: Entry<T>[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.items.length;
  }

  push(atMs: number, event: T): void {
    this.items.push({ atMs, seq: this.nextSeq++, event });
    this.up(this.items.length - 1);
  }

  /** Time of the next event, or Infinity when there is none. */
  peekMs(): number {
    return this.items[0]?.atMs ?? Infinity;
  }

  pop(): { atMs: number; event: T } | undefined {
    const top = this.items[0];
    if (top === undefined) return undefined;
    const last = this.items.pop()!;
    if (this.items.length > 0) {
      this.items[0] = last;
      this.down(0);
    }
    return { atMs: top.atMs, event: top.event };
  }

  private before(i: number, j: number): boolean {
    const a = this.items[i]!;
    const b = this.items[j]!;
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
  }

  private swap(i: number, j: number): void {
    const t = this.items[i]!;
    this.items[i] = this.items[j]!;
    this.items[j] = t;
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < this.items.length && this.before(l, best)) best = l;
      if (r < this.items.length && this.before(r, best)) best = r;
      if (best === i) return;
      this.swap(i, best);
      i = best;
    }
  }
}
