// A module beside the calling one, for code that starts it in another thread
// or process. The source runs as .ts (Node strips the types); the installed
// package runs the compiled .js (Node does not strip types under
// node_modules), so the sibling takes the caller's own extension.

/** The URL of `./<stem>.ts` or `./<stem>.js` beside `base` (the caller's import.meta.url), whichever the caller is. */
export function siblingModule(base: string, stem: string): URL {
  const ext = new URL(base).pathname.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${stem}${ext}`, base);
}
