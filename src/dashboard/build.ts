// Turns the dashboard's browser modules into JavaScript, once, at install
// (`npm install` and `npm ci` run the `prepare` script): every .ts file here
// except this script and the tests becomes a .js file under build/dashboard/,
// and the static files (index.html, style.css) and uPlot are copied beside
// them. The coordinator serves that folder; nothing is compiled at run time.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const HERE = dirname(fileURLToPath(import.meta.url));
export const DASHBOARD_BUILD_DIR = join(HERE, '..', '..', 'build', 'dashboard');
const UPLOT_DIR = join(HERE, '..', '..', 'node_modules', 'uplot', 'dist');
const STATIC_FILES = ['index.html', 'style.css'];
const VENDOR_FILES = ['uPlot.iife.min.js', 'uPlot.min.css'];

const isBrowserModule = (name: string): boolean => name.endsWith('.ts') && !name.endsWith('.test.ts') && name !== 'build.ts';

function transpile(source: string): string {
  return ts.transpileModule(source, {
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
      rewriteRelativeImportExtensions: true,
    },
  }).outputText;
}

/** Writes the whole dashboard to `outDir` (build/dashboard by default) and returns the files written. */
export function buildDashboard(outDir: string = DASHBOARD_BUILD_DIR): string[] {
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
  const files = buildDashboard();
  console.log(`dashboard: ${files.length} files in ${DASHBOARD_BUILD_DIR}`);
}
