// The part of google/protobuf/descriptor.proto that the classic-script build needs.
//
// Generated code embeds each .proto file as a serialized `FileDescriptorProto`, which the
// protobuf runtime decodes at load time with the schema of descriptor.proto itself. That schema
// ships whole (all of descriptor.proto: options, features, source info — about 20 KB minified)
// although our embedded descriptors set only a few dozen of its fields. This module computes
// the subset those descriptors use (every message they reach and every field they set, with the
// enums those fields name) and returns it as a replacement for the runtime's
// `wkt/google/protobuf/descriptor_pb.js`, exporting `FileDescriptorProtoSchema` as before.
//
// It is checked here, at every build: each embedded descriptor decodes with the subset to the
// same message as with the full schema (no unknown field, identical re-encoding). A change to
// beckon.proto that needs more of descriptor.proto gets it automatically.
import { fromBinary, isFieldSet } from "@bufbuild/protobuf";
import { boot, createFileDescriptorProtoBoot, messageDesc } from "@bufbuild/protobuf/codegenv2";
import { FileDescriptorProtoSchema, file_google_protobuf_descriptor } from "@bufbuild/protobuf/wkt";
import { base64Decode } from "@bufbuild/protobuf/wire";

/** The descriptors embedded in a generated `_pb.ts` file (the `fileDesc("…")` arguments). */
export function embeddedDescriptors(generatedSource) {
  const found = [...generatedSource.matchAll(/\bfileDesc\(\s*"([A-Za-z0-9+/=]+)"/g)].map((m) =>
    base64Decode(m[1]),
  );
  if (found.length === 0) throw new Error("no embedded file descriptor found in the generated code");
  return found;
}

/**
 * The source of a module standing in for descriptor_pb.js, with only what `descriptors`
 * (serialized `FileDescriptorProto`s) need to decode.
 *
 * The runtime reads every field of a decoded descriptor, set or not (an empty list, a default
 * label, `undefined` options), so the subset keeps every field except singular message fields
 * that no descriptor sets (options, source info: `undefined` either way). A message type only
 * named by a kept list that stays empty (services, reserved ranges) is kept without fields.
 */
export function descriptorSubsetModule(descriptors) {
  const decoded = descriptors.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
  // Message types that occur, and for each the numbers of its singular message fields set.
  const occurs = new Map();
  const visit = (schema, msg) => {
    if (!occurs.has(schema.typeName)) occurs.set(schema.typeName, new Set());
    for (const f of schema.fields) {
      if (!isFieldSet(msg, f)) continue;
      if (f.fieldKind === "message") {
        occurs.get(schema.typeName).add(f.number);
        visit(f.message, msg[f.localName]);
      } else if (f.fieldKind === "list" && f.listKind === "message") {
        for (const m of msg[f.localName]) visit(f.message, m);
      } else if (f.fieldKind === "map") {
        throw new Error(`descriptor subset: map field ${f} is not handled`);
      }
    }
  };
  for (const msg of decoded) visit(FileDescriptorProtoSchema, msg);

  // typeName → the field numbers kept (none for a type only named by an empty list); the enums.
  const kept = new Map();
  const enums = new Set();
  const keep = (schema) => {
    if (kept.has(schema.typeName)) return;
    const set = occurs.get(schema.typeName);
    const numbers = new Set();
    kept.set(schema.typeName, numbers);
    if (!set) return;
    for (const f of schema.fields) {
      if (f.fieldKind === "message" && !set.has(f.number)) continue;
      numbers.add(f.number);
      if (f.enum) enums.add(f.enum.typeName);
      if (f.message) keep(f.message);
    }
  };
  keep(FileDescriptorProtoSchema);

  // Prune a copy of descriptor.proto's own FileDescriptorProto.
  const full = file_google_protobuf_descriptor.proto;
  const prefix = `${full.package}.`;
  const pruneMessage = (d, typeName) => {
    const nestedType = d.nestedType
      .map((n) => pruneMessage(n, `${typeName}.${n.name}`))
      .filter((n) => n !== undefined);
    const enumType = d.enumType.filter((e) => enums.has(`${typeName}.${e.name}`));
    const numbers = kept.get(typeName);
    if (!numbers && nestedType.length === 0 && enumType.length === 0) return undefined;
    return copy(d, {
      field: d.field.filter((f) => numbers?.has(f.number)),
      nestedType,
      enumType,
      // Extension ranges only matter to extensions, which the embedded descriptors never use.
      extensionRange: [],
    });
  };
  const messageType = full.messageType
    .map((d) => pruneMessage(d, prefix + d.name))
    .filter((d) => d !== undefined);
  const enumType = full.enumType.filter((e) => enums.has(prefix + e.name));
  const subset = copy(full, { messageType, enumType });
  const index = messageType.findIndex((d) => prefix + d.name === FileDescriptorProtoSchema.typeName);
  const json = JSON.stringify(createFileDescriptorProtoBoot(subset));

  // The subset must decode every descriptor to what the full schema gives, field by field.
  const schema = messageDesc(boot(JSON.parse(json)), index);
  descriptors.forEach((bytes, i) => same(FileDescriptorProtoSchema, decoded[i], fromBinary(schema, bytes), "file"));

  return [
    "// Generated by scripts/descriptor-subset.mjs: the part of descriptor.proto the bundle uses.",
    'import { boot, messageDesc } from "@bufbuild/protobuf/codegenv2";',
    `export const FileDescriptorProtoSchema = /*@__PURE__*/ messageDesc(/*@__PURE__*/ boot(${json}), ${index});`,
    "",
  ].join("\n");
}

/** Fails unless `got` reads as `want` (of the full `schema`) everywhere the runtime looks. */
function same(schema, want, got, path) {
  const fail = (what) => {
    throw new Error(`descriptor subset: ${path} ${what} differs from the full descriptor schema`);
  };
  if (got.$typeName !== want.$typeName) fail("$typeName");
  if (got.$unknown?.length) fail("(unknown fields)");
  for (const f of schema.fields) {
    const name = f.localName;
    const a = want[name];
    const b = got[name];
    if (Object.hasOwn(want, name) !== Object.hasOwn(got, name)) fail(`${name} (presence)`);
    if (f.fieldKind === "message") {
      if ((a === undefined) !== (b === undefined)) fail(name);
      if (a !== undefined) same(f.message, a, b, `${path}.${name}`);
    } else if (f.fieldKind === "list") {
      if (!Array.isArray(b) || a.length !== b.length) fail(name);
      a.forEach((x, i) => {
        if (f.listKind === "message") same(f.message, x, b[i], `${path}.${name}[${i}]`);
        else if (x !== b[i]) fail(`${name}[${i}]`);
      });
    } else if (f.fieldKind === "scalar" && a instanceof Uint8Array) {
      if (!(b instanceof Uint8Array) || a.length !== b.length || a.some((x, i) => x !== b[i])) fail(name);
    } else if (a !== b) {
      fail(name);
    }
  }
}

/** A copy of a descriptor message (its defaults stay on the prototype) with `changes`. */
function copy(msg, changes) {
  return Object.assign(Object.create(Object.getPrototypeOf(msg)), msg, changes);
}
