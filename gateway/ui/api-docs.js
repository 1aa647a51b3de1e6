// The API reference page: reads the gateway's OpenAPI document and lays it out by tag.
//
// The page is served with `script-src 'self'; style-src 'self'`: nothing here writes inline
// script or style. Everything is DOM nodes with classes (styled by /ui/style.css), and the
// document's text goes in as text, never as HTML.

import { ApiError, request } from "./api.js";
import { h, message, mount } from "./ui.js";

const DOCUMENT_URL = "/api/v1/openapi.json";
const SCHEMA_PREFIX = "#/components/schemas/";
// Inline schemas nested deeper than this show their type only: deeper than any response of
// the gateway, and an end to a schema that contains itself.
const MAX_SCHEMA_DEPTH = 4;
const METHODS = ["get", "head", "post", "put", "patch", "delete", "options"];
// Schema keywords shown under a field's description, with their labels.
const CONSTRAINTS = [
  ["default", "default"],
  ["minimum", "min"],
  ["maximum", "max"],
  ["minLength", "min length"],
  ["maxLength", "max length"],
  ["minItems", "min items"],
  ["maxItems", "max items"],
  ["pattern", "pattern"],
  ["contentMediaType", "media type"],
];
const AUTH_TEXT = {
  required: "Needs the API token (Authorization: Bearer, or the login cookie).",
  optional: "Open on a loopback gateway; a gateway bound beyond loopback needs the API token.",
  none: "Needs no token.",
};

/** Descriptions use `backticks` for code and blank lines between paragraphs. */
function prose(text) {
  if (!text) return [];
  return text.split(/\n\s*\n/).map((paragraph) =>
    h("p", { class: "description" },
      paragraph.split("`").map((part, index) => (index % 2 ? h("code", {}, part) : part))));
}

function refName(schema) {
  const ref = schema && schema.$ref;
  return typeof ref === "string" && ref.startsWith(SCHEMA_PREFIX)
    ? ref.slice(SCHEMA_PREFIX.length)
    : null;
}

function schemaLink(name) {
  return h("a", { class: "schema-link", href: `#schema-${name}` }, name);
}

function joined(parts, separator) {
  return parts.flatMap((part, index) => (index ? [separator, part] : [part]));
}

function required(isRequired) {
  return isRequired ? h("span", { class: "required" }, " required") : null;
}

function table(className, headings, rows) {
  return h("table", { class: className },
    h("thead", {}, h("tr", {}, headings.map((text) => h("th", { scope: "col" }, text)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))));
}

/** Schemas of one document: names followed, allOf merged, laid out as readable tables. */
class Schemas {
  constructor(spec) {
    this.named = (spec.components && spec.components.schemas) || {};
  }

  resolve(schema) {
    const name = refName(schema);
    return name && this.named[name] ? this.named[name] : schema || {};
  }

  /** The schema, its $ref followed and its allOf parts merged (later parts win). */
  flatten(schema) {
    const resolved = this.resolve(schema);
    if (!Array.isArray(resolved.allOf)) return resolved;
    const merged = { type: "object", properties: {}, required: [] };
    for (const part of resolved.allOf.map((p) => this.flatten(p))) {
      Object.assign(merged.properties, part.properties || {});
      merged.required.push(...(part.required || []));
    }
    merged.description = resolved.description;
    return merged;
  }

  /** A short type: "string", "array of Listing", "Page of Listing", "one of raw, car". */
  type(schema) {
    schema = schema || {};
    const name = refName(schema);
    if (name) return schemaLink(name);
    if (Array.isArray(schema.allOf)) {
      const base = schema.allOf.map(refName).find(Boolean);
      const items = refName(this.flatten(schema).properties?.items?.items);
      if (base && items) return [schemaLink(base), " of ", schemaLink(items)];
      return base ? schemaLink(base) : "object";
    }
    const choices = schema.anyOf || schema.oneOf;
    if (Array.isArray(choices)) return joined(choices.map((c) => this.type(c)), " or ");
    if ("const" in schema) return h("code", {}, JSON.stringify(schema.const));
    if (Array.isArray(schema.enum)) {
      return ["one of ", joined(schema.enum.map((v) => h("code", {}, String(v))), ", ")];
    }
    if (schema.type === "array") return ["array of ", this.type(schema.items)];
    if (Array.isArray(schema.type)) return schema.type.join(" or ");
    return schema.type || schema.contentMediaType || "any";
  }

  /** A schema's description and constraints; a named one is described in its own section. */
  about(schema, description = schema && schema.description) {
    const own = schema && !refName(schema) ? schema : {};
    const facts = CONSTRAINTS.filter(([key]) => key in own).map(([key, label]) =>
      h("span", { class: "constraint" }, `${label} `, h("code", {}, JSON.stringify(own[key]))));
    if (Array.isArray(own.examples) && own.examples.length) {
      facts.push(h("span", { class: "constraint" }, "e.g. ", h("code", {}, own.examples[0])));
    }
    return [
      prose(description),
      facts.length ? h("p", { class: "constraints muted" }, joined(facts, " · ")) : null,
    ];
  }

  /** An object's properties as a table, inline objects in it as nested tables. */
  fields(schema, depth = 0) {
    const flat = this.flatten(schema);
    const properties = Object.entries(flat.properties || {});
    if (!properties.length) return null;
    const mandatory = new Set(flat.required || []);
    return table("fields", ["Field", "Type", "Description"], properties.map(([name, field]) => [
      [h("code", {}, name), required(mandatory.has(name))],
      this.type(field),
      [this.about(field), this.nested(field, depth + 1)],
    ]));
  }

  /** The fields of an inline object (or of an array's or union's objects); null otherwise. */
  nested(schema, depth) {
    if (!schema || depth > MAX_SCHEMA_DEPTH || refName(schema)) return null;
    if (schema.type === "array") return this.nested(schema.items, depth);
    for (const choice of schema.anyOf || schema.oneOf || []) {
      const inner = this.nested(choice, depth);
      if (inner) return inner;
    }
    return schema.type === "object" || schema.allOf ? this.fields(schema, depth) : null;
  }

  /** A body's or response's schema: its type, then (if `expand`) its fields, even if named. */
  block(schema, expand) {
    if (!schema) return null;
    const flat = this.flatten(schema);
    return h("div", { class: "schema" },
      h("p", { class: "schema-type" }, "Schema: ", this.type(schema)),
      expand ? [prose(flat.description), this.fields(flat) || this.nested(schema, 0)] : null);
  }
}

function authOf(operation) {
  const requirements = operation.security || [];
  if (!requirements.length) return "none";
  return requirements.some((r) => Object.keys(r).length === 0) ? "optional" : "required";
}

function parametersView(schemas, parameters) {
  if (!parameters || !parameters.length) return null;
  return [
    h("h4", {}, "Parameters"),
    table("parameters", ["Name", "In", "Type", "Description"], parameters.map((p) => [
      [h("code", {}, p.name), required(p.required)],
      p.in,
      schemas.type(p.schema),
      schemas.about(p.schema, p.description),
    ])),
  ];
}

function contentView(schemas, content, expand) {
  return Object.entries(content || {}).map(([type, media]) =>
    h("div", { class: "media" },
      h("p", { class: "media-type" }, h("code", {}, type)),
      schemas.block(media.schema, expand)));
}

function requestBodyView(schemas, body) {
  if (!body) return null;
  return [
    h("h4", {}, "Request body", required(body.required)),
    prose(body.description),
    contentView(schemas, body.content, true),
  ];
}

function responsesView(schemas, responses) {
  return [
    h("h4", {}, "Responses"),
    h("dl", { class: "responses facts" }, Object.entries(responses || {}).map(([status, response]) => {
      // Errors all share the Problem shape: named, not spelled out again each time.
      const expand = !/^[45]/.test(status);
      const headers = Object.entries(response.headers || {});
      return [
        h("dt", { class: `status status-${status[0]}xx` }, h("code", {}, status)),
        h("dd", {},
          prose(response.description),
          headers.length
            ? h("ul", { class: "headers" }, headers.map(([name, header]) =>
              h("li", {}, h("code", {}, name), header.description ? `: ${header.description}` : "")))
            : null,
          contentView(schemas, response.content, expand)),
      ];
    })),
  ];
}

function operationView(schemas, path, method, operation) {
  const auth = authOf(operation);
  return h("details", { class: "operation card", id: `op-${operation.operationId}` },
    h("summary", {},
      h("span", { class: `method method-${method}` }, method.toUpperCase()), " ",
      h("code", { class: "path" }, path), " ",
      h("span", { class: "summary" }, operation.summary || "")),
    prose(operation.description),
    h("p", { class: `auth auth-${auth} muted` }, AUTH_TEXT[auth]),
    parametersView(schemas, operation.parameters),
    requestBodyView(schemas, operation.requestBody),
    responsesView(schemas, operation.responses));
}

/** Operations by tag, in the document's tag order, then any tag it does not list. */
function byTag(spec) {
  const groups = new Map((spec.tags || []).map((tag) => [tag.name, { tag, operations: [] }]));
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const method of METHODS.filter((m) => item[m])) {
      const operation = item[method];
      const name = (operation.tags && operation.tags[0]) || "other";
      if (!groups.has(name)) groups.set(name, { tag: { name }, operations: [] });
      groups.get(name).operations.push({ path, method, operation });
    }
  }
  return [...groups.values()].filter((group) => group.operations.length);
}

function render(spec) {
  const schemas = new Schemas(spec);
  const info = spec.info || {};
  const groups = byTag(spec);
  document.title = `API reference · ${info.title || "Zion"}`;
  mount(document.getElementById("api-title"), info.title || "API reference");
  mount(document.getElementById("api-version"),
    `version ${info.version || "?"} · OpenAPI ${spec.openapi || "?"}`);
  mount(document.getElementById("api-toc"),
    groups.map(({ tag }) => h("a", { href: `#tag-${tag.name}` }, tag.name)),
    h("a", { href: "#schemas" }, "schemas"));
  mount(document.getElementById("api-reference"),
    h("section", { class: "api-intro" }, prose(info.description)),
    groups.map(({ tag, operations }) =>
      h("section", { class: "api-tag", id: `tag-${tag.name}` },
        h("h2", {}, tag.name),
        prose(tag.description),
        operations.map(({ path, method, operation }) =>
          operationView(schemas, path, method, operation)))),
    h("section", { class: "api-schemas", id: "schemas" },
      h("h2", {}, "Schemas"),
      Object.entries(schemas.named).map(([name, schema]) =>
        h("section", { class: "schema-definition card", id: `schema-${name}` },
          h("h3", {}, name),
          schemas.block(schema, true)))));
  openLinkedOperation();
}

/** A link to an operation (#op-...) opens it, on arrival and when followed later. */
function openLinkedOperation() {
  let id = "";
  try {
    id = decodeURIComponent(location.hash.slice(1));
  } catch {
    return;  // a malformed #fragment names nothing here
  }
  const target = id && document.getElementById(id);
  if (target instanceof HTMLDetailsElement) {
    target.open = true;
    target.scrollIntoView();
  }
}

async function load() {
  const reference = document.getElementById("api-reference");
  try {
    render(await request("GET", DOCUMENT_URL));
  } catch (error) {
    const hint = error instanceof ApiError && error.status === 401
      ? "Open the login URL that `zion run` printed (or run `zion open`), then reload this page."
      : null;
    mount(reference, message("error", "The API description could not be loaded", error.message),
      prose(hint));
  } finally {
    document.getElementById("main").setAttribute("aria-busy", "false");
  }
}

window.addEventListener("hashchange", openLinkedOperation);
load();
