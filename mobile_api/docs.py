"""A readable page for the API, rendered on the server from the OpenAPI document: every
endpoint, its parameters, bodies and answers (errors included). No scripts, no CDN."""

from __future__ import annotations

from flask import Blueprint, render_template_string

bp = Blueprint("api_docs", __name__)

METHODS = ("get", "post", "put", "patch", "delete")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ spec.info.title }} {{ spec.info.version }}</title>
<style>
 body{font:15px/1.45 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;
      color:#1d2330}
 h1{margin-bottom:.2rem} nav a{margin-right:.8rem} code{font-size:90%}
 section.op{border:1px solid #d5d9e0;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}
 .m{display:inline-block;min-width:4rem;font-weight:700;text-transform:uppercase}
 .get{color:#1668a8}.post{color:#16803c}.delete{color:#b42318}.put,.patch{color:#a15c07}
 table{border-collapse:collapse;width:100%;margin:.3rem 0} td,th{border-top:1px solid #eee;
      padding:.2rem .4rem;text-align:left;vertical-align:top} th{font-weight:600}
 .err{color:#b42318} .muted{color:#667}
</style></head><body>
<h1>{{ spec.info.title }} <small class="muted">{{ spec.info.version }}</small></h1>
<p>Machine-readable document: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.
Errors always have the body <code>{"error": {"code", "message", "details"?}}</code>.
Signed-in calls send <code>Authorization: Bearer &lt;token&gt;</code>.</p>
<nav>{% for tag in tags %}<a href="#tag-{{ tag }}">{{ tag }}</a>{% endfor %}</nav>
{% for tag in tags %}
<h2 id="tag-{{ tag }}">{{ tag }}</h2>
{% for op in ops if op.tag == tag %}
<section class="op" id="{{ op.id }}">
 <div><span class="m {{ op.method }}">{{ op.method }}</span> <code>{{ op.path }}</code>
  {% if op.secured %}<span class="muted"> · bearer token{% if op.optional %} (optional)
  {% endif %}</span>{% endif %}</div>
 {% if op.summary %}<p>{{ op.summary }}</p>{% endif %}
 {% if op.params %}<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th>
  <th>about</th></tr>
  {% for p in op.params %}<tr><td><code>{{ p.name }}</code></td><td>{{ p["in"] }}</td>
  <td>{{ p.type }}</td><td>{{ "yes" if p.required else "" }}</td><td>{{ p.about }}</td></tr>
  {% endfor %}</table>{% endif %}
 {% for body in op.bodies %}<p><b>Body</b> <code>{{ body.media }}</code></p>
  <table><tr><th>field</th><th>type</th><th>required</th><th>about</th></tr>
  {% for f in body.fields %}<tr><td><code>{{ f.name }}</code></td><td>{{ f.type }}</td>
  <td>{{ "yes" if f.required else "" }}</td><td>{{ f.about }}</td></tr>{% endfor %}
  </table>{% endfor %}
 <table><tr><th>answer</th><th>meaning</th></tr>
 {% for status, text in op.responses %}<tr><td class="{{ 'err' if status[0] in '45' }}">
  {{ status }}</td><td>{{ text }}</td></tr>{% endfor %}</table>
</section>
{% endfor %}{% endfor %}
</body></html>"""


@bp.route("/api/v1/docs")
def api_page():
    """The API, readable: generated from the same document clients and tests use."""
    from mobile_api import api

    spec = api.spec.to_dict()
    ops = [_operation(spec, path, method, op)
           for path, item in sorted(spec.get("paths", {}).items())
           for method, op in item.items() if method in METHODS]
    tags = sorted({op["tag"] for op in ops})
    return render_template_string(PAGE, spec=spec, ops=ops, tags=tags)


def _operation(spec: dict, path: str, method: str, op: dict) -> dict:
    security = op.get("security") or []
    return {
        "id": op.get("operationId") or f"{method}-{path}", "path": path, "method": method,
        "tag": (op.get("tags") or ["other"])[0],
        "summary": " ".join(filter(None, (op.get("summary"), op.get("description")))),
        "secured": bool(security), "optional": {} in security,
        "params": [{"name": p.get("name"), "in": p.get("in"), "required": p.get("required"),
                    "type": _type(spec, p.get("schema", {})),
                    "about": p.get("description", "")}
                   for p in (_resolve(spec, p) for p in op.get("parameters", []))],
        "bodies": [{"media": media, "fields": _fields(spec, content.get("schema", {}))}
                   for media, content in op.get("requestBody", {}).get("content", {}).items()],
        "responses": [(status, (_resolve(spec, r) or {}).get("description", ""))
                      for status, r in sorted(op.get("responses", {}).items())],
    }


def _resolve(spec: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {})
        node = target
    return node


def _fields(spec: dict, schema: dict) -> list[dict]:
    schema = _resolve(spec, schema)
    required = set(schema.get("required", []))
    return [{"name": name, "type": _type(spec, prop), "required": name in required,
             "about": _resolve(spec, prop).get("description", "")}
            for name, prop in schema.get("properties", {}).items()]


def _type(spec: dict, schema: dict) -> str:
    schema = _resolve(spec, schema)
    kind = schema.get("type", "object")
    if kind == "array":
        return f"array of {_type(spec, schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    return kind + (f" ({schema['format']})" if "format" in schema else "")
