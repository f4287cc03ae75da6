// Bundles the classic-script build: dist/beckon-sig.js defines the global `Signal` for a
// <script src=…> tag (minified, the protobuf runtime included). Prints its size and gzipped size.
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

import { descriptorSubsetModule, embeddedDescriptors } from "./descriptor-subset.mjs";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const out = new URL("../dist/beckon-sig.js", import.meta.url).pathname;
const sdk = new URL("..", import.meta.url).pathname;

// The protobuf runtime decodes our embedded schema with the schema of descriptor.proto, which
// it ships whole; the bundle gets only the part our schema uses (see descriptor-subset.mjs).
const subset = descriptorSubsetModule(
  embeddedDescriptors(readFileSync(new URL("../src/gen/beckon_pb.ts", import.meta.url), "utf8")),
);
const descriptorSubset = {
  name: "descriptor-subset",
  setup(b) {
    b.onResolve({ filter: /\/wkt\/google\/protobuf\/descriptor_pb\.js$/ }, (args) => {
      // Only the decoder of embedded descriptors (codegenv2/file.js); the rest of the runtime
      // that imports descriptor_pb.js must stay out of the bundle (checked below).
      if (!args.importer.endsWith("/@bufbuild/protobuf/dist/esm/codegenv2/file.js")) return undefined;
      return { path: "descriptor_pb.js", namespace: "descriptor-subset" };
    });
    b.onLoad({ filter: /.*/, namespace: "descriptor-subset" }, () => ({
      contents: subset,
      loader: "js",
      resolveDir: sdk,
    }));
  },
};

const { metafile } = await build({
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
  plugins: [descriptorSubset],
  metafile: true,
  logLevel: "warning",
});
// The modules with code in the bundle.
const inputs = Object.entries(Object.values(metafile.outputs)[0].inputs)
  .filter(([, i]) => i.bytesInOutput > 0)
  .map(([path]) => path);
if (!inputs.includes("descriptor-subset:descriptor_pb.js") || inputs.some((p) => p.endsWith("/descriptor_pb.js"))) {
  throw new Error("the bundle no longer takes descriptor.proto's schema from descriptor-subset.mjs: revisit it");
}

const bytes = readFileSync(out);
console.log(`dist/beckon-sig.js: ${bytes.length} bytes, ${gzipSync(bytes, { level: 9 }).length} gzipped`);
