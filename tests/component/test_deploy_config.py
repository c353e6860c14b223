"""The production deployment, checked without Docker or Asterisk.

docker-compose.yml must be a valid Compose Specification file, the Asterisk configs in asterisk/conf
must parse as Asterisk config and agree with each other, with the image built by asterisk/Dockerfile,
with the app's settings (app/config.py) and with what real Asterisk did in the captures.

The Compose Specification schema comes from the check-jsonschema package, which vendors the
official compose-spec.json.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import re
import shlex
import subprocess
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from app.config import Settings
from app.phone import EMERGENCY_NUMBERS

REPO = Path(__file__).resolve().parents[2]
ASTERISK_DIR = REPO / "asterisk"
CONF_DIR = ASTERISK_DIR / "conf"
DOCKERFILE = ASTERISK_DIR / "Dockerfile"
ENTRYPOINT = ASTERISK_DIR / "docker-entrypoint.sh"
COMPOSE_FILE = REPO / "docker-compose.yml"
CAPTURE_DIRS = (
    REPO / "asterisk" / "captures",
    REPO.parent / "shared" / "asterisk" / "captures",
    Path("/work/shared/asterisk/captures"),
)

# Where the entrypoint writes the secrets inside the container; the configs #include from there.
SECRETS_DIR_IN_CONTAINER = "/run/asterisk-secrets"

# What a user puts in .env (asterisk/README.md). ';' must survive Asterisk's comment syntax.
# The provider's host is an address here so that the tests need no DNS (TEST-NET-2, RFC 5737).
SAMPLE_DOTENV = {
    "HOLDSLAYER_ARI_PASSWORD": "ari pass;word",
    "USERPHONE_PASSWORD": "phone-secret",
    "TRUNK_HOST": "198.51.100.20",
    "TRUNK_USER": "acct1001",
    "TRUNK_PASSWORD": "trunk;secret",
    "TRUNK_CALLERID": "Alex Smith <+15551230000>",
}
# The asterisk container's environment for a trunk that authenticates us by our IP address.
IP_TRUNK_ENV = {"ARI_PASSWORD": "x", "USERPHONE_PASSWORD": "y", "TRUNK_HOST": "198.51.100.20"}

# Modules the app cannot work without, whatever the configs say.
REQUIRED_MODULES = {
    # ARI: REST, events, and the resources the call session uses.
    "res_ari", "res_ari_applications", "res_ari_bridges", "res_ari_channels", "res_ari_events",
    "res_ari_playbacks", "res_ari_recordings", "res_http_websocket",
    "res_stasis", "res_stasis_playback", "res_stasis_recording", "res_stasis_snoop", "app_stasis",
    # externalMedia channels, bridge play/record, mixing bridges.
    "chan_rtp", "chan_bridge_media", "bridge_simple", "bridge_softmix",
    # SIP to the phone and the trunk.
    "chan_pjsip", "res_pjsip", "res_pjsip_session", "res_pjsip_outbound_registration",
    # G.711 calls, WAV recordings, music on hold, CHANNEL() reads (capture h), the dialplan.
    "codec_ulaw", "codec_alaw", "format_wav", "res_musiconhold", "func_channel", "pbx_config",
    "app_dial",
}  # fmt: skip

# Dialplan applications built into the Asterisk core, and the modules that provide the others.
CORE_APPLICATIONS = {"Answer", "Goto", "GotoIf", "Hangup", "NoOp", "Progress", "Ringing", "Set", "Wait"}
APPLICATION_MODULES = {"Dial": "app_dial", "Echo": "app_echo", "Playback": "app_playback", "Stasis": "app_stasis"}
FUNCTION_MODULES = {"CALLERID": "func_callerid", "CHANNEL": "func_channel"}


# --------------------------------------------------------------------------------------------
# A small Asterisk config parser: [section](template,!) with key = value / key => value lines,
# ';' comments ('\;' is a literal ';'), ';-- --;' block comments, #include and #tryinclude.
# --------------------------------------------------------------------------------------------


class AsteriskConfigError(ValueError):
    pass


@dataclass
class Section:
    name: str
    options: list[tuple[str, str]] = field(default_factory=list)
    templates: tuple[str, ...] = ()
    is_template: bool = False

    def values(self, key: str) -> list[str]:
        return [value for name, value in self.options if name == key]

    def get(self, key: str) -> str | None:
        values = self.values(key)
        return values[-1] if values else None


_SECTION_HEADER = re.compile(r"^\[([^\]]+)\](?:\(([^)]*)\))?$")


def _strip_comments(line: str, in_block: bool) -> tuple[str, bool]:
    kept: list[str] = []
    i = 0
    while i < len(line):
        if in_block:
            end = line.find("--;", i)
            if end < 0:
                return "".join(kept), True
            i, in_block = end + 3, False
        elif line.startswith(";--", i):
            i, in_block = i + 3, True
        elif line.startswith("\\;", i):
            kept.append(";")
            i += 2
        elif line[i] == ";":
            break
        else:
            kept.append(line[i])
            i += 1
    return "".join(kept), in_block


def _resolve_include(name: str, including_file: Path, mounts: Mapping[str, Path]) -> Path:
    if not name.startswith("/"):
        return including_file.parent / name
    for container_dir, local_dir in mounts.items():
        if name.startswith(container_dir + "/"):
            return local_dir / name[len(container_dir) + 1 :]
    raise AsteriskConfigError(f"{including_file}: no local directory for the absolute #include {name}")


def _parse_into(path: Path, sections: list[Section], mounts: Mapping[str, Path]) -> None:
    in_block = False
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        where = f"{path.name}:{number}"
        line, in_block = _strip_comments(raw, in_block)
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            directive, _, argument = line.partition(" ")
            argument = argument.strip().strip('"')
            if directive not in ("#include", "#tryinclude"):
                raise AsteriskConfigError(f"{where}: unsupported directive {directive}")
            target = _resolve_include(argument, path, mounts)
            if target.is_file():
                # Asterisk continues the current section in the included file.
                _parse_into(target, sections, mounts)
            elif directive == "#include":
                raise AsteriskConfigError(f"{where}: #include {argument}: no such file")
            continue
        header = _SECTION_HEADER.match(line)
        if header:
            flags = [f.strip() for f in (header.group(2) or "").split(",") if f.strip()]
            sections.append(
                Section(
                    name=header.group(1).strip(),
                    templates=tuple(f for f in flags if f != "!"),
                    is_template="!" in flags,
                )
            )
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            raise AsteriskConfigError(f"{where}: expected 'key = value', got {raw!r}")
        if not sections:
            raise AsteriskConfigError(f"{where}: {key.strip()!r} comes before any [section]")
        sections[-1].options.append((key.strip(), value.removeprefix(">").strip()))


def parse_asterisk_config(path: Path, mounts: Mapping[str, Path] | None = None) -> list[Section]:
    """The sections of an Asterisk config file, templates applied; template sections left out."""
    sections: list[Section] = []
    _parse_into(path, sections, mounts or {})
    templates: dict[str, Section] = {}
    result: list[Section] = []
    for section in sections:
        inherited: list[tuple[str, str]] = []
        for name in section.templates:
            if name not in templates:
                raise AsteriskConfigError(f"{path.name}: [{section.name}] uses undefined template {name!r}")
            inherited += templates[name].options
        section.options = inherited + section.options
        if section.is_template:
            templates[section.name] = section
        else:
            result.append(section)
    return result


def only_section(sections: list[Section], name: str, type_: str | None = None) -> Section:
    found = [s for s in sections if s.name == name and (type_ is None or s.get("type") == type_)]
    assert len(found) == 1, f"expected one [{name}]{f' of type {type_}' if type_ else ''}, found {len(found)}"
    return found[0]


# --------------------------------------------------------------------------------------------
# pjsip objects as res_pjsip loads them: which ones it drops, and what they refer to.
# --------------------------------------------------------------------------------------------

# Options that name another pjsip object, and the type that object must have.
PJSIP_REFERENCES = {
    "endpoint": {"transport": "transport", "aors": "aor", "auth": "auth", "outbound_auth": "auth"},
    "registration": {"transport": "transport", "outbound_auth": "auth", "endpoint": "endpoint"},
    "identify": {"endpoint": "endpoint"},
}


def references(section: Section) -> list[tuple[str, str, str]]:
    """(option, type, name) of every object the section names."""
    found = []
    for option, type_ in PJSIP_REFERENCES.get(section.get("type") or "", {}).items():
        for value in section.values(option):
            found += [(option, type_, name.strip()) for name in value.split(",") if name.strip()]
    return found


def is_address_or_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def why_dropped_at_load(section: Section) -> str | None:
    """Why res_pjsip refuses this object on its own, whatever DNS says at the moment, or None."""
    if section.get("type") == "auth" and not (section.get("password") or section.get("md5_cred")):
        # Asterisk 22: "No plain text or digest password found for algorithm MD5".
        return "an auth without a password"
    if section.get("type") == "identify":
        names = [m.strip() for value in section.values("match") for m in value.split(",") if m.strip()]
        if not names:
            return "an identify that matches nothing"
        hostnames = [m for m in names if not is_address_or_network(m)]
        if hostnames:
            # Resolved once, at load: a name that does not resolve then drops the whole object.
            return f"an identify matching host names {hostnames}, which may not resolve at boot"
    return None


def loaded_pjsip_objects(sections: list[Section]) -> tuple[set[tuple[str, str]], list[str]]:
    """The (type, name) objects that survive loading, and why each other one was dropped.

    An object that names a dropped or missing one is dropped in turn, as the trunk endpoint was
    with its password-less auth.
    """
    objects = [s for s in sections if s.get("type")]
    dropped = {(s.get("type"), s.name): why for s in objects if (why := why_dropped_at_load(s))}
    changed = True
    while changed:
        changed = False
        present = {(s.get("type"), s.name) for s in objects} - dropped.keys()
        for section in objects:
            key = (section.get("type"), section.name)
            if key in dropped:
                continue
            for option, type_, name in references(section):
                if (type_, name) not in present:
                    dropped[key] = f"{option} = {name}: no such {type_}"
                    changed = True
                    break
    reasons = [f"{type_} {name}: {why}" for (type_, name), why in dropped.items()]
    return {(s.get("type"), s.name) for s in objects} - dropped.keys(), reasons


# --------------------------------------------------------------------------------------------
# The dialplan: extensions.conf as contexts of extensions, and a walk through one call.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    application: str
    arguments: str


def load_dialplan(sections: list[Section]) -> dict[str, dict[str, list[Step]]]:
    contexts: dict[str, dict[str, list[Step]]] = {}
    for section in sections:
        if section.name in ("general", "globals"):
            continue
        extensions = contexts.setdefault(section.name, {})
        current: str | None = None
        for key, value in section.options:
            if key == "exten":
                current, priority, action = (part.strip() for part in value.split(",", 2))
                if extensions.get(current) or not priority.startswith("1"):
                    raise AsteriskConfigError(f"[{section.name}] {current}: must start once, at priority 1")
                extensions[current] = []
            elif key == "same":
                priority, action = (part.strip() for part in value.split(",", 1))
                if current is None or not priority.startswith("n"):
                    raise AsteriskConfigError(f"[{section.name}] 'same => {value}' needs a preceding exten")
            else:
                raise AsteriskConfigError(f"[{section.name}] unexpected {key!r}")
            application, _, arguments = action.partition("(")
            extensions[current].append(Step(application.strip(), arguments.removesuffix(")")))
    return contexts


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    if not pattern.startswith("_"):
        return re.compile(re.escape(pattern))
    regex, rest = [], pattern[1:]
    classes = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}
    i = 0
    while i < len(rest):
        char = rest[i]
        if char == "[":
            end = rest.index("]", i)
            regex.append("[" + rest[i + 1 : end].replace("\\", "\\\\").replace("^", "\\^") + "]")
            i = end
        else:
            regex.append(classes.get(char.upper(), re.escape(char)))
        i += 1
    return re.compile("".join(regex))


def _substitute(text: str, exten: str) -> str:
    def expand(match: re.Match[str]) -> str:
        offset, length = int(match.group(1) or 0), match.group(2)
        return exten[offset:] if length is None else exten[offset : offset + int(length)]

    return re.sub(r"\$\{EXTEN(?::(\d+))?(?::(\d+))?\}", expand, text)


def run_call(dialplan: dict[str, dict[str, list[Step]]], context: str, exten: str) -> list[Step] | None:
    """The steps a call to exten runs (${EXTEN} expanded, Goto followed), or None when no extension matches.

    Like Asterisk, an extension written out beats a pattern that also matches.
    """
    extensions = dialplan[context]
    if exten in extensions:
        steps = extensions[exten]
    else:
        matching = [p for p in extensions if p.startswith("_") and _pattern_regex(p).fullmatch(exten)]
        if not matching:
            return None
        assert len(matching) == 1, f"[{context}] {exten!r} matches several patterns: {matching}"
        steps = extensions[matching[0]]
    ran = []
    for step in steps:
        step = Step(step.application, _substitute(step.arguments, exten))
        ran.append(step)
        if step.application == "Goto":
            target = [part.strip() for part in step.arguments.split(",")]
            if len(target) != 3 or target[2] != "1":
                raise AsteriskConfigError(f"[{context}] {exten}: only Goto(context,exten,1) is followed, not {step}")
            then = run_call(dialplan, target[0], target[1])
            if then is None:
                raise AsteriskConfigError(f"[{context}] {exten}: Goto({step.arguments}) leads nowhere")
            return ran + then
    return ran


# --------------------------------------------------------------------------------------------
# Compose: variable interpolation as Compose does it, and each container's environment.
# --------------------------------------------------------------------------------------------


class ComposeInterpolationError(ValueError):
    pass


# Like Compose, a braced variable ends at the first '}' (a default cannot contain braces).
_COMPOSE_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("bare")
        value, op, arg = env.get(name), match.group("op"), match.group("arg")
        missing = value is None or (value == "" and op is not None and op.startswith(":"))
        if missing and op in ("-", ":-"):
            return arg
        if missing and op in ("?", ":?"):
            raise ComposeInterpolationError(f"{name}: {arg}")
        return value or ""

    return _COMPOSE_VARIABLE.sub(replace, text)


def container_environment(service: dict, dotenv: Mapping[str, str]) -> dict[str, str]:
    """A service's environment as the container sees it: unresolved bare entries are left out."""
    environment = service.get("environment") or {}
    assert isinstance(environment, dict), "environment should be a mapping"
    resolved = {}
    for name, value in environment.items():
        if value is None:
            if name in dotenv:
                resolved[name] = dotenv[name]
        else:
            resolved[name] = interpolate(str(value), dotenv)
    return resolved


def app_settings(environment: Mapping[str, str]) -> Settings:
    """The settings the app starts with in its container: that environment over the defaults."""
    fields = {name.removeprefix("HOLDSLAYER_").lower(): value for name, value in environment.items()}
    # model_validate reads neither os.environ nor .env, only what it is given.
    return Settings.model_validate(fields)


# --------------------------------------------------------------------------------------------
# Dockerfiles: instructions with continuation lines joined.
# --------------------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    instructions, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1]
            continue
        keyword, _, rest = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def dockerfile_arg(instructions: list[tuple[str, str]], name: str) -> str:
    for keyword, rest in instructions:
        arg_name, _, value = rest.partition("=")
        if keyword == "ARG" and arg_name == name:
            return value.strip().strip('"')
    raise AssertionError(f"no ARG {name} in the Dockerfile")


def port_range(spec: str) -> range:
    first, _, last = spec.partition("-")
    return range(int(first), int(last or first) + 1)


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@dataclass
class Deployment:
    compose: dict
    asterisk_env: dict[str, str]
    app_env: dict[str, str]
    secrets_dir: Path

    @property
    def settings(self) -> Settings:
        return app_settings(self.app_env)

    def conf(self, name: str) -> list[Section]:
        return rendered_conf(name, self.secrets_dir)


def run_entrypoint(
    environment: Mapping[str, str], secrets_dir: Path, path: str = "/usr/local/bin:/usr/bin:/bin"
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, **environment, "ASTERISK_SECRETS_DIR": str(secrets_dir)}
    return subprocess.run(["sh", str(ENTRYPOINT), "true"], env=env, capture_output=True, text=True, timeout=30)


def rendered_conf(name: str, secrets_dir: Path) -> list[Section]:
    """A config file as Asterisk reads it once the entrypoint has written into secrets_dir."""
    return parse_asterisk_config(CONF_DIR / name, {SECRETS_DIR_IN_CONTAINER: secrets_dir})


def render_pjsip(environment: Mapping[str, str], secrets_dir: Path) -> list[Section]:
    started = run_entrypoint(environment, secrets_dir)
    assert started.returncode == 0, started.stderr
    return rendered_conf("pjsip.conf", secrets_dir)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def deployment(compose, tmp_path_factory) -> Deployment:
    services = compose["services"]
    asterisk_env = container_environment(services["asterisk"], SAMPLE_DOTENV)
    secrets_dir = tmp_path_factory.mktemp("asterisk") / "secrets"
    started = run_entrypoint(asterisk_env, secrets_dir)
    assert started.returncode == 0, started.stderr
    return Deployment(compose, asterisk_env, container_environment(services["holdslayer"], SAMPLE_DOTENV), secrets_dir)


@pytest.fixture(scope="module")
def image() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def built_modules(image) -> set[str]:
    return set(dockerfile_arg(image, "ASTERISK_MODULES").split())


@pytest.fixture(scope="module")
def dialplan(deployment) -> dict[str, dict[str, list[Step]]]:
    return load_dialplan(deployment.conf("extensions.conf"))


def compose_spec_schema() -> dict:
    spec = importlib.util.find_spec("check_jsonschema")
    assert spec is not None and spec.origin, "install check-jsonschema: it ships the Compose Specification schema"
    path = Path(spec.origin).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------------
# The parser itself
# --------------------------------------------------------------------------------------------


def test_parser_reads_sections_templates_escapes_and_includes(tmp_path):
    (tmp_path / "secret.conf").write_text("password = a\\;b ; the rest is a comment\n")
    (tmp_path / "main.conf").write_text(
        "[base](!)\ncontext => from-user ;-- a block\ncomment --;\n\n"
        "[phone](base)\ntype=endpoint\nallow = ulaw\nallow = alaw\n#include secret.conf\n"
    )

    (phone,) = parse_asterisk_config(tmp_path / "main.conf")

    assert phone.name == "phone"
    assert phone.get("context") == "from-user"
    assert phone.values("allow") == ["ulaw", "alaw"]
    assert phone.get("password") == "a;b"


@pytest.mark.parametrize(
    "text",
    ["key = value\n", "[s]\njust words\n", "[s]\n#include missing.conf\n", "[s](nosuchtemplate)\n", "[s]\n#exec x\n"],
)
def test_parser_rejects_what_asterisk_would_not_load(tmp_path, text):
    (tmp_path / "bad.conf").write_text(text)
    with pytest.raises(AsteriskConfigError):
        parse_asterisk_config(tmp_path / "bad.conf")


@pytest.mark.parametrize("name", sorted(p.name for p in CONF_DIR.glob("*.conf")))
def test_every_config_file_parses(deployment, name):
    assert deployment.conf(name), f"{name} has no sections"


# --------------------------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification(compose):
    jsonschema.validators.validator_for(compose_spec_schema())(compose_spec_schema()).validate(compose)
    assert "version" not in compose, "the top-level version key is obsolete in the Compose Specification"


def test_compose_schema_catches_a_misspelled_key(compose):
    broken = json.loads(json.dumps(compose))
    broken["services"]["asterisk"]["netwrok_mode"] = broken["services"]["asterisk"].pop("network_mode")
    schema = compose_spec_schema()
    assert not jsonschema.validators.validator_for(schema)(schema).is_valid(broken)


def test_compose_refuses_to_start_without_the_secrets(compose):
    for missing in ("HOLDSLAYER_ARI_PASSWORD", "USERPHONE_PASSWORD", "TRUNK_HOST"):
        dotenv = {k: v for k, v in SAMPLE_DOTENV.items() if k != missing}
        with pytest.raises(ComposeInterpolationError, match=missing):
            for service in compose["services"].values():
                container_environment(service, dotenv)


def test_asterisk_service_builds_the_pbx_image_and_waits_for_a_full_boot(compose):
    asterisk = compose["services"]["asterisk"]
    assert (REPO / asterisk["build"] / "Dockerfile").is_file()
    assert asterisk["network_mode"] == "host"
    assert asterisk["restart"] == "unless-stopped"
    test = asterisk["healthcheck"]["test"]
    command = test[1] if test[0] == "CMD-SHELL" else shlex.join(test[1:])
    assert "asterisk -rx 'core show version'" in command and "waitfullybooted" in command
    mounts = {target: source for source, target, *_ in (v.split(":") for v in asterisk["volumes"])}
    assert (REPO / mounts["/etc/asterisk"]).resolve() == CONF_DIR


def test_app_service_runs_holdslayer_serve_after_asterisk_is_healthy(compose):
    app = compose["services"]["holdslayer"]
    assert app["network_mode"] == "host", "the app reaches ARI and receives RTP on the shared loopback"
    assert app["depends_on"]["asterisk"]["condition"] == "service_healthy"
    assert app["restart"] == "unless-stopped"
    inline = dockerfile_instructions(app["build"]["dockerfile_inline"])
    assert inline[0] == ("FROM", "python:3.11-slim-bookworm")
    assert json.loads(dict(inline)["CMD"]) == ["holdslayer", "serve"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "holdslayer" in scripts
    context = REPO / app["build"]["context"]
    for keyword, rest in inline:
        if keyword == "COPY":
            *sources, _ = rest.split()
            assert all((context / source).exists() for source in sources), f"COPY {rest}: missing source"


def test_app_data_lives_in_volumes(deployment):
    app = deployment.compose["services"]["holdslayer"]
    workdir = PurePosixPath(dict(dockerfile_instructions(app["build"]["dockerfile_inline"]))["WORKDIR"])
    targets = [PurePosixPath(v.split(":")[1]) for v in app["volumes"]]
    database = PurePosixPath(deployment.settings.database_url.removeprefix("sqlite:///"))
    for path in (deployment.settings.flows_dir, deployment.settings.recordings_dir, database):
        in_container = workdir / path
        assert any(in_container.is_relative_to(t) for t in targets), f"{in_container} is not in a volume"


def test_app_environment_names_are_settings(compose):
    for name in compose["services"]["holdslayer"]["environment"]:
        assert name.startswith("HOLDSLAYER_") and name.removeprefix("HOLDSLAYER_").lower() in Settings.model_fields


def test_postgres_runs_only_in_its_profile(compose):
    assert compose["services"]["postgres"]["profiles"] == ["postgres"]
    assert "profiles" not in compose["services"]["asterisk"] and "profiles" not in compose["services"]["holdslayer"]


# --------------------------------------------------------------------------------------------
# The app and Asterisk agree
# --------------------------------------------------------------------------------------------


def test_ari_url_points_at_the_asterisk_http_server(deployment):
    http = only_section(deployment.conf("http.conf"), "general")
    url = urlsplit(deployment.settings.ari_url)
    assert http.get("enabled") == "yes"
    assert url.port == int(http.get("bindport"))
    assert url.path == "/" + "/".join(filter(None, [http.get("prefix"), "ari"]))
    bindaddr = ipaddress.ip_address(http.get("bindaddr"))
    assert bindaddr.is_unspecified or ipaddress.ip_address(url.hostname) == bindaddr


def test_ari_login_is_the_one_the_app_uses(deployment):
    settings = deployment.settings
    ari = deployment.conf("ari.conf")
    assert only_section(ari, "general").get("enabled") == "yes"
    user = only_section(ari, settings.ari_user)
    assert user.get("type") == "user"
    assert user.get("read_only") == "no", "the app creates channels, bridges and recordings"
    assert user.get("password_format") == "plain"
    assert user.get("password") == settings.ari_password == SAMPLE_DOTENV["HOLDSLAYER_ARI_PASSWORD"]


def test_ari_accepts_the_dashboard_origin(deployment):
    settings = deployment.settings
    origins = only_section(deployment.conf("ari.conf"), "general").get("allowed_origins").split(",")
    assert f"http://{settings.api_host}:{settings.api_port}" in [o.strip() for o in origins]


def test_devices_and_dial_string_template_name_configured_endpoints(deployment):
    settings = deployment.settings
    pjsip = deployment.conf("pjsip.conf")
    dial_strings = [*settings.user_devices.values(), settings.dial_string("18005551234")]
    for dial_string in dial_strings:
        technology, _, resource = dial_string.partition("/")
        assert technology == "PJSIP"
        endpoint = only_section(pjsip, resource.rpartition("@")[2], "endpoint")
        for aor in endpoint.get("aors").split(","):
            only_section(pjsip, aor.strip(), "aor")
    assert "PJSIP/userphone" in settings.user_devices.values()


def test_user_phone_endpoint(deployment):
    pjsip = deployment.conf("pjsip.conf")
    phone = only_section(pjsip, "userphone", "endpoint")
    assert phone.values("disallow") == ["all"] and phone.get("allow").split(",") == ["ulaw", "alaw"]
    for option in ("rtp_symmetric", "force_rport", "rewrite_contact"):
        assert phone.get(option) == "yes", option
    assert phone.get("direct_media") == "no", "media must flow through Asterisk"
    auth = only_section(pjsip, phone.get("auth"), "auth")
    assert auth.get("username") == "userphone"
    assert auth.get("password") == SAMPLE_DOTENV["USERPHONE_PASSWORD"]
    assert only_section(pjsip, phone.get("aors"), "aor").get("max_contacts") == "1"
    only_section(pjsip, phone.get("transport"), "transport")


def test_trunk_with_a_password_authenticates_registers_and_is_identified(deployment):
    pjsip = deployment.conf("pjsip.conf")
    trunk = only_section(pjsip, "trunk", "endpoint")
    auth = only_section(pjsip, trunk.get("outbound_auth"), "auth")
    assert (auth.get("username"), auth.get("password")) == (SAMPLE_DOTENV["TRUNK_USER"], SAMPLE_DOTENV["TRUNK_PASSWORD"])
    host = SAMPLE_DOTENV["TRUNK_HOST"]
    assert only_section(pjsip, trunk.get("aors"), "aor").get("contact") == f"sip:{host}"
    registration = only_section(pjsip, "trunk", "registration")
    assert registration.get("outbound_auth") == trunk.get("outbound_auth")
    assert registration.get("server_uri") == f"sip:{host}"
    assert registration.get("client_uri") == f"sip:{SAMPLE_DOTENV['TRUNK_USER']}@{host}"
    assert (registration.get("line"), registration.get("endpoint")) == ("yes", "trunk")
    identify = only_section(pjsip, "trunk", "identify")
    assert (identify.get("endpoint"), identify.values("match")) == ("trunk", [host])
    assert trunk.get("from_user") == SAMPLE_DOTENV["TRUNK_USER"] and trunk.get("from_domain") == host
    assert trunk.get("direct_media") == "no"


def test_every_endpoint_context_exists(deployment, dialplan):
    for section in deployment.conf("pjsip.conf"):
        if section.get("type") == "endpoint":
            assert section.get("context") in dialplan, section.name


def test_entrypoint_and_image_agree_on_the_secrets_directory(image):
    assert f"${{ASTERISK_SECRETS_DIR:-{SECRETS_DIR_IN_CONTAINER}}}" in ENTRYPOINT.read_text()
    assert any(k == "RUN" and SECRETS_DIR_IN_CONTAINER in rest for k, rest in image)


def test_entrypoint_refuses_missing_or_multiline_secrets(tmp_path):
    without_phone = {"ARI_PASSWORD": "x"}
    failed = run_entrypoint(without_phone, tmp_path / "a")
    assert failed.returncode != 0 and "USERPHONE_PASSWORD" in failed.stderr

    injected = IP_TRUNK_ENV | {"ARI_PASSWORD": "x\n[evil]"}
    failed = run_entrypoint(injected, tmp_path / "b")
    assert failed.returncode != 0 and "ARI_PASSWORD" in failed.stderr
    assert not (tmp_path / "b" / "ari_password.conf").exists()


# --------------------------------------------------------------------------------------------
# The trunk as the entrypoint renders it from the environment
# --------------------------------------------------------------------------------------------

TRUNK_MODES = {
    "digest and registration": SAMPLE_DOTENV | {"ARI_PASSWORD": "x"},
    "digest, no registration": SAMPLE_DOTENV | {"ARI_PASSWORD": "x", "TRUNK_REGISTER": "no"},
    "IP-authenticated": IP_TRUNK_ENV,
    "IP-authenticated with a caller ID and more addresses": IP_TRUNK_ENV
    | {"TRUNK_CALLERID": "+15551230000", "TRUNK_MATCH": "203.0.113.0/24, 2001:db8::/32"},
}


@pytest.mark.parametrize("mode", TRUNK_MODES)
def test_every_pjsip_object_survives_loading(tmp_path, mode):
    pjsip = render_pjsip(TRUNK_MODES[mode], tmp_path)

    loaded, dropped = loaded_pjsip_objects(pjsip)

    assert dropped == []
    assert {("endpoint", "trunk"), ("aor", "trunk"), ("identify", "trunk"), ("endpoint", "userphone")} <= loaded


def test_load_model_drops_an_endpoint_whose_auth_has_no_password():
    # What the shipped configs did with an empty TRUNK_PASSWORD, and a hostname in identify.
    auth = Section("trunk", [("type", "auth"), ("username", "u")])
    endpoint = Section("trunk", [("type", "endpoint"), ("outbound_auth", "trunk"), ("aors", "trunk")])
    aor = Section("trunk", [("type", "aor"), ("contact", "sip:sip.example.com")])
    identify = Section("trunk", [("type", "identify"), ("endpoint", "trunk"), ("match", "sip.example.com")])

    loaded, dropped = loaded_pjsip_objects([auth, endpoint, aor, identify])

    assert loaded == {("aor", "trunk")}
    assert len(dropped) == 3 and any("without a password" in why for why in dropped)


def test_trunk_without_a_password_has_no_auth_and_no_registration(tmp_path):
    pjsip = render_pjsip(IP_TRUNK_ENV, tmp_path)

    trunk = only_section(pjsip, "trunk", "endpoint")
    assert trunk.get("outbound_auth") is None and trunk.get("auth") is None
    assert not [s for s in pjsip if s.get("type") in ("auth", "registration") and s.name == "trunk"]
    assert only_section(pjsip, "trunk", "aor").get("contact") == f"sip:{IP_TRUNK_ENV['TRUNK_HOST']}"
    assert only_section(pjsip, "trunk", "identify").values("match") == [IP_TRUNK_ENV["TRUNK_HOST"]]
    # Nothing from the account is left in a file, as there is no account.
    assert "password" not in (tmp_path / "trunk.conf").read_text()


def test_trunk_with_a_password_need_not_register(tmp_path):
    pjsip = render_pjsip(TRUNK_MODES["digest, no registration"], tmp_path)

    assert only_section(pjsip, "trunk", "endpoint").get("outbound_auth") == "trunk"
    only_section(pjsip, "trunk", "auth")
    assert not [s for s in pjsip if s.get("type") == "registration"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"TRUNK_HOST": ""}, "TRUNK_HOST"),
        ({"TRUNK_HOST": "sip.example.com\n[evil]"}, "TRUNK_HOST"),
        ({"TRUNK_HOST": "sip.example.com;x"}, "TRUNK_HOST"),
        ({"TRUNK_REGISTER": "yes"}, "TRUNK_REGISTER"),
        ({"TRUNK_REGISTER": "maybe"}, "TRUNK_REGISTER"),
        ({"TRUNK_PASSWORD": "secret"}, "TRUNK_USER"),
        ({"TRUNK_USER": "me@example.com"}, "TRUNK_USER"),
        ({"TRUNK_PORT": "70000"}, "TRUNK_PORT"),
        ({"TRUNK_CALLERID": "Alex; Smith <+15551230000>"}, "TRUNK_CALLERID"),
        ({"TRUNK_CALLERID": "call me"}, "TRUNK_CALLERID"),
        ({"TRUNK_MATCH": "203.0.113.7, sip.example.com"}, "TRUNK_MATCH"),
        ({"SIP_PUBLIC_ADDRESS": "myhost.example.com"}, "SIP_PUBLIC_ADDRESS"),
        ({"TRUNK_RESOLVE_TIMEOUT": "soon"}, "TRUNK_RESOLVE_TIMEOUT"),
    ],
)
def test_entrypoint_refuses_bad_trunk_settings_by_name(tmp_path, change, named):
    failed = run_entrypoint(IP_TRUNK_ENV | change, tmp_path)

    assert failed.returncode != 0
    assert named in failed.stderr
    assert not (tmp_path / "trunk.conf").exists(), "nothing half-written"


def test_identify_matches_the_resolved_addresses_never_the_host_name(tmp_path):
    # localhost resolves through /etc/hosts: the name is resolved here, with no DNS server.
    pjsip = render_pjsip(IP_TRUNK_ENV | {"TRUNK_HOST": "localhost", "TRUNK_MATCH": "203.0.113.0/24"}, tmp_path)

    matches = only_section(pjsip, "trunk", "identify").values("match")
    assert "127.0.0.1" in matches and "203.0.113.0/24" in matches
    assert all(is_address_or_network(m) for m in matches), matches
    # Calls still go to the name: pjsip resolves an aor's contact when it sends, not at load.
    assert only_section(pjsip, "trunk", "aor").get("contact") == "sip:localhost"


def test_a_host_that_never_resolves_stops_the_container_in_bounded_time(tmp_path):
    environment = IP_TRUNK_ENV | {"TRUNK_HOST": "sip.provider.invalid", "TRUNK_RESOLVE_TIMEOUT": "1"}

    began = time.monotonic()
    failed = run_entrypoint(environment, tmp_path)
    took = time.monotonic() - began

    assert failed.returncode != 0
    assert "TRUNK_HOST=sip.provider.invalid does not resolve" in failed.stderr
    assert took < 10, f"took {took:.1f} s"
    assert not (tmp_path / "trunk.conf").exists()


def test_a_host_that_resolves_late_is_waited_for(tmp_path):
    # DNS that comes up after the container: a getent that fails twice, then answers.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    tries = tmp_path / "tries"
    (fake_bin / "getent").write_text(
        "#!/bin/sh\n"
        '[ "$1" = ahosts ] || exec /usr/bin/getent "$@"\n'
        f'echo try >> "{tries}"\n'
        f'[ "$(wc -l < "{tries}")" -ge 3 ] || exit 2\n'
        'echo "192.0.2.7       STREAM $2"\necho "192.0.2.7       DGRAM"\n'
        'echo "192.0.2.8       STREAM"\n'
    )
    (fake_bin / "getent").chmod(0o755)
    environment = IP_TRUNK_ENV | {"TRUNK_HOST": "sip.example.com", "TRUNK_RESOLVE_TIMEOUT": "10"}

    started = run_entrypoint(environment, tmp_path / "out", path=f"{fake_bin}:/usr/bin:/bin")

    assert started.returncode == 0, started.stderr
    assert len(tries.read_text().splitlines()) >= 3
    identify = only_section(rendered_conf("pjsip.conf", tmp_path / "out"), "trunk", "identify")
    assert identify.values("match") == ["192.0.2.7", "192.0.2.8"]


def test_caller_id_goes_on_the_trunk_and_into_the_dialplan_globals(deployment):
    trunk = only_section(deployment.conf("pjsip.conf"), "trunk", "endpoint")
    assert trunk.get("callerid") == '"Alex Smith" <+15551230000>'
    assert trunk.get("send_pai") == "yes"
    globals_ = only_section(deployment.conf("extensions.conf"), "globals")
    assert globals_.get("TRUNK_CALLERID_NUM") == "+15551230000"
    assert globals_.get("TRUNK_CALLERID_NAME") == "Alex Smith"


@pytest.mark.parametrize(
    ("written", "callerid"),
    [
        ('"Alex Smith" <+15551230000>', '"Alex Smith" <+15551230000>'),
        ("Alex Smith <+15551230000>", '"Alex Smith" <+15551230000>'),
        ("<15551230000>", "<15551230000>"),
        ("+15551230000", "<+15551230000>"),
    ],
)
def test_caller_id_forms(tmp_path, written, callerid):
    pjsip = render_pjsip(IP_TRUNK_ENV | {"TRUNK_CALLERID": written}, tmp_path)

    assert only_section(pjsip, "trunk", "endpoint").get("callerid") == callerid


def test_ip_trunk_without_a_user_sends_the_caller_id_number_as_from_user(tmp_path):
    pjsip = render_pjsip(IP_TRUNK_ENV | {"TRUNK_CALLERID": "+15551230000"}, tmp_path)

    trunk = only_section(pjsip, "trunk", "endpoint")
    assert (trunk.get("from_user"), trunk.get("callerid")) == ("+15551230000", "<+15551230000>")


def test_nat_settings_only_with_a_public_address(tmp_path):
    plain = only_section(render_pjsip(IP_TRUNK_ENV, tmp_path / "a"), "transport-udp", "transport")
    assert plain.get("external_media_address") is None and plain.get("local_net") is None

    natted = only_section(
        render_pjsip(IP_TRUNK_ENV | {"SIP_PUBLIC_ADDRESS": "203.0.113.10"}, tmp_path / "b"), "transport-udp", "transport"
    )
    assert natted.get("external_media_address") == natted.get("external_signaling_address") == "203.0.113.10"
    # The phone on the LAN must keep getting the host's own address.
    assert "192.168.0.0/16" in natted.values("local_net")


# Which module serves a pjsip object type or option the configs use.
PJSIP_MODULES = {
    ("identify", None): "res_pjsip_endpoint_identifier_ip",
    ("registration", None): "res_pjsip_outbound_registration",
    ("endpoint", "outbound_auth"): "res_pjsip_outbound_authenticator_digest",
    ("endpoint", "auth"): "res_pjsip_authenticator_digest",
    ("endpoint", "send_pai"): "res_pjsip_caller_id",
    ("endpoint", "callerid"): "res_pjsip_caller_id",
    ("endpoint", "rewrite_contact"): "res_pjsip_nat",
    ("aor", "max_contacts"): "res_pjsip_registrar",
}


@pytest.mark.parametrize("mode", TRUNK_MODES)
def test_image_builds_and_loads_the_pjsip_modules_the_configs_use(tmp_path, mode, built_modules):
    pjsip = render_pjsip(TRUNK_MODES[mode], tmp_path)
    noload = {v.removesuffix(".so") for v in only_section(rendered_conf("modules.conf", tmp_path), "modules").values("noload")}

    used = {
        module
        for section in pjsip
        for (type_, option), module in PJSIP_MODULES.items()
        if section.get("type") == type_ and (option is None or section.get(option) is not None)
    }

    assert "res_pjsip_endpoint_identifier_ip" in used
    assert used <= built_modules - noload, sorted(used - (built_modules - noload))


# --------------------------------------------------------------------------------------------
# The dialplan
# --------------------------------------------------------------------------------------------


def test_dial_in_prefix_hands_the_number_to_the_stasis_app(deployment, dialplan):
    phone_context = only_section(deployment.conf("pjsip.conf"), "userphone", "endpoint").get("context")
    steps = run_call(dialplan, phone_context, "*718005551234")
    assert steps is not None
    stasis = [s for s in steps if s.application == "Stasis"]
    assert stasis == [Step("Stasis", f"{deployment.settings.ari_app},dial,18005551234")]
    assert steps[0].application != "Answer", "the app answers the channel itself (capture d: state Ring)"


def test_dial_in_matches_capture_d(deployment, dialplan):
    capture_dir = next((d for d in CAPTURE_DIRS if (d / "d-sip-dial-in.summary.json").is_file()), None)
    if capture_dir is None:
        pytest.skip("captures not found")
    channel = json.loads((capture_dir / "d-sip-dial-in.summary.json").read_text())["stasis_start_channel"]
    phone = only_section(deployment.conf("pjsip.conf"), "userphone", "endpoint")
    assert phone.get("context") == channel["dialplan"]["context"]
    assert phone.get("callerid") == f'"{channel["caller"]["name"]}" <{channel["caller"]["number"]}>'
    steps = run_call(dialplan, phone.get("context"), "*7" + channel["dialplan"]["exten"])
    assert [s.arguments for s in steps if s.application == "Stasis"] == [channel["dialplan"]["app_data"]]


def test_phone_reaches_the_app_only_through_the_prefix(deployment, dialplan):
    phone_context = only_section(deployment.conf("pjsip.conf"), "userphone", "endpoint").get("context")
    assert run_call(dialplan, phone_context, "18005551234") is None
    assert run_call(dialplan, phone_context, "*7") is None, "no number, nothing to call"


@pytest.mark.parametrize("exten", ["15551230000", "+15551230000", "s"])
def test_calls_from_the_provider_are_rejected(deployment, dialplan, exten):
    trunk_context = only_section(deployment.conf("pjsip.conf"), "trunk", "endpoint").get("context")
    steps = run_call(dialplan, trunk_context, exten)
    assert steps is not None and steps[-1].application == "Hangup"
    assert not {"Stasis", "Dial", "Answer"} & {s.application for s in steps}


def trunk_endpoint_of_the_app(settings: Settings) -> str:
    """The endpoint the app's dial string template sends companies' calls to ("trunk")."""
    return settings.dial_string("18005551234").rpartition("@")[2]


@pytest.mark.parametrize("dialled", [f"{prefix}{code}" for code in EMERGENCY_NUMBERS for prefix in ("", "*7")])
def test_emergency_numbers_go_straight_out_through_the_trunk(deployment, dialplan, dialled):
    pjsip = deployment.conf("pjsip.conf")
    phone_context = only_section(pjsip, "userphone", "endpoint").get("context")
    code = dialled.removeprefix("*7")
    trunk = trunk_endpoint_of_the_app(deployment.settings)
    only_section(pjsip, trunk, "endpoint")

    steps = run_call(dialplan, phone_context, dialled)

    assert steps is not None, f"{dialled}: no route (404 Not Found)"
    applications = [s.application for s in steps]
    assert "Stasis" not in applications, f"{dialled} reaches the app"
    # No timeout and no number rewriting: the code itself, as the emergency service expects it.
    assert [s for s in steps if s.application == "Dial"] == [Step("Dial", f"PJSIP/{code}@{trunk}")]
    # Your own number, not the phone's internal 2000, so that the emergency service can call back.
    caller_id = [s.arguments for s in steps[: applications.index("Dial")] if s.application == "Set"]
    assert caller_id == ["CALLERID(num)=${TRUNK_CALLERID_NUM}", "CALLERID(name)=${TRUNK_CALLERID_NAME}"]
    assert "TRUNK_CALLERID_NUM" in dict(only_section(deployment.conf("extensions.conf"), "globals").options)


def test_dialplan_emergency_list_is_the_apps(deployment, dialplan):
    phone_context = only_section(deployment.conf("pjsip.conf"), "userphone", "endpoint").get("context")
    trunk = trunk_endpoint_of_the_app(deployment.settings)
    routed_out = {
        exten
        for exten in dialplan[phone_context]
        if not exten.startswith("_")
        and any(s.application == "Dial" and s.arguments.endswith(f"@{trunk}") for s in run_call(dialplan, phone_context, exten))
    }

    assert routed_out == {prefix + code for code in EMERGENCY_NUMBERS for prefix in ("", "*7")}


def test_no_emergency_number_reaches_the_app_from_any_context(dialplan):
    for context in dialplan:
        for code in EMERGENCY_NUMBERS:
            for dialled in (code, "*7" + code):
                steps = run_call(dialplan, context, dialled) or []
                assert "Stasis" not in [s.application for s in steps], f"[{context}] {dialled}"


def test_every_stasis_call_uses_the_app_name(deployment, dialplan):
    for context in dialplan.values():
        for steps in context.values():
            for step in steps:
                if step.application == "Stasis":
                    assert step.arguments.split(",")[0] == deployment.settings.ari_app


def test_readme_quotes_what_the_call_says_to_a_person():
    # The legal section of the guide quotes the defaults; it must not drift from them.
    guide = " ".join((REPO / "README.md").read_text().split())
    defaults = Settings.model_validate({})
    assert f'"{defaults.human_greeting}"' in guide
    assert f'"{defaults.intro_text()}"' in guide


# --------------------------------------------------------------------------------------------
# The image has what the configs use
# --------------------------------------------------------------------------------------------


def test_image_is_asterisk_22_from_the_release_tarball_in_two_stages(image):
    bases = [rest.split()[0] for keyword, rest in image if keyword == "FROM"]
    assert len(bases) == 2 and all(base.startswith("debian:bookworm") for base in bases)
    assert dockerfile_arg(image, "ASTERISK_TARBALL").endswith("/asterisk-22-current.tar.gz")
    menuselect = next(rest for keyword, rest in image if keyword == "RUN" and "menuselect/menuselect" in rest)
    assert '--enable "$module"' in menuselect and "$ASTERISK_MODULES" in menuselect


def test_image_builds_the_modules_the_app_needs(built_modules):
    assert not REQUIRED_MODULES - built_modules, sorted(REQUIRED_MODULES - built_modules)


def test_dialplan_uses_only_built_applications_and_functions(dialplan, built_modules):
    for context in dialplan.values():
        for steps in context.values():
            for step in steps:
                if step.application not in CORE_APPLICATIONS:
                    assert APPLICATION_MODULES.get(step.application) in built_modules, step.application
    functions = set(re.findall(r"\$\{([A-Z_]+)\(", (CONF_DIR / "extensions.conf").read_text()))
    assert {FUNCTION_MODULES.get(f) for f in functions} <= built_modules, functions


def test_modules_conf_loads_every_needed_module(deployment, built_modules):
    modules = only_section(deployment.conf("modules.conf"), "modules")
    assert modules.get("autoload") == "yes"
    not_loaded = {name.removesuffix(".so") for name in modules.values("noload")}
    assert not not_loaded & (built_modules | REQUIRED_MODULES)


def test_rtp_ports_are_the_exposed_ones_and_clear_of_the_app_media_ports(deployment, image):
    rtp = only_section(deployment.conf("rtp.conf"), "general")
    rtp_ports = range(int(rtp.get("rtpstart")), int(rtp.get("rtpend")) + 1)
    assert (rtp_ports.start, rtp_ports.stop - 1) == (10000, 10099)
    exposed = [spec for keyword, rest in image if keyword == "EXPOSE" for spec in rest.split()]
    udp = [port_range(spec.removesuffix("/udp")) for spec in exposed if spec.endswith("/udp")]
    assert rtp_ports in udp
    transport = only_section(deployment.conf("pjsip.conf"), "transport-udp", "transport")
    assert any(int(transport.get("bind").rpartition(":")[2]) in ports for ports in udp)
    settings = deployment.settings
    app_ports = range(settings.media_port_min, settings.media_port_max + 1)
    assert not set(rtp_ports) & set(app_ports), "Asterisk and the app share the host's ports"


def test_music_on_hold_plays_the_installed_opsound_files(deployment, image):
    default = only_section(deployment.conf("musiconhold.conf"), "default")
    assert (default.get("mode"), default.get("directory")) == ("files", "moh")
    menuselect = next(rest for keyword, rest in image if keyword == "RUN" and "menuselect/menuselect" in rest)
    assert "--enable MOH-OPSOUND-ULAW" in menuselect and "--enable CORE-SOUNDS-EN-ULAW" in menuselect


def test_tone_zone_lets_asterisk_generate_ringback_and_busy(deployment):
    indications = deployment.conf("indications.conf")
    zone = only_section(indications, only_section(indications, "general").get("country"))
    assert zone.get("ring") and zone.get("ringcadence")
    # Capture c: the busy tone Asterisk generated on the externalMedia stream was 480+620 Hz.
    assert zone.get("busy").startswith("480+620/")


def test_asterisk_runs_as_the_user_the_image_creates(deployment, image):
    options = only_section(deployment.conf("asterisk.conf"), "options")
    useradd = next(
        part.split()
        for keyword, rest in image
        if keyword == "RUN"
        for part in rest.split("&&")
        if part.split() and part.split()[0] == "useradd"
    )
    assert options.get("runuser") == options.get("rungroup") == useradd[-1]
