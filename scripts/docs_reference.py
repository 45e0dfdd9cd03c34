"""The documentation's reference pages, generated from the code so that they cannot drift from it: the command line
from argparse, the training settings from the config's dataclasses and their `#:` comments, the HTTP API from the
server's OpenAPI schema. MkDocs runs this file as a hook (`mkdocs.yml`); `python scripts/docs_reference.py DIR`
writes the three pages into DIR."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import sys
import typing
from pathlib import Path

CHANGELOG = Path(__file__).resolve().parents[1] / "CHANGELOG.md"
PAGES = {
    "reference/cli.md": "cli_reference",
    "reference/config.md": "config_reference",
    "reference/http.md": "http_reference",
}


def cli_reference() -> str:
    """Every sub-command's `--help`, as argparse prints it."""
    from mprnet.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    parts = [
        "# Command-line reference\n\nGenerated from the command line's own parser: each section is what "
        "`mprnet COMMAND --help` prints.\n",
        _fenced(parser.format_help()),
    ]
    for name, sub in commands.items():
        parts += [f"## `mprnet {name}`\n", _fenced(sub.format_help())]
    return "\n".join(parts)


def config_reference() -> str:
    """Every setting of a training config: its name, type, default and the comment above it in the source."""
    from mprnet.train import config

    parts = [
        "# Training settings\n\nGenerated from `mprnet.train.config`: every setting a training config (YAML) or "
        "`mprnet train --set NAME=VALUE` takes. `data.NAME` and `val.NAME` are the settings of the `data` and `val` "
        "sections. Every value is checked for its type and range before anything is written.\n"
    ]
    for cls, prefix in ((config.TrainConfig, ""), (config.DataConfig, "data."), (config.ValConfig, "val.")):
        comments = _field_comments(cls)
        hints = typing.get_type_hints(cls)
        parts.append(f"## {'top level' if not prefix else prefix.rstrip('.')}\n")
        parts.append("| setting | type | default | meaning |\n|---|---|---|---|")
        for item in dataclasses.fields(cls):
            default = _default(item)
            meaning = comments.get(item.name, "").replace("|", "\\|")
            parts.append(f"| `{prefix}{item.name}` | {_type(hints[item.name])} | {default} | {meaning} |")
        parts.append("")
    return "\n".join(parts)


def http_reference() -> str:
    """Every route of the server with its parameters and answers, from the application's OpenAPI schema."""
    schema = _openapi_schema()
    parts = [
        f"# HTTP API\n\nGenerated from the server's OpenAPI schema ({schema['info']['title']} "
        f"{schema['info']['version']}); a running server gives the same schema at `/openapi.json`.\n"
    ]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            parts.append(f"## `{method.upper()} {path}`\n")
            parts.append(f"{operation.get('summary', '')}\n\n{operation.get('description', '')}".strip() + "\n")
            parameters = _parameters(schema, operation)
            if parameters:
                parts.append("| parameter | in | type | meaning |\n|---|---|---|---|")
                parts += [f"| `{name}` | {where} | {kind} | {meaning} |" for name, where, kind, meaning in parameters]
                parts.append("")
            responses = operation["responses"].items()
            answers = ", ".join(f"{code} {answer.get('description', '')}" for code, answer in responses)
            parts.append(f"Answers: {answers}.\n")
    return "\n".join(parts)


def _openapi_schema() -> dict:
    from mprnet.serve.app import create_app
    from mprnet.serve.settings import Settings

    app = create_app(Settings(example_size=32, isolate_jobs=False))
    try:
        return app.openapi()
    finally:
        app.state.queue.shutdown()
        app.state.examples.wait(timeout=30)


def _parameters(schema: dict, operation: dict) -> list[tuple[str, str, str, str]]:
    rows = [
        (p["name"], p["in"], _schema_type(p.get("schema", {})), p.get("description", ""))
        for p in operation.get("parameters", [])
    ]
    for content in operation.get("requestBody", {}).get("content", {}).values():
        body = _resolve(schema, content.get("schema", {}))
        rows += [
            (name, "form", _schema_type(_resolve(schema, field)), field.get("description", ""))
            for name, field in body.get("properties", {}).items()
        ]
    return [(name, where, kind, meaning.replace("|", "\\|").replace("\n", " ")) for name, where, kind, meaning in rows]


def _resolve(schema: dict, node: dict) -> dict:
    reference = node.get("$ref")
    if not reference:
        return node
    target: dict = schema
    for key in reference.lstrip("#/").split("/"):
        target = target[key]
    return target


def _schema_type(node: dict) -> str:
    if "anyOf" in node:
        return " or ".join(_schema_type(option) for option in node["anyOf"])
    if node.get("format") == "binary" or "contentMediaType" in node:
        return "file"
    return node.get("type", "any")


def _field_comments(cls: type) -> dict[str, str]:
    """The `#:` comment lines right above each field of a dataclass, joined."""
    source, _ = inspect.getsourcelines(cls)
    comments: dict[str, str] = {}
    pending: list[str] = []
    for line in source:
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        node = _annotated_name(stripped)
        if node and pending:
            comments[node] = " ".join(pending)
        pending = []
    return comments


def _annotated_name(line: str) -> str | None:
    try:
        statement = ast.parse(line).body
    except SyntaxError:
        return None
    if statement and isinstance(statement[0], ast.AnnAssign) and isinstance(statement[0].target, ast.Name):
        return statement[0].target.id
    return None


def _default(item: dataclasses.Field) -> str:
    if item.default is not dataclasses.MISSING:
        return f"`{json.dumps(item.default) if not isinstance(item.default, tuple) else list(item.default)}`"
    if item.default_factory is not dataclasses.MISSING:
        value = item.default_factory()
        return f"`{json.dumps(value)}`" if isinstance(value, (dict, list)) else "(its section)"
    return "(required)"


def _type(hint: object) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "").replace("|", "or")


def _fenced(text: str) -> str:
    return f"```text\n{text.rstrip()}\n```\n"


def page(uri: str) -> str:
    return globals()[PAGES[uri]]()


def on_files(files, config):  # the MkDocs hook: the pages join the site as generated files
    from mkdocs.structure.files import File

    for uri in PAGES:
        files.append(File.generated(config, uri, content=page(uri)))
    files.append(File.generated(config, "changelog.md", content=CHANGELOG.read_text()))
    for card in model_cards():
        files.append(File.generated(config, f"models/{card.stem}.md", content=card.read_text()))
    return files


def model_cards() -> list[Path]:
    """The bundled models' cards, which ship inside the package beside their weights."""
    return sorted((CHANGELOG.parent / "src" / "mprnet" / "weights").glob("*.md"))


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "site-reference")
    for uri in PAGES:
        (folder / uri).parent.mkdir(parents=True, exist_ok=True)
        (folder / uri).write_text(page(uri))
        print(folder / uri)
