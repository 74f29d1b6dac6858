"""Custom resources checked against the CustomResourceDefinitions that define them.

Why: kubernetes-validate knows the built-in kinds only. A custom resource in a manifest
(a Calico IPPool or BGPConfiguration, an operator's Installation) is checked by the API
server against its CRD's ``openAPIV3Schema`` only when it is applied, i.e. on the
cluster, mid-run. Checking it here, against the CRDs shipped in the same manifest (or
given beside it), moves that failure to review time.

The schema is used as the API server uses it, strictly: unknown fields are errors
unless the schema preserves them (``x-kubernetes-preserve-unknown-fields``), like
``kubectl apply --validate=strict``; ``int-or-string`` fields accept both. CEL rules
(``x-kubernetes-validations``) need the API server's CEL environment and are not
evaluated.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jsonschema

Key = tuple[str, str]   # (apiVersion, kind)


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON-schema copy of an OpenAPI v3 structural schema: closed objects, int-or-string
    as either type, Kubernetes extension keywords dropped."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _strict(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_strict(sub) for sub in value]
        else:
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if ("properties" in out and "additionalProperties" not in out
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def crd_schemas(documents: Iterable[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    """(apiVersion, kind) -> strict schema, for every served version of every CRD."""
    schemas: dict[Key, dict[str, Any]] = {}
    for doc in documents:
        if doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc.get("spec", {})
        kind, group = spec.get("names", {}).get("kind"), spec.get("group")
        for version in spec.get("versions", []):
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if kind and group and schema and version.get("served", True):
                strict = _strict(schema)
                # the API server, not the CRD, owns these
                strict.setdefault("properties", {}).update(
                    apiVersion={"type": "string"}, kind={"type": "string"},
                    metadata={"type": "object"})
                schemas[(f"{group}/{version['name']}", kind)] = strict
    return schemas


def custom_resource_problems(documents: list[dict[str, Any]],
                             more_crds: Iterable[dict[str, Any]] = ()) -> list[str]:
    """One line per invalid custom resource (kind/name: path: message); custom resources
    whose CRD is in neither set are reported too, since nothing could check them."""
    schemas = crd_schemas([*documents, *more_crds])
    problems = []
    for doc in documents:
        api_version, kind = str(doc.get("apiVersion", "")), str(doc.get("kind", ""))
        group = api_version.partition("/")[0] if "/" in api_version else ""
        if not group or "." not in group or kind == "CustomResourceDefinition":
            continue   # built-in kinds (core, apps, rbac.authorization.k8s.io ...) below
        if group.endswith(".k8s.io") and not group.endswith(".x-k8s.io"):
            continue
        name = f"{kind}/{doc.get('metadata', {}).get('name', '?')}"
        schema = schemas.get((api_version, kind))
        if schema is None:
            problems.append(f"{name}: no CustomResourceDefinition for {api_version} {kind} in "
                            "the manifest, so it cannot be checked")
            continue
        for error in sorted(jsonschema.Draft4Validator(schema).iter_errors(doc),
                            key=lambda e: list(e.absolute_path)):
            where = ".".join(str(p) for p in error.absolute_path) or "(root)"
            problems.append(f"{name}: {where}: {error.message}")
    return problems
