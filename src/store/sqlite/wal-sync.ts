// The fsync of a durable commit, off the event loop.
//
// With `synchronous = FULL` in WAL mode, SQLite's only extra step at COMMIT
// is an fdatasync of the WAL file, and node:sqlite runs it on the calling
// thread: every durable group commit stopped the coordinator for as long as
// the disk took (about a sixth of its time in the bench). The connection
// commits with `synchronous = NORMAL` instead (the commit is in the WAL, in
// the page cache: it survives a crash of the process, not yet a power cut)
// and this does the same fdatasync of the WAL on libuv's thread pool; a
// durable write is acknowledged only once it resolves, so what a client or a
// worker is told is stored survives a power cut as before. The event loop
// meanwhile reads frames and queues the next writes, which commit together
// after it.
//
// SQLite keeps the WAL file while a connection has the database open (it
// truncates or rewinds it, never replaces it while open), so one descriptor
// serves; it is reopened if the file's inode ever changes all the same. The
// WAL sits beside the database file itself, a symbolic link followed.
import { fdatasync, fstatSync, openSync, closeSync, realpathSync, statSync } from 'node:fs';

export interface WalSyncer {
  /** Resolves once everything committed to the WAL so far is on disk. */
  sync(): Promise<void>;
  close(): void;
}

export class WalSync implements WalSyncer {
  private readonly walPath: string;
  private fd: number | null = null;
  private ino = 0;

  /** `dbPath`: the database file, which must exist (SqliteDb has opened it). */
  constructor(dbPath: string) {
    this.walPath = `${realpathSync(dbPath)}-wal`;
  }

  sync(): Promise<void> {
    let fd: number;
    try {
      fd = this.descriptor();
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  }

  /** The open descriptor of the WAL file as it is now. */
  private descriptor(): number {
    const ino = statSync(this.walPath).ino;
    if (this.fd !== null && ino === this.ino) return this.fd;
    this.close();
    const fd = openSync(this.walPath, 'r');
    this.fd = fd;
    this.ino = fstatSync(fd).ino;
    return fd;
  }

  close(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch {
      // Already closed: nothing to release.
    }
    this.fd = null;
  }
}
