// Turns the dashboard's browser modules into JavaScript, once, at install
// (`npm install` and `npm ci` run the `prepare` script): every .ts file here
// except this script and the tests becomes a .js file under build/dashboard/,
// and the static files (index.html, style.css) and uPlot are copied beside
// them. The coordinator serves that folder; nothing is compiled at run time.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripTypeScriptTypes } from 'node:module';

const HERE = dirname(fileURLToPath(import.meta.url));
export const DASHBOARD_BUILD_DIR = join(HERE, '..', '..', 'build', 'dashboard');
const UPLOT_DIR = join(HERE, '..', '..', 'node_modules', 'uplot', 'dist');
const STATIC_FILES = ['index.html', 'style.css'];
const VENDOR_FILES = ['uPlot.iife.min.js', 'uPlot.min.css'];

const isBrowserModule = (name: string): boolean => name.endsWith('.ts') && !name.endsWith('.test.ts') && name !== 'build.ts';

type Transpile = (source: string) => string;

/** TypeScript's own transpiler when it is installed (a dev dependency); else Node's type stripping. */
async function transpiler(): Promise<Transpile> {
  try {
    const ts = (await import('typescript')).default;
    const compilerOptions = { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true, rewriteRelativeImportExtensions: true };
    return (source) => ts.transpileModule(source, { compilerOptions }).outputText;
  } catch {
    // The modules import each other as './x.ts' and nothing else: those become './x.js'.
    return (source) => stripTypeScriptTypes(source, { mode: 'strip' }).replace(/(from\s*'\.\/[\w-]+)\.ts'/g, "$1.js'");
  }
}

/** Writes the whole dashboard to `outDir` (build/dashboard by default) and returns the files written. */
export async function buildDashboard(outDir: string = DASHBOARD_BUILD_DIR): Promise<string[]> {
  const transpile = await transpiler();
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, 'vendor'), { recursive: true });
  const written: string[] = [];
  for (const name of readdirSync(HERE).filter(isBrowserModule)) {
    const js = name.replace(/\.ts$/, '.js');
    writeFileSync(join(outDir, js), transpile(readFileSync(join(HERE, name), 'utf8')));
    written.push(js);
  }
  for (const name of STATIC_FILES) {
    copyFileSync(join(HERE, name), join(outDir, name));
    written.push(name);
  }
  for (const name of VENDOR_FILES) {
    copyFileSync(join(UPLOT_DIR, name), join(outDir, 'vendor', name));
    written.push(`vendor/${name}`);
  }
  return written;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = await buildDashboard();
  console.log(`dashboard: ${files.length} files in ${DASHBOARD_BUILD_DIR}`);
}
