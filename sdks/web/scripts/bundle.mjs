// Bundles the classic-script build: dist/beckon-sig.js defines the global `Signal` for a
// <script src=…> tag (minified, the protobuf runtime included). Prints its size and gzipped size.
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const out = new URL("../dist/beckon-sig.js", import.meta.url).pathname;

await build({
  entryPoints: [new URL("../src/global.ts", import.meta.url).pathname],
  outfile: out,
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2022",
  legalComments: "none",
  // Private and internal members are named with a leading underscore (as centrifuge-js does);
  // the minifier shortens them. Nothing public starts with one.
  mangleProps: /^_/,
  // The protobuf runtime has a few such names of its own; they keep theirs.
  reserveProps: /^_(arr|field|fieldsByNumber)$/,
  banner: { js: `/* beckon-sig.js ${pkg.version} — the Beckon Web SDK. Apache-2.0. */` },
  logLevel: "warning",
});

const bytes = readFileSync(out);
console.log(`dist/beckon-sig.js: ${bytes.length} bytes, ${gzipSync(bytes, { level: 9 }).length} gzipped`);
