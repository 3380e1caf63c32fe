/**
 * Builds the shipped form of the CLI and agent: one bundled ES module, dist/ipvs-operator.mjs, that
 * `bin/ipvs-operator` runs whenever it is newer than the sources (decision 0008). Bundling keeps only
 * the code the agent calls (client-node's generated API files alone are 25 MB of JavaScript, which
 * Node would otherwise read, keep and parse on every start) and needs no TypeScript stripping at run
 * time. The `netlink` package stays external: it loads a native addon from node_modules, so a bundle
 * must be written inside the project to find it.
 * Usage: node scripts/build.ts   (npm run build)
 */
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;

/** Bundles `entry` (relative to the project) into `outfile`; returns its size in bytes. */
export async function bundle(entry: string, outfile: string): Promise<number> {
  const result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node24",
    external: ["netlink"],
    // Whitespace and syntax only: function and class names stay as written, so stack traces and
    // logged errors read the same as from the sources.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: "none",
    // CommonJS dependencies call require() for Node's own modules; an ES module has none of its own.
    banner: {
      js: "import { createRequire as __ipvsCreateRequire } from 'node:module'; const require = __ipvsCreateRequire(import.meta.url);",
    },
    metafile: true,
    logLevel: "warning",
  });
  return Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
}

if (import.meta.main) {
  const bytes = await bundle("src/cli/main.ts", `${root}dist/ipvs-operator.mjs`);
  process.stdout.write(`wrote dist/ipvs-operator.mjs (${(bytes / 2 ** 20).toFixed(1)} MiB)\n`);
}
