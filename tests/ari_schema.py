"""JSON-schema validators built from the official ARI docs of Asterisk 22 (swagger 1.2).

The docs (``ari-api-docs/*.json``) describe every model in a ``models`` section and every REST
operation in an ``apis`` section. This module translates them once, at import time, into JSON
schema (draft 2020-12) and answers three questions for the tests:

- is this websocket event a documented ARI event with the documented shape? (``validate_event``)
- is this object a valid ``Channel``/``Bridge``/...? (``validate_model``, ``validate_response``)
- which parameters does this REST operation document? (``operation``, ``match_operation``,
  ``undocumented_query_params``)

Decisions:
- Extra properties are allowed by default: Asterisk adds fields over versions, and an app must
  tolerate them. ``strict=True`` forbids them, for checking that the simulated PBX invents nothing
  that Asterisk 22 does not document.
- An event whose ``type`` is not a documented concrete ``Message`` subtype is an error: a new event
  type is a real protocol difference, unlike a new field.
- ``Date`` is checked against the format Asterisk actually emits (``2026-11-21T11:33:22.235+0000``),
  which is not RFC 3339 (no colon in the offset), so JSON schema's ``date-time`` would reject it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypedDict

from jsonschema import Draft202012Validator

from tests.shared_paths import ARI_DOCS_DIR

ASTERISK_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{4}$"
_LIST_TYPE = re.compile(r"^List\[(?P<item>.+)\]$")
_PRIMITIVES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "int": {"type": "integer"},
    "long": {"type": "integer"},
    "double": {"type": "number"},
    "boolean": {"type": "boolean"},
    "object": {"type": "object"},
    "Date": {"type": "string", "pattern": ASTERISK_DATE_PATTERN},
}
# Accepted by every ARI request (authentication), never listed per operation.
GLOBAL_QUERY_PARAMS = frozenset({"api_key"})


class AriDocsError(RuntimeError):
    """The docs could not be found or use a construct this translator does not know."""


class ParameterSpec(TypedDict):
    name: str
    param_type: str  # "query" | "path" | "body"
    required: bool
    data_type: str
    allow_multiple: bool
    allowable_values: dict[str, Any] | None
    default: Any


class OperationSpec(TypedDict):
    path: str  # template relative to /ari, e.g. "/channels/{channelId}/dial"
    method: str
    nickname: str
    response_class: str
    parameters: dict[str, ParameterSpec]
    error_responses: dict[int, str]


@dataclass(frozen=True)
class _Model:
    name: str
    properties: dict[str, dict[str, Any]]  # own and inherited, swagger property specs
    required: frozenset[str]
    sub_types: tuple[str, ...]
    discriminator: str | None


def docs_dir() -> Path:
    if (ARI_DOCS_DIR / "events.json").is_file():
        return ARI_DOCS_DIR
    raise AriDocsError(f"ARI docs not found in {ARI_DOCS_DIR} (set HOLDSLAYER_SHARED_DIR)")


class AriSchema:
    """All models and operations of one ARI docs directory."""

    def __init__(self, directory: Path) -> None:
        raw_models: dict[str, dict[str, Any]] = {}
        self._operations: dict[tuple[str, str], OperationSpec] = {}
        for path in sorted(directory.glob("*.json")):
            document = json.loads(path.read_text())
            for name, model in document.get("models", {}).items():
                if name in raw_models:
                    raise AriDocsError(f"model {name} defined twice (second time in {path.name})")
                raw_models[name] = model
            for api in document.get("apis", []):
                for op in api.get("operations", []):
                    spec = _operation_spec(api["path"], op)
                    self._operations[(spec["path"], spec["method"])] = spec
        if not raw_models:
            raise AriDocsError(f"no models in {directory}")
        self.models = _flatten_inheritance(raw_models)
        self.event_types = frozenset(self._concrete_descendants("Event"))
        # Message subtypes that are not events (MissingParams) may also arrive on the websocket.
        self.message_types = frozenset(self._concrete_descendants("Message"))
        self._lenient = self._validators(strict=False)
        self._strict = self._validators(strict=True)

    # --- events and models -------------------------------------------------------------------

    def validate_event(self, event: Any, *, strict: bool = False) -> list[str]:
        if not isinstance(event, dict):
            return [f"$: event is {type(event).__name__}, not an object"]
        event_type = event.get("type")
        if not isinstance(event_type, str):
            return ["$.type: missing or not a string"]
        if event_type not in self.message_types:
            return [f"$.type: unknown event type {event_type!r}"]
        return self._errors(event_type, event, strict)

    def validate_model(self, name: str, obj: Any, *, strict: bool = False) -> list[str]:
        model = self.models.get(name)
        if model is None:
            raise KeyError(f"ARI docs define no model {name!r}")
        if model.sub_types:
            # Polymorphic base (Message, Event): dispatch on the discriminator like a client would.
            if not isinstance(obj, dict) or not isinstance(obj.get(model.discriminator or "type"), str):
                return [f"$: {name} needs a string {model.discriminator or 'type'!r}"]
            concrete = obj[model.discriminator or "type"]
            if concrete not in self._concrete_descendants(name):
                return [f"$.{model.discriminator or 'type'}: {concrete!r} is not a subtype of {name}"]
            return self._errors(concrete, obj, strict)
        return self._errors(name, obj, strict)

    # --- REST operations ---------------------------------------------------------------------

    def operation(self, path_template: str, method: str) -> OperationSpec:
        key = (path_template, method.upper())
        if key not in self._operations:
            raise KeyError(f"ARI docs define no operation {method.upper()} {path_template}")
        return self._operations[key]

    def operations(self) -> list[OperationSpec]:
        return list(self._operations.values())

    def match_operation(self, method: str, path: str) -> OperationSpec | None:
        """The documented operation a concrete request path (relative to /ari) is routed to.

        Literal segments beat path parameters, as in Asterisk's router:
        ``/channels/create`` is the create operation, not ``/channels/{channelId}``.
        """
        segments = path.strip("/").split("/")
        best: tuple[int, OperationSpec] | None = None
        for (template, op_method), spec in self._operations.items():
            if op_method != method.upper():
                continue
            template_segments = template.strip("/").split("/")
            if len(template_segments) != len(segments):
                continue
            literal_matches = 0
            for want, got in zip(template_segments, segments):
                if want.startswith("{") and want.endswith("}"):
                    if not got:
                        break
                elif want == got:
                    literal_matches += 1
                else:
                    break
            else:
                if best is None or literal_matches > best[0]:
                    best = (literal_matches, spec)
        return best[1] if best else None

    def undocumented_query_params(self, method: str, path: str, query: dict[str, Any] | None) -> list[str]:
        """Query parameter names the docs do not define for this request (empty if all known)."""
        spec = self.match_operation(method, path)
        if spec is None:
            raise KeyError(f"ARI docs define no operation for {method.upper()} {path}")
        known = {name for name, p in spec["parameters"].items() if p["param_type"] != "path"}
        return sorted(set(query or {}) - known - GLOBAL_QUERY_PARAMS)

    def validate_response(self, method: str, path: str, status: int, body: Any, *, strict: bool = False) -> list[str]:
        """Errors of a 2xx response body against the operation's documented ``responseClass``."""
        spec = self.match_operation(method, path)
        if spec is None:
            return [f"no documented operation for {method.upper()} {path}"]
        if not 200 <= status < 300:
            raise ValueError(f"only 2xx responses have a documented body (got {status})")
        response_class = spec["response_class"]
        if response_class == "void":
            return [] if body in (None, "", b"") else [f"$: {spec['nickname']} is void but returned {body!r:.80}"]
        if response_class == "binary":
            return []
        list_match = _LIST_TYPE.match(response_class)
        if list_match:
            if not isinstance(body, list):
                return [f"$: expected a list of {list_match['item']}, got {type(body).__name__}"]
            errors: list[str] = []
            for index, item in enumerate(body):
                errors += [f"[{index}]{e[1:]}" for e in self.validate_model(list_match["item"], item, strict=strict)]
            return errors
        return self.validate_model(response_class, body, strict=strict)

    # --- internals -----------------------------------------------------------------------------

    def _concrete_descendants(self, name: str) -> list[str]:
        model = self.models[name]
        if not model.sub_types:
            return [name]
        return [leaf for sub in model.sub_types for leaf in self._concrete_descendants(sub)]

    def _validators(self, *, strict: bool) -> dict[str, Draft202012Validator]:
        defs = {name: self._model_schema(model, strict=strict) for name, model in self.models.items()}
        Draft202012Validator.check_schema({"$defs": defs})
        return {name: Draft202012Validator({"$defs": defs, "$ref": f"#/$defs/{name}"}) for name in defs}

    def _model_schema(self, model: _Model, *, strict: bool) -> dict[str, Any]:
        properties = {name: self._property_schema(spec, model.name) for name, spec in model.properties.items()}
        if model.discriminator is None and "type" in properties and self._is_message(model.name):
            properties["type"] = {"const": model.name}
        schema: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "required": sorted(model.required),
        }
        if strict:
            schema["additionalProperties"] = False
        return schema

    def _is_message(self, name: str) -> bool:
        return name in self._concrete_descendants("Message")

    def _property_schema(self, spec: dict[str, Any], owner: str) -> dict[str, Any]:
        schema = self._type_schema(spec["type"], owner)
        allowable = spec.get("allowableValues")
        if allowable:
            schema = {**schema, **_allowable_schema(allowable)}
        return schema

    def _type_schema(self, swagger_type: str, owner: str) -> dict[str, Any]:
        list_match = _LIST_TYPE.match(swagger_type)
        if list_match:
            return {"type": "array", "items": self._type_schema(list_match["item"], owner)}
        if swagger_type in _PRIMITIVES:
            return dict(_PRIMITIVES[swagger_type])
        if swagger_type in self.models:
            return {"$ref": f"#/$defs/{swagger_type}"}
        raise AriDocsError(f"{owner}: unknown swagger type {swagger_type!r}")

    def _errors(self, name: str, obj: Any, strict: bool) -> list[str]:
        validator = (self._strict if strict else self._lenient)[name]
        return [
            f"{_json_path(error.absolute_path)}: {error.message}"
            for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        ]


def _operation_spec(path: str, op: dict[str, Any]) -> OperationSpec:
    parameters: dict[str, ParameterSpec] = {}
    for param in op.get("parameters", []):
        parameters[param["name"]] = ParameterSpec(
            name=param["name"],
            param_type=param["paramType"],
            required=bool(param.get("required", False)),
            data_type=param["dataType"],
            allow_multiple=bool(param.get("allowMultiple", False)),
            allowable_values=param.get("allowableValues"),
            default=param.get("defaultValue"),
        )
    return OperationSpec(
        path=path,
        method=op["httpMethod"].upper(),
        nickname=op["nickname"],
        response_class=op["responseClass"],
        parameters=parameters,
        error_responses={int(e["code"]): e["reason"] for e in op.get("errorResponses", [])},
    )


def _flatten_inheritance(raw_models: dict[str, dict[str, Any]]) -> dict[str, _Model]:
    parent_of: dict[str, str] = {}
    for name, model in raw_models.items():
        for sub in model.get("subTypes", []):
            if sub not in raw_models:
                raise AriDocsError(f"{name} lists subtype {sub} that has no model")
            parent_of[sub] = name

    def lineage(name: str) -> list[str]:
        chain = [name]
        while chain[-1] in parent_of:
            chain.append(parent_of[chain[-1]])
        return list(reversed(chain))  # root first, so a subtype's own spec wins

    flattened: dict[str, _Model] = {}
    for name, model in raw_models.items():
        properties: dict[str, dict[str, Any]] = {}
        for ancestor in lineage(name):
            properties.update(raw_models[ancestor].get("properties", {}))
        flattened[name] = _Model(
            name=name,
            properties=properties,
            required=frozenset(p for p, spec in properties.items() if spec.get("required") is True),
            sub_types=tuple(model.get("subTypes", ())),
            discriminator=model.get("discriminator"),
        )
    return flattened


def _allowable_schema(allowable: dict[str, Any]) -> dict[str, Any]:
    kind = allowable.get("valueType")
    if kind == "LIST":
        return {"enum": list(allowable["values"])}
    if kind == "RANGE":
        bounds = {}
        if "min" in allowable:
            bounds["minimum"] = allowable["min"]
        if "max" in allowable:
            bounds["maximum"] = allowable["max"]
        return bounds
    raise AriDocsError(f"unknown allowableValues type {kind!r}")


def _json_path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


@cache
def schema() -> AriSchema:
    return AriSchema(docs_dir())


def validate_event(event: dict, *, strict: bool = False) -> list[str]:
    """Errors of one websocket event against the docs; empty if valid."""
    return schema().validate_event(event, strict=strict)


def validate_model(name: str, obj: dict, *, strict: bool = False) -> list[str]:
    """Errors of ``obj`` as the model ``name`` (Channel, Bridge, Playback, ...); empty if valid."""
    return schema().validate_model(name, obj, strict=strict)


def validate_response(method: str, path: str, status: int, body: Any, *, strict: bool = False) -> list[str]:
    """Errors of a 2xx REST response body (path relative to /ari); empty if valid."""
    return schema().validate_response(method, path, status, body, strict=strict)


def operation(path_template: str, method: str) -> OperationSpec:
    """The documented operation ``METHOD path_template`` (e.g. ``"/channels/{channelId}/dial"``)."""
    return schema().operation(path_template, method)


def match_operation(method: str, path: str) -> OperationSpec | None:
    """The documented operation a concrete path (relative to /ari) is routed to, if any."""
    return schema().match_operation(method, path)


def undocumented_query_params(method: str, path: str, query: dict[str, Any] | None) -> list[str]:
    """Names in ``query`` that the docs do not define for this request."""
    return schema().undocumented_query_params(method, path, query)
