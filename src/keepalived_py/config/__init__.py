"""The configuration front end: keepalived.conf (or a Jinja2 template of one) to a typed, validated model."""

from keepalived_py.config.diagnostics import ConfigError, Diagnostic, Location, Severity
from keepalived_py.config.load import LoadResult, default_config_id, load_config
from keepalived_py.config.model import Config

__all__ = [
    "Config",
    "ConfigError",
    "Diagnostic",
    "LoadResult",
    "Location",
    "Severity",
    "default_config_id",
    "load_config",
]
