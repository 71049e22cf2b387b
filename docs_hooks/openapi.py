"""mkdocs hook: the API reference page, rendered at build time from the OpenAPI schema the site
serves (drf-spectacular's generator, through ``manage.py spectacular``), never copied by hand.

It adds two generated files to the build: ``api/reference.md`` (Markdown tables of every
endpoint and schema, so the site's search finds them) and ``api/openapi.json`` (the schema
itself, for a client generator or a local Swagger/Redoc). The schema comes from a subprocess so
that Django is set up in a process of its own, not inside mkdocs (``mkdocs serve`` rebuilds in
the same process), and so a broken API fails the docs build with drf-spectacular's message.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

REPO = Path(__file__).resolve().parents[1]
# The test settings need no secret and connect to nothing while the schema is generated.
SETTINGS = os.environ.get("DOCS_DJANGO_SETTINGS_MODULE", "webapp.settings.test")
METHODS = ("get", "post", "put", "patch", "delete")


def generate_schema() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env["DJANGO_SETTINGS_MODULE"] = SETTINGS
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--format", "openapi-json", "--validate",
         "--fail-on-warn"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise PluginError("manage.py spectacular failed:\n" + result.stderr[-3000:])
    return json.loads(result.stdout)


def cell(text) -> str:
    """One Markdown table cell: no line breaks, no column separators."""
    return " ".join(str(text or "").split()).replace("|", "\\|")


def anchor(name: str) -> str:
    return "schema-" + name.lower()


def type_of(schema: dict) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{anchor(name)})"
    for combiner in ("oneOf", "anyOf", "allOf"):
        if combiner in schema:
            return " or ".join(type_of(part) for part in schema[combiner])
    kind = schema.get("type", "object")
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    text = kind + (f" ({schema['format']})" if "format" in schema else "")
    if "enum" in schema:
        text += ": " + ", ".join(f"`{value}`" for value in schema["enum"] if value is not None)
    if schema.get("nullable"):
        text += ", or null"
    return text


def body_schema(content: dict) -> str:
    return "; ".join(f"`{media}`: {type_of(spec.get('schema', {}))}"
                     for media, spec in content.items())


def render_operation(path: str, method: str, operation: dict) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", ""]
    if operation.get("summary"):
        lines += [operation["summary"], ""]
    if operation.get("description"):
        lines += [operation["description"], ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| parameter | in | type | required | description |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| `{p['name']}` | {p['in']} | {cell(type_of(p.get('schema', {})))} | "
                  f"{'yes' if p.get('required') else 'no'} | {cell(p.get('description'))} |"
                  for p in parameters]
        lines.append("")
    body = operation.get("requestBody")
    if body:
        required = " (required)" if body.get("required") else ""
        lines += [f"Request body{required}: {body_schema(body.get('content', {}))}", ""]
    lines += ["| status | meaning | body |", "| --- | --- | --- |"]
    for status, response in sorted(operation.get("responses", {}).items()):
        lines.append(f"| {status} | {cell(response.get('description'))} | "
                     f"{cell(body_schema(response.get('content', {})))} |")
    return lines + [""]


def render_schema(name: str, schema: dict) -> list[str]:
    lines = [f"### {name} {{#{anchor(name)}}}", ""]
    if schema.get("description"):
        lines += [cell(schema["description"]), ""]
    properties = schema.get("properties")
    if not properties:
        return lines + [type_of(schema), ""]
    required = set(schema.get("required", []))
    lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    lines += [f"| `{field}` | {cell(type_of(spec))}{' (read-only)' if spec.get('readOnly') else ''} | "
              f"{'yes' if field in required else 'no'} | {cell(spec.get('description'))} |"
              for field, spec in properties.items()]
    return lines + [""]


def render(schema: dict) -> str:
    info = schema.get("info", {})
    lines = [
        f"# API reference: {info.get('title', 'API')} {info.get('version', '')}", "",
        "Generated when the documentation is built, from the OpenAPI schema the site serves at "
        "`/api/schema/` (drf-spectacular's generator, `manage.py spectacular`): it cannot drift "
        "from the code. The schema itself: [openapi.json](openapi.json). On a running site the "
        "same schema is browsable at `/api/docs/` (Swagger UI) and `/api/redoc/` (Redoc). "
        "The guide to using it is [the REST API](index.md).", "",
        info.get("description", ""), "",
        "## Authentication", "",
        "| scheme | how |", "| --- | --- |",
    ]
    for name, scheme in schema.get("components", {}).get("securitySchemes", {}).items():
        lines.append(f"| `{name}` | {scheme.get('type')} in {scheme.get('in')} "
                     f"`{scheme.get('name')}`{': ' + cell(scheme['description']) if scheme.get('description') else ''} |")
    lines.append("")
    by_tag: dict[str, list] = {}
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                tag = (item[method].get("tags") or ["the API root"])[0]
                by_tag.setdefault(tag, []).append((path, method, item[method]))
    for tag, operations in by_tag.items():
        lines += [f"## {tag[0].upper()}{tag[1:]}", ""]
        for path, method, operation in operations:
            lines += render_operation(path, method, operation)
    lines += ["## Schemas", ""]
    for name, spec in schema.get("components", {}).get("schemas", {}).items():
        lines += render_schema(name, spec)
    return "\n".join(lines)


def on_files(files, config):
    schema = generate_schema()
    files.append(File.generated(config, "api/reference.md", content=render(schema)))
    files.append(File.generated(config, "api/openapi.json", content=json.dumps(schema, indent=1)))
    return files
