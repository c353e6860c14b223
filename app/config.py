"""All Hold Slayer settings, in one place.

Values come from the environment (prefix ``HOLDSLAYER_``) or an optional ``.env`` file.
Nested values (the user devices) are given as JSON, e.g.
``HOLDSLAYER_USER_DEVICES='{"sip_phone": "PJSIP/userphone", "cell": "PJSIP/+15551234@trunk"}'``.
A bad value stops start-up with a message that names the setting (see ``load_settings``).
"""

from __future__ import annotations

from pathlib import Path

from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.devices import dial_string_problem, name_problem

DEFAULT_DATA_DIR = Path("data")


class SettingsError(ValueError):
    """Raised when configuration is invalid; the message names each bad setting."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HOLDSLAYER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    # --- Asterisk REST Interface ---
    ari_url: str = Field("http://127.0.0.1:8088/ari", description="Base URL of ARI, ending in /ari")
    ari_user: str = "holdslayer"
    ari_password: str = "holdslayer"
    ari_app: str = Field("holdslayer", description="Stasis application name")
    pbx_lost_timeout: float = Field(
        30.0, gt=0, le=3600, description="Live calls end (pbx_lost) after this many seconds with no ARI connection"
    )

    # --- dialling ---
    dial_string_template: str = Field(
        "PJSIP/{number}@trunk",
        description="Asterisk endpoint for the company; {number} is replaced by the digits to call",
    )
    # The user's devices seed the store's (app/devices.py, /api/devices) at start-up: on the first
    # start all of them, later what changed here since the last start (see Store.apply_device_settings).
    user_devices: dict[str, str] = Field(
        default_factory=lambda: {"sip_phone": "PJSIP/userphone"},
        description="User device name -> Asterisk dial string",
    )
    default_transfer_device: str = "sip_phone"
    dial_in_asks_intent: bool = Field(True, description="Dial-in: ask what the call is about and read it back")
    dial_in_question: str = "Hold Slayer. What is the call about?"
    blocked_numbers: list[str] = Field(
        default_factory=list,
        description="Numbers never dialled, besides the emergency numbers (911, 112, 999, 000, 110, 119) that never are",
    )
    dial_timeout: int = Field(60, ge=5, le=600, description="Seconds to let the company ring")
    user_answer_timeout: float = Field(30.0, gt=0, le=600, description="Seconds to let the user's phone ring")

    # --- media (externalMedia RTP) ---
    media_host: str = Field("127.0.0.1", description="Address Asterisk sends call audio to")
    media_port_min: int = Field(20000, ge=1024, le=65535)
    media_port_max: int = Field(20999, ge=1024, le=65535)

    # --- processes (holdslayer serve --workers N; README "More than one core or host") ---
    workers: int = Field(
        1, ge=1, le=64, description="Worker processes that run the calls (1: one process runs everything); more than 1 needs PostgreSQL"
    )
    worker_hung_seconds: float = Field(
        30.0,  # app.workers.WORKER_HUNG_SECONDS
        ge=3,
        le=3600,
        description="A worker process silent this long is hung: the front kills it (its calls end, worker_lost) and restarts it",
    )
    node: str = Field(
        "",
        pattern=r"^[a-z0-9_]{0,32}$",
        description="This host's name when several hosts (each its Asterisk and serve --workers N) share one database",
    )

    # --- storage ---
    database_url: str = "sqlite:///data/holdslayer.db"
    store_classification_windows: bool = Field(
        False, description="Also store every 0.5 s classification window as an event (debugging); normally segments only"
    )
    recordings_dir: Path = DEFAULT_DATA_DIR / "recordings"
    # Retention (app/retention.py): days after a call ends. 0 or empty keeps forever. A call's
    # recordings go with its record, so the shorter limit of the two applies to them.
    retain_calls_days: int | None = Field(
        365, ge=0, le=36500, description="Delete a call's record (events, transcript, classifications) this many days after it ended"
    )
    retain_recordings_days: int | None = Field(
        30, ge=0, le=36500, description="Delete a call's recording files this many days after it ended; its record stays"
    )
    flows_dir: Path = Path("flows")
    # Where a flow's SPEAK step finds ``prompt:NAME`` (app/media/sounds.py): by default where
    # Debian's asterisk-core-sounds-en-wav installs the Asterisk prompts. Read, never fetched.
    sounds_dir: Path = Path("/usr/share/asterisk/sounds/en_US_f_Allison")

    # --- hold ---
    max_hold_time: float = Field(7200.0, gt=0, description="Give up after this many seconds on hold")
    hold_check_interval: float = Field(2.0, gt=0, description="Seconds between hold progress checks")
    classifier_window_seconds: float = Field(3.0, gt=0.2, le=30.0)
    # The handoff (app/calls/handoff.py). Speech on hold that may be a person is greeted at once
    # (TTS; harmless if it was a recording) with a short opener, which a person answers and no
    # recording does, then the introduction (``{user}`` becomes ``user_name``). When words on hold
    # stop and nothing has decided, the probe asks.
    user_name: str = Field("a customer", min_length=1, max_length=80, description="who the introduction says we call for")
    human_greeting: str = Field("Hi, thanks for picking up!", min_length=1, max_length=200)
    human_intro: str = Field(
        "I'm an automated assistant calling for {user}; I'm connecting them now, one moment please.",
        min_length=1,
        max_length=300,
    )
    human_probe: bool = True
    human_probe_text: str = Field("Hello? Are you there?", min_length=1, max_length=200)
    human_hold_on_text: str = Field(
        "Thank you for waiting. I'm connecting them now, one moment please.", min_length=1, max_length=300
    )

    # --- menu navigation (LLM providers are optional; with no key the offline navigator decides) ---
    navigator: Literal["auto", "offline", "openai", "anthropic"] = "auto"
    openai_api_key: SecretStr | None = None
    anthropic_api_key: SecretStr | None = None
    openai_model: str = "gpt-4o-mini"
    anthropic_model: str = "claude-3-5-haiku-latest"
    openai_base_url: str | None = None
    anthropic_base_url: str | None = None
    llm_timeout: float = Field(10.0, gt=0, le=120)

    # --- speech-to-text (menus the navigator answers); without the provider's key: local Whisper ---
    stt_provider: Literal["local", "deepgram", "openai"] = "local"
    # A cloud recogniser that keeps the call waiting this long hands over to local Whisper.
    stt_timeout: float = Field(15.0, gt=0, le=120)
    deepgram_api_key: SecretStr | None = None
    whisper_model_path: Path | None = None  # a CTranslate2 Whisper directory; None: the bundled tiny.en
    whisper_model_size: str = "tiny.en"  # any other size needs whisper_model_path (nothing is downloaded)
    # --- text-to-speech (spoken menu answers, SPEAK steps); without an OpenAI key: local Piper ---
    tts_provider: Literal["piper", "openai"] = "piper"
    # --- a menu asks for data the user did not give: how long to wait for their answer (API) ---
    user_data_timeout: float = Field(120.0, gt=0, le=3600)

    # --- API ---
    api_host: str = "127.0.0.1"
    api_token: SecretStr | None = Field(
        None, description="Bearer token of the REST API, WebSocket, MCP and dashboard; required unless api_host is a loopback address"
    )
    # --- notifications ---
    notify_urls: list[str] = Field(
        default_factory=list, description="apprise URLs (mailto://, dbus://, twilio://, tgram://, ...): desktop, email, SMS, chat"
    )
    webhook_url: str | None = Field(None, description="POST each notification here as signed JSON")
    webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key of the webhook signature")
    notify_timeout_seconds: float = Field(60.0, gt=0, description="A channel slower than this is given up on")
    ws_heartbeat_seconds: float = Field(15.0, gt=0, le=300, description="A WebSocket client idle this long gets a heartbeat")
    ws_max_queued_events: int = Field(2000, ge=10, description="Events a WebSocket client may fall behind before it is dropped")
    api_port: int = Field(8000, ge=0, le=65535)

    @field_validator("dial_string_template")
    @classmethod
    def _template_has_number(cls, value: str) -> str:
        if "{number}" not in value:
            raise ValueError("must contain the placeholder {number}")
        if "/" not in value.split("{number}")[0] and "/" not in value:
            raise ValueError("must be an Asterisk dial string such as PJSIP/{number}@trunk")
        return value

    @field_validator("retain_calls_days", "retain_recordings_days", mode="before")
    @classmethod
    def _empty_keeps_forever(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("retain_calls_days", "retain_recordings_days")
    @classmethod
    def _zero_keeps_forever(cls, value: int | None) -> int | None:
        return value or None  # None: keep forever

    @field_validator("human_intro")
    @classmethod
    def _intro_placeholders(cls, value: str) -> str:
        try:
            value.format(user="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"the only placeholder is {{user}} ({exc})") from None
        return value

    @field_validator("ari_url")
    @classmethod
    def _ari_url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("user_devices")
    @classmethod
    def _devices_are_dial_strings(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("needs at least one device")
        for name, dial in value.items():
            problem = name_problem(name) or dial_string_problem(dial)
            if problem is not None:
                raise ValueError(f"device {name!r}: {problem}")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> "Settings":
        if self.media_port_min > self.media_port_max:
            raise ValueError("media_port_min must not exceed media_port_max")
        if (problem := workers_problem(self.workers, self.database_url, self.media_port_max - self.media_port_min + 1)) is not None:
            raise ValueError(problem)
        if self.default_transfer_device not in self.user_devices:
            raise ValueError(
                f"default_transfer_device {self.default_transfer_device!r} is not one of user_devices "
                f"({', '.join(sorted(self.user_devices))})"
            )
        return self

    def dial_string(self, number: str) -> str:
        return self.dial_string_template.format(number=number)

    def intro_text(self) -> str:
        """Who we are, said to a possible person right after the greeting."""
        return self.human_intro.format(user=self.user_name)


# RTP ports each process needs at the least: a call uses a few (hold bridge, snoop).
MIN_PORTS_PER_PROCESS = 8


def workers_problem(workers: int, database_url: str, media_ports: int) -> str | None:
    """Why ``workers`` worker processes cannot run with this database and port range (None: they can)."""
    if workers <= 1:
        return None
    if not database_url.startswith(("postgresql", "postgres")):
        return (
            f"HOLDSLAYER_WORKERS={workers} needs PostgreSQL as HOLDSLAYER_DATABASE_URL: the processes share its calls "
            "and its notifications (LISTEN/NOTIFY), and SQLite has no notifications and one writer at a time"
        )
    if media_ports < MIN_PORTS_PER_PROCESS * (workers + 1):
        return (
            f"HOLDSLAYER_MEDIA_PORT_MIN..MAX holds {media_ports} ports: {workers} workers and the front need at least "
            f"{MIN_PORTS_PER_PROCESS * (workers + 1)} (each gets a slice)"
        )
    return None


def for_worker(settings: Settings, index: int) -> Settings:
    """The settings of worker ``index`` (1..workers): its own Stasis application name (its own
    event websocket; the channels it creates report to it) and its own slice of the RTP ports.
    Slice 0 stays with the front (the dial-in's conversation)."""
    if not 1 <= index <= settings.workers:
        raise ValueError(f"worker index {index} is not within 1..{settings.workers}")
    low, high = media_slice(settings.media_port_min, settings.media_port_max, settings.workers + 1, index)
    return settings.model_copy(update={"ari_app": f"{settings.ari_app}-w{index}", "media_port_min": low, "media_port_max": high})


def media_slice(port_min: int, port_max: int, slices: int, index: int) -> tuple[int, int]:
    """Slice ``index`` of ``slices`` equal slices of the range (the last one takes the remainder)."""
    size = (port_max - port_min + 1) // slices
    low = port_min + index * size
    return low, (port_max if index == slices - 1 else low + size - 1)


def front_settings(settings: Settings) -> Settings:
    """The front's settings with worker processes: RTP ports from slice 0 only."""
    if settings.workers <= 1:
        return settings
    low, high = media_slice(settings.media_port_min, settings.media_port_max, settings.workers + 1, 0)
    return settings.model_copy(update={"media_port_min": low, "media_port_max": high})


def load_settings(**overrides) -> Settings:
    """Build settings, turning pydantic's error into one readable line per bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            if err["loc"]:
                lines.append(f"HOLDSLAYER_{loc.upper()}: {err['msg']} (got {err.get('input')!r})")
            else:  # a check across settings: its input is all of them, secrets included; not shown
                lines.append(f"settings: {err['msg'].removeprefix('Value error, ')}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None
