"""Options: keyword over environment over default, each parsed and validated at construction."""

from __future__ import annotations

import os
import re

import pytest

from dockerflow_wsgi import DockerflowMiddleware
from dockerflow_wsgi.config import Config, FrameworkSettings

BOOLEAN_OPTIONS = [
    ("log_querystring", "DOCKERFLOW_SUMMARY_LOG_QUERYSTRING"),
    ("heartbeat_details", "DOCKERFLOW_HEARTBEAT_DETAILS"),
    ("error_endpoint", "DOCKERFLOW_ERROR_ENDPOINT"),
    ("log_probes", "DOCKERFLOW_SUMMARY_LOG_PROBES"),
]

TRUE_WORDS = ["1", "true", "yes", "on"]
FALSE_WORDS = ["0", "false", "no", "off"]


def in_every_case(words):
    return [variant for word in words for variant in {word, word.upper(), word.capitalize()}]


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app"]


@pytest.mark.parametrize(
    ("option", "default"),
    [
        ("version_callback", None),
        ("silenced_checks", frozenset()),
        ("check_timeout", 5.0),
        ("heartbeat_cache_ttl", 0.0),
        ("heartbeat_failed_status_code", 500),
        ("request_id_header", "X-Request-ID"),
        ("log_querystring", False),
        ("heartbeat_details", True),
        ("error_endpoint", False),
        ("log_probes", True),
        ("db", None),
        ("redis", None),
        ("alembic_config", None),
    ],
)
def test_default(option, default):
    config = Config.from_options(environ={})

    assert getattr(config, option) == default
    assert type(getattr(config, option)) is type(default)


def test_version_path_defaults_to_the_current_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert Config.from_options(environ={}).version_path == os.getcwd()


def test_environ_defaults_to_the_process_environment(monkeypatch):
    monkeypatch.setenv("DOCKERFLOW_CHECK_TIMEOUT", "7.5")

    assert Config.from_options().check_timeout == 7.5


# option, variable, keyword value, environment value, expected from keyword, expected from env
PRECEDENCE = [
    ("version_path", "DOCKERFLOW_VERSION_PATH", "/kw", "/env", "/kw", "/env"),
    (
        "silenced_checks",
        "DOCKERFLOW_SILENCED_CHECKS",
        ["kw.W001"],
        "env.W001,env.W002",
        frozenset({"kw.W001"}),
        frozenset({"env.W001", "env.W002"}),
    ),
    ("check_timeout", "DOCKERFLOW_CHECK_TIMEOUT", 2, "3.5", 2.0, 3.5),
    ("heartbeat_cache_ttl", "DOCKERFLOW_HEARTBEAT_CACHE_TTL", 10, "20.5", 10.0, 20.5),
    (
        "heartbeat_failed_status_code",
        "DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE",
        503,
        "599",
        503,
        599,
    ),
    (
        "request_id_header",
        "DOCKERFLOW_REQUEST_ID_HEADER_NAME",
        "X-Kw-Id",
        "X-Env-Id",
        "X-Kw-Id",
        "X-Env-Id",
    ),
    ("log_querystring", "DOCKERFLOW_SUMMARY_LOG_QUERYSTRING", False, "true", False, True),
    ("heartbeat_details", "DOCKERFLOW_HEARTBEAT_DETAILS", True, "off", True, False),
    ("error_endpoint", "DOCKERFLOW_ERROR_ENDPOINT", False, "on", False, True),
    ("log_probes", "DOCKERFLOW_SUMMARY_LOG_PROBES", True, "0", True, False),
    (
        "db",
        "DATABASE_URL",
        "sqlite:///kw.db",
        "postgresql://env/db",
        "sqlite:///kw.db",
        "postgresql://env/db",
    ),
    (
        "redis",
        "REDIS_URL",
        "redis://kw:6379/0",
        "redis://env:6379/0",
        "redis://kw:6379/0",
        "redis://env:6379/0",
    ),
    (
        "alembic_config",
        "ALEMBIC_CONFIG",
        "kw/alembic.ini",
        "env/alembic.ini",
        "kw/alembic.ini",
        "env/alembic.ini",
    ),
]


@pytest.mark.parametrize(
    ("option", "variable", "keyword", "env_value", "from_keyword", "from_env"), PRECEDENCE
)
def test_keyword_beats_environment(option, variable, keyword, env_value, from_keyword, from_env):
    config = Config.from_options(**{option: keyword}, environ={variable: env_value})

    assert getattr(config, option) == from_keyword


@pytest.mark.parametrize(
    ("option", "variable", "keyword", "env_value", "from_keyword", "from_env"), PRECEDENCE
)
def test_environment_beats_default(option, variable, keyword, env_value, from_keyword, from_env):
    default = getattr(Config.from_options(environ={}), option)

    config = Config.from_options(environ={variable: env_value})

    assert getattr(config, option) == from_env
    assert from_env != default


@pytest.mark.parametrize(
    ("option", "variable", "keyword", "env_value", "from_keyword", "from_env"), PRECEDENCE
)
def test_empty_environment_variable_means_default(
    option, variable, keyword, env_value, from_keyword, from_env
):
    assert getattr(Config.from_options(environ={variable: ""}), option) == getattr(
        Config.from_options(environ={}), option
    )


def test_version_path_accepts_a_path_object(tmp_path):
    config = Config.from_options(version_path=tmp_path, environ={})

    assert config.version_path == str(tmp_path)


def test_version_callback_is_kept():
    def callback(path):
        return {"version": "1"}

    assert Config.from_options(version_callback=callback, environ={}).version_callback is callback


def test_version_callback_must_be_callable():
    with pytest.raises(ValueError, match="version_callback"):
        Config.from_options(version_callback={"version": "1"}, environ={})


@pytest.mark.parametrize(("option", "variable"), BOOLEAN_OPTIONS)
@pytest.mark.parametrize(
    ("text", "expected"),
    [(word, True) for word in in_every_case(TRUE_WORDS)]
    + [(word, False) for word in in_every_case(FALSE_WORDS)],
)
def test_boolean_from_environment(option, variable, text, expected):
    assert getattr(Config.from_options(environ={variable: text}), option) is expected


@pytest.mark.parametrize(("option", "variable"), BOOLEAN_OPTIONS)
@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), (False, False), ("Yes", True), ("OFF", False)]
)
def test_boolean_from_keyword(option, variable, value, expected):
    assert getattr(Config.from_options(**{option: value}, environ={}), option) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a.W001", {"a.W001"}),
        ("a.W001,b.E002", {"a.W001", "b.E002"}),
        (" a.W001 , b.E002 ", {"a.W001", "b.E002"}),
        ("a.W001,,b.E002,", {"a.W001", "b.E002"}),
        (",", set()),
        (" , , ", set()),
    ],
)
def test_silenced_checks_comma_list(value, expected):
    from_env = Config.from_options(environ={"DOCKERFLOW_SILENCED_CHECKS": value})
    from_keyword = Config.from_options(silenced_checks=value, environ={})

    assert from_env.silenced_checks == frozenset(expected)
    assert from_keyword.silenced_checks == frozenset(expected)


def test_silenced_checks_keyword_iterable():
    config = Config.from_options(silenced_checks=["a.W001", " b.E002 ", ""], environ={})

    assert config.silenced_checks == frozenset({"a.W001", "b.E002"})


@pytest.mark.parametrize("ttl", ["0", "0.0", 0])
def test_zero_heartbeat_cache_ttl_is_allowed(ttl):
    assert Config.from_options(heartbeat_cache_ttl=ttl, environ={}).heartbeat_cache_ttl == 0.0


@pytest.mark.parametrize("code", [500, 503, 599])
def test_status_code_range_bounds_are_accepted(code):
    config = Config.from_options(environ={"DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE": str(code)})

    assert config.heartbeat_failed_status_code == code


@pytest.mark.parametrize(
    ("header", "environ_key"),
    [
        ("X-Request-ID", "HTTP_X_REQUEST_ID"),
        ("X-Correlation-Id", "HTTP_X_CORRELATION_ID"),
        ("x-amzn-trace-id", "HTTP_X_AMZN_TRACE_ID"),
        ("Request-Id", "HTTP_REQUEST_ID"),
    ],
)
def test_request_id_environ_key(header, environ_key):
    config = Config.from_options(request_id_header=header, environ={})

    assert config.request_id_header == header
    assert config.request_id_environ_key == environ_key


ACCEPTED_BOOL = r"1/true/yes/on.*0/false/no/off"
SECONDS = r"seconds"
STATUS_RANGE = r"500 to 599"
HEADER_NAME = r"header name"
RUNS = r"whole number of runs, 1 or more"

# option, variable, bad value, what the message must say about the accepted form
BAD_VALUES = [
    *[(option, variable, "maybe", ACCEPTED_BOOL) for option, variable in BOOLEAN_OPTIONS],
    *[(option, variable, "2", ACCEPTED_BOOL) for option, variable in BOOLEAN_OPTIONS],
    ("check_timeout", "DOCKERFLOW_CHECK_TIMEOUT", "abc", SECONDS),
    ("check_timeout", "DOCKERFLOW_CHECK_TIMEOUT", "5s", SECONDS),
    ("check_timeout", "DOCKERFLOW_CHECK_TIMEOUT", "-1", SECONDS),
    ("check_timeout", "DOCKERFLOW_CHECK_TIMEOUT", "0", SECONDS),
    ("check_timeout", "DOCKERFLOW_CHECK_TIMEOUT", "nan", SECONDS),
    ("check_timeout", "DOCKERFLOW_CHECK_TIMEOUT", "inf", SECONDS),
    ("check_timeout", "DOCKERFLOW_CHECK_TIMEOUT", "-inf", SECONDS),
    ("heartbeat_cache_ttl", "DOCKERFLOW_HEARTBEAT_CACHE_TTL", "-1", SECONDS),
    ("heartbeat_cache_ttl", "DOCKERFLOW_HEARTBEAT_CACHE_TTL", "-0.5", SECONDS),
    ("heartbeat_cache_ttl", "DOCKERFLOW_HEARTBEAT_CACHE_TTL", "soon", SECONDS),
    ("heartbeat_cache_ttl", "DOCKERFLOW_HEARTBEAT_CACHE_TTL", "nan", SECONDS),
    ("heartbeat_cache_ttl", "DOCKERFLOW_HEARTBEAT_CACHE_TTL", "inf", SECONDS),
    ("transition_runs", "DOCKERFLOW_TRANSITION_RUNS", "0", RUNS),
    ("transition_runs", "DOCKERFLOW_TRANSITION_RUNS", "-2", RUNS),
    ("transition_runs", "DOCKERFLOW_TRANSITION_RUNS", "2.5", RUNS),
    ("transition_runs", "DOCKERFLOW_TRANSITION_RUNS", "three", RUNS),
    ("health_log_repeat", "DOCKERFLOW_HEALTH_LOG_REPEAT", "-1", SECONDS),
    ("health_log_repeat", "DOCKERFLOW_HEALTH_LOG_REPEAT", "5m", SECONDS),
    ("health_log_repeat", "DOCKERFLOW_HEALTH_LOG_REPEAT", "nan", SECONDS),
    ("health_log_repeat", "DOCKERFLOW_HEALTH_LOG_REPEAT", "inf", SECONDS),
    (
        "heartbeat_failed_status_code",
        "DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE",
        "399",
        STATUS_RANGE,
    ),
    # A failing heartbeat is a 5xx (the spec): a 4xx would read as the prober's fault.
    (
        "heartbeat_failed_status_code",
        "DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE",
        "400",
        STATUS_RANGE,
    ),
    (
        "heartbeat_failed_status_code",
        "DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE",
        "499",
        STATUS_RANGE,
    ),
    (
        "heartbeat_failed_status_code",
        "DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE",
        "600",
        STATUS_RANGE,
    ),
    (
        "heartbeat_failed_status_code",
        "DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE",
        "200",
        STATUS_RANGE,
    ),
    (
        "heartbeat_failed_status_code",
        "DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE",
        "abc",
        STATUS_RANGE,
    ),
    (
        "heartbeat_failed_status_code",
        "DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE",
        "500.5",
        STATUS_RANGE,
    ),
    ("request_id_header", "DOCKERFLOW_REQUEST_ID_HEADER_NAME", "X Request Id", HEADER_NAME),
    ("request_id_header", "DOCKERFLOW_REQUEST_ID_HEADER_NAME", "X-Request-Id:", HEADER_NAME),
    ("request_id_header", "DOCKERFLOW_REQUEST_ID_HEADER_NAME", "X:Id", HEADER_NAME),
    ("request_id_header", "DOCKERFLOW_REQUEST_ID_HEADER_NAME", "X-Id\r\nSet-Cookie", HEADER_NAME),
    ("request_id_header", "DOCKERFLOW_REQUEST_ID_HEADER_NAME", "X-R\u00e9quest", HEADER_NAME),
]


@pytest.mark.parametrize(("option", "variable", "value", "accepted"), BAD_VALUES)
def test_bad_environment_value_names_the_variable(option, variable, value, accepted):
    with pytest.raises(ValueError) as raised:
        Config.from_options(environ={variable: value})

    message = str(raised.value)
    assert variable in message
    assert re.search(accepted, message)


@pytest.mark.parametrize(("option", "variable", "value", "accepted"), BAD_VALUES)
def test_bad_keyword_value_names_the_keyword(option, variable, value, accepted):
    with pytest.raises(ValueError) as raised:
        Config.from_options(**{option: value}, environ={})

    message = str(raised.value)
    assert option in message
    assert variable not in message
    assert re.search(accepted, message)


@pytest.mark.parametrize(
    ("option", "value", "accepted"),
    [
        ("request_id_header", "", HEADER_NAME),
        ("request_id_header", "   ", HEADER_NAME),
        ("check_timeout", 0, SECONDS),
        ("check_timeout", -2.5, SECONDS),
        ("check_timeout", float("nan"), SECONDS),
        ("check_timeout", float("inf"), SECONDS),
        ("heartbeat_cache_ttl", -1, SECONDS),
        ("heartbeat_failed_status_code", 200, STATUS_RANGE),
        ("heartbeat_failed_status_code", 600, STATUS_RANGE),
        ("heartbeat_failed_status_code", True, STATUS_RANGE),
        ("transition_runs", 0, RUNS),
        ("transition_runs", True, RUNS),
        ("transition_runs", 1.5, RUNS),
        ("health_log_repeat", -0.5, SECONDS),
        ("health_log_repeat", False, SECONDS),
    ],
)
def test_bad_keyword_only_value(option, value, accepted):
    with pytest.raises(ValueError, match=accepted) as raised:
        Config.from_options(**{option: value}, environ={})

    assert option in str(raised.value)


def test_bad_keyword_is_blamed_even_when_the_environment_is_fine():
    with pytest.raises(ValueError, match=r"^check_timeout "):
        Config.from_options(check_timeout="abc", environ={"DOCKERFLOW_CHECK_TIMEOUT": "3"})


def test_good_keyword_hides_a_bad_environment_value():
    config = Config.from_options(check_timeout=3, environ={"DOCKERFLOW_CHECK_TIMEOUT": "abc"})

    assert config.check_timeout == 3.0


def test_middleware_rejects_a_bad_keyword_at_construction():
    with pytest.raises(ValueError, match="check_timeout"):
        DockerflowMiddleware(app, check_timeout="abc")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DOCKERFLOW_CHECK_TIMEOUT", "abc"),
        ("DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE", "200"),
        ("DOCKERFLOW_SUMMARY_LOG_PROBES", "maybe"),
        ("DOCKERFLOW_REQUEST_ID_HEADER_NAME", "X Request"),
    ],
)
def test_middleware_rejects_a_bad_environment_value_at_construction(variable, value, monkeypatch):
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValueError, match=variable):
        DockerflowMiddleware(app)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"version_path": 42}, "version_path"),
        ({"alembic_config": 3.5}, "alembic_config"),
        ({"check_timeout": True}, "check_timeout"),
        ({"heartbeat_cache_ttl": False}, "heartbeat_cache_ttl"),
    ],
)
def test_values_of_the_wrong_type_are_a_value_error_naming_the_option(options, named):
    with pytest.raises(ValueError, match=named):
        Config.from_options(environ={}, **options)


# -- a framework's own configuration ------------------------------------------------------------


def flask_config(**values):
    return FrameworkSettings(values, "app.config[{!r}]", default_version_path="/srv/app")


def test_the_framework_configuration_is_read_under_the_variables_names():
    config = Config.from_options(
        framework=flask_config(
            DOCKERFLOW_CHECK_TIMEOUT=2.5,
            DOCKERFLOW_SUMMARY_LOG_QUERYSTRING=True,
            DOCKERFLOW_SILENCED_CHECKS=["a.W1", "b.W2"],
            DOCKERFLOW_HEARTBEAT_FAILED_STATUS_CODE="503",
        ),
        environ={},
    )

    assert config.check_timeout == 2.5
    assert config.log_querystring is True
    assert config.silenced_checks == {"a.W1", "b.W2"}
    assert config.heartbeat_failed_status_code == 503


def test_the_keyword_beats_the_framework_which_beats_the_environment():
    framework = flask_config(DOCKERFLOW_CHECK_TIMEOUT=2, DOCKERFLOW_HEARTBEAT_CACHE_TTL=3)
    environ = {"DOCKERFLOW_CHECK_TIMEOUT": "7", "DOCKERFLOW_HEARTBEAT_CACHE_TTL": "8"}

    config = Config.from_options(check_timeout=1, framework=framework, environ=environ)

    assert (config.check_timeout, config.heartbeat_cache_ttl) == (1.0, 3.0)


@pytest.mark.parametrize("unset", [None, "", "  "])
def test_an_unset_or_blank_framework_value_falls_through_to_the_environment(unset):
    config = Config.from_options(
        framework=flask_config(DOCKERFLOW_CHECK_TIMEOUT=unset),
        environ={"DOCKERFLOW_CHECK_TIMEOUT": "4"},
    )

    assert config.check_timeout == 4.0


def test_a_bad_framework_value_names_its_key():
    with pytest.raises(ValueError, match=r"app\.config\['DOCKERFLOW_CHECK_TIMEOUT'\] must be"):
        Config.from_options(framework=flask_config(DOCKERFLOW_CHECK_TIMEOUT="soon"), environ={})


def test_a_bad_django_setting_names_the_setting():
    framework = FrameworkSettings({"DOCKERFLOW_SUMMARY_LOG_PROBES": "maybe"}, "settings.{}")

    with pytest.raises(ValueError, match=r"settings\.DOCKERFLOW_SUMMARY_LOG_PROBES must be"):
        Config.from_options(framework=framework, environ={})


def test_the_frameworks_default_version_path_applies_only_when_none_is_given():
    assert Config.from_options(framework=flask_config(), environ={}).version_path == "/srv/app"
    from_environment = Config.from_options(
        framework=flask_config(), environ={"DOCKERFLOW_VERSION_PATH": "/from/env"}
    )
    assert from_environment.version_path == "/from/env"
    from_configuration = Config.from_options(
        framework=flask_config(DOCKERFLOW_VERSION_PATH="/from/config"), environ={}
    )
    assert from_configuration.version_path == "/from/config"
