"""Settings from environment (`TIERWISE_*`), `.env` and `tierwise.toml` (or `$TIERWISE_CONFIG`).

Precedence, strongest first: explicit overrides, environment, `.env`, the TOML file, defaults.
Only pydantic and the standard library are imported here, so `tierwise --help` stays fast.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

EMBEDDED_MODEL = "tierwise-local/smollm2"
DEFAULT_TIER_NAMES = ("small", "medium", "large")


class ConfigError(Exception):
    """A configuration problem a person must fix; printed as one line per problem, exit status 2."""


class TierConfig(BaseModel):
    """One named tier: a litellm model string plus how to call it and what it costs."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    api_base: str | None = None
    api_key_env: str | None = None
    timeout: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=1, ge=0, le=10)
    fallbacks: list[str] = Field(default_factory=list)
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    cache_read_cost_per_token: float | None = Field(default=None, ge=0)
    cache_write_cost_per_token: float | None = Field(default=None, ge=0)
    # None means: local for the embedded model, external for anything else (the safe default).
    data_boundary: Literal["local", "external"] | None = None
    context_window: int | None = Field(default=None, gt=256)
    temperature: float = Field(default=0.2, ge=0, le=2)
    # How to ask for structured output (bot.models.structured): auto = the embedded grammar, else native
    # response_format where litellm knows the model supports it, else the prompt alone.
    structured_output: Literal["auto", "schema", "prompt"] = "auto"
    # How much pack context this tier can use (None: a default by model size, see context_limits).
    context_tokens: int | None = Field(default=None, gt=0)
    context_chunks: int | None = Field(default=None, ge=1)
    always_share: float | None = Field(default=None, gt=0, le=1)

    @property
    def embedded(self) -> bool:
        return self.model == EMBEDDED_MODEL

    @property
    def boundary(self) -> Literal["local", "external"]:
        if self.data_boundary:
            return self.data_boundary
        return "local" if self.embedded else "external"

    @property
    def priced(self) -> bool:
        return self.input_cost_per_token is not None or self.output_cost_per_token is not None

    @property
    def context_limits(self) -> ContextLimits:
        """Tokens of pack context, retrieved sections, and the share the always-included part may take.

        A 135M model uses one good section and loses the answer in more, so it also gets only the
        relevant part of always-included documents; a small window gets a third of it; anything
        larger takes what the skill's own budget allows, always-included documents whole."""
        if self.embedded:
            default = ContextLimits(tokens=400, chunks=1, always_share=0.25)
        elif self.context_window is not None and self.context_window <= 4096:
            default = ContextLimits(tokens=self.context_window // 3, chunks=3, always_share=0.4)
        else:
            default = ContextLimits(tokens=6000, chunks=12, always_share=1.0)
        return ContextLimits(
            tokens=self.context_tokens or default.tokens,
            chunks=self.context_chunks or default.chunks,
            always_share=self.always_share or default.always_share,
        )


class ContextLimits(NamedTuple):
    tokens: int
    chunks: int
    always_share: float


def _embedded_tier() -> TierConfig:
    return TierConfig(model=EMBEDDED_MODEL, data_boundary="local", context_window=8192, timeout=300)


def _comma_list(value: Any) -> Any:
    """Accept `U1,U2` as well as a JSON/TOML list, so env vars read naturally."""
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("["):
            import json

            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class SkillSettings(BaseModel):
    """Per-skill operational settings an admin sets in `[skills.<name>]`."""

    model_config = ConfigDict(extra="forbid")

    tier: str | None = None
    channels: Annotated[list[str] | None, NoDecode] = None
    sensitive: bool | None = None
    critical: bool = False
    monthly_budget_usd: float | None = Field(default=None, gt=0)
    on_budget_exceeded: Literal["step_down", "refuse"] = "refuse"
    shadow_rate: float = Field(default=0.0, ge=0, le=1)
    shadow_direction: Literal["auto", "down", "up"] = "auto"  # auto: where the review's decision is open
    shadow_weekly_max_calls: int = Field(default=200, ge=0)
    shadow_weekly_max_usd: float = Field(default=5.0, ge=0)
    margin: float | None = Field(default=None, gt=0, lt=1)  # non-inferiority margin (0.05 = 5 points)
    auto_apply: bool = False
    # Redact `privacy.redact` detectors from what this skill sends to an `external` tier.
    redact_external: bool = False
    value_per_good_answer_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    _split = field_validator("channels", mode="before")(classmethod(lambda cls, v: _comma_list(v)))


class ReviewSettings(BaseModel):
    """Thresholds of the tier review; every rule is configurable."""

    model_config = ConfigDict(extra="forbid")

    window_days: int = Field(default=28, ge=1, le=366)
    evidence_days: int = Field(default=91, ge=1, le=3660)  # paired evidence accumulates this long
    min_shadow_pairs: int = Field(default=20, ge=1)
    margin: float = Field(default=0.05, gt=0, lt=1)  # non-inferiority margin on the paired difference
    critical_margin: float = Field(default=0.02, gt=0, lt=1)
    superiority_margin: float = Field(default=0.05, gt=0, lt=1)
    alpha: float = Field(default=0.1, gt=0, lt=1)
    value_per_good_answer_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    verify_alarm_fail_rate: float = Field(default=0.1, gt=0, lt=1)
    require_eval: bool = True
    min_monthly_saving_usd: float = Field(default=5.0, ge=0)
    min_ratings: int = Field(default=10, ge=1)
    target_thumbs_up: float = Field(default=0.8, gt=0, le=1)
    cooldown_days: int = Field(default=28, ge=0)


REDACTION_DETECTORS = ("email", "phone", "card", "secret")


def valid_cron(value: str) -> str:
    """`value` if APScheduler accepts it as a five-field crontab; the settings' cron validator."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value)
    except ValueError as exc:
        raise ValueError(f"not a valid crontab expression ({exc})") from exc
    return value


class RetentionSettings(BaseModel):
    """How long message text is kept. Figures (tokens, cost, latency, tier, status) are kept forever."""

    model_config = ConfigDict(extra="forbid")

    # Request/response text, feedback comments, shadow and eval texts; 0: none survives the next purge.
    text_days: int = Field(default=30, ge=0, le=36500)
    purge_cron: str = "30 0 * * *"  # nightly, UTC

    @field_validator("purge_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return valid_cron(value)


class PrivacySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metadata_only: bool = False  # store no message text at all, only figures and verdicts
    # Detectors applied to every stored text, and to external-tier prompts of skills/packs that ask.
    redact: Annotated[list[Literal["email", "phone", "card", "secret"]], NoDecode] = Field(
        default_factory=list
    )

    _split = field_validator("redact", mode="before")(classmethod(lambda cls, v: _comma_list(v)))


class MetricsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True  # `/metrics` on the HTTP server
    port: int | None = Field(default=None, ge=1, le=65535)  # a separate listener (needed in Socket Mode)
    host: str = "0.0.0.0"


class TracingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False  # OpenTelemetry spans; needs `pip install 'tierwise[otel]'`
    otlp_endpoint: str | None = None  # e.g. http://collector:4318/v1/traces (else OTEL_* variables)
    service_name: str = "tierwise"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TIERWISE_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    database_url: str | None = None
    data_dir: Path = Path(".tierwise")
    tiers: dict[str, TierConfig] = Field(default_factory=dict)
    tier_order: Annotated[list[str] | None, NoDecode] = None
    skills: dict[str, SkillSettings] = Field(default_factory=dict)
    skill_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    pack_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    default_skill: str = "ask"
    admins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    admin_channel: str | None = None
    timezone: str = "UTC"
    digest_cron: str = "0 9 * * mon"
    user_daily_request_cap: int | None = Field(default=None, gt=0)
    max_input_tokens: int = Field(default=4000, gt=0)
    event_ttl_hours: int = Field(default=72, gt=0)
    # Durable work (bot/ledger/work.py): a replica silent for work_lease_s is presumed dead and its
    # work is taken over; every replica looks every work_sweep_s; older work gets an apology instead.
    work_lease_s: float = Field(default=20.0, gt=0)
    work_sweep_s: float = Field(default=5.0, gt=0)
    work_max_age_s: float = Field(default=900.0, gt=0)
    # An answer Slack would not take (after slack_sdk's own retries) is kept and posted again, after
    # work_delivery_backoff_s, then twice that, … up to work_delivery_tries tries in all.
    work_delivery_tries: int = Field(default=6, ge=1)
    work_delivery_backoff_s: float = Field(default=5.0, gt=0)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    judge_tier: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    embedded_model_path: Path | None = None
    # Stream answers natively into Slack threads (chat.startStream…); off: placeholder, then chat.update.
    slack_streaming: bool = True

    slack_bot_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_BOT_TOKEN", "TIERWISE_SLACK_BOT_TOKEN", "slack_bot_token"),
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "SLACK_SIGNING_SECRET", "TIERWISE_SLACK_SIGNING_SECRET", "slack_signing_secret"
        ),
    )
    slack_app_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_APP_TOKEN", "TIERWISE_SLACK_APP_TOKEN", "slack_app_token"),
    )
    slack_api_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_API_URL", "TIERWISE_SLACK_API_URL", "slack_api_url"),
    )

    @field_validator("admins", "skill_dirs", "pack_dirs", "tier_order", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("tiers", mode="before")
    @classmethod
    def _default_tiers(cls, value: Any) -> Any:
        # Configuring only some of small/medium/large keeps the others on the embedded model;
        # naming any other tier means the configuration defines the whole ladder itself.
        value = dict(value or {})
        if set(value) <= set(DEFAULT_TIER_NAMES):
            merged: dict[str, Any] = {}
            for name in DEFAULT_TIER_NAMES:
                merged[name] = value.get(name, _embedded_tier())
            return merged
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("digest_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return valid_cron(value)

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        if self.tier_order:
            missing = [t for t in self.tier_order if t not in self.tiers]
            if missing or set(self.tier_order) != set(self.tiers):
                raise ValueError(f"tier_order must list exactly the tiers {sorted(self.tiers)}")
            self.tiers = {name: self.tiers[name] for name in self.tier_order}
        for skill, conf in self.skills.items():
            if conf.tier and conf.tier not in self.tiers:
                raise ValueError(
                    f"skills.{skill}.tier = {conf.tier!r} is not a tier (valid: {', '.join(self.tiers)})"
                )
        if self.judge_tier and self.judge_tier not in self.tiers:
            raise ValueError(
                f"judge_tier = {self.judge_tier!r} is not a tier (valid: {', '.join(self.tiers)})"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        toml_path = config_file_path()
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    # Derived values -----------------------------------------------------------------

    @property
    def tier_names(self) -> list[str]:
        return list(self.tiers)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tierwise.db').as_posix()}"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    def skill_settings(self, name: str) -> SkillSettings:
        return self.skills.get(name) or SkillSettings()

    def embedded_tiers(self) -> list[str]:
        return [name for name, tier in self.tiers.items() if tier.embedded]

    def is_admin(self, user_id: str | None) -> bool:
        return bool(user_id) and user_id in self.admins


def env_value(name: str) -> str | None:
    """A variable from the environment, else from `.env` (where Tierwise's own settings may live too)."""
    if name in os.environ:
        return os.environ[name]
    from dotenv import dotenv_values

    return dotenv_values(".env").get(name) if Path(".env").is_file() else None


def config_file_path() -> Path | None:
    explicit = os.environ.get("TIERWISE_CONFIG")
    if explicit:
        return Path(explicit)
    default = Path("tierwise.toml")
    return default if default.is_file() else None


def _describe(errors: list[ErrorDetails]) -> str:
    lines = []
    for err in errors:
        loc = ".".join(str(part) for part in err["loc"]) or "settings"
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" = {value!r}"
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}{shown}: {message}")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Load settings, turning every validation problem into a `ConfigError` naming key and value."""
    path = config_file_path()
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file {path} (from TIERWISE_CONFIG) does not exist")
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors())) from exc
    except ValueError as exc:  # e.g. a JSON list in an env var that does not parse
        raise ConfigError(str(exc)) from exc


SECRET_MARK = "********"


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, with secrets masked (for `tierwise config`)."""
    data = settings.model_dump(mode="json")
    for key in ("slack_bot_token", "slack_signing_secret", "slack_app_token"):
        if data.get(key):
            data[key] = SECRET_MARK
    if data.get("database_url"):
        data["database_url"] = redacted_url(data["database_url"])
    for tier in data.get("tiers", {}).values():
        env = tier.get("api_key_env")
        tier["api_key"] = (SECRET_MARK if env_value(env) else "(not set)") if env else None
    data["effective_database_url"] = redacted_url(settings.effective_database_url)
    data["config_file"] = str(config_file_path()) if config_file_path() else None
    return data


def redacted_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:{SECRET_MARK}@{host}"
    return url
