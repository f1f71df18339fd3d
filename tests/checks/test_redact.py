"""Secrets are masked before any text reaches a message, a response, a log record or the CLI."""

from __future__ import annotations

from typing import Optional
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dockerflow_wsgi.redact import MASK, SECRET_PARAMETERS, mask_path, mask_query, mask_secrets


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # PostgreSQL
        (
            "postgresql://app:s3cr3t@db.internal:5432/app",
            "postgresql://app:***@db.internal:5432/app",
        ),
        ("postgresql+psycopg://app:s3cr3t@db/app", "postgresql+psycopg://app:***@db/app"),
        ("postgresql://app@db.internal:5432/app", "postgresql://app@db.internal:5432/app"),
        ("postgresql://db.internal:5432/app", "postgresql://db.internal:5432/app"),
        # MySQL / MariaDB
        (
            "mysql+pymysql://root:s3cr3t@127.0.0.1:3306/test",
            "mysql+pymysql://root:***@127.0.0.1:3306/test",
        ),
        ("mysql+pymysql://root@127.0.0.1:3306/test", "mysql+pymysql://root@127.0.0.1:3306/test"),
        # Redis: a password without a user, and with one
        ("redis://:s3cr3t@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://default:s3cr3t@cache:6379/0", "redis://default:***@cache:6379/0"),
        ("rediss://:s3cr3t@cache:6380/1", "rediss://:***@cache:6380/1"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("redis://cache/0", "redis://cache/0"),
        # Awkward passwords
        ("postgresql://app:s3:cr:3t@db/app", "postgresql://app:***@db/app"),
        ("postgresql://app:s3/cr/3t@db/app", "postgresql://app:***@db/app"),
        ("postgresql://app:s3cr%40t@db/app", "postgresql://app:***@db/app"),
        ("redis://:s3%2Fcr%3At@cache:6379/0", "redis://:***@cache:6379/0"),
        # URLs inside text
        (
            'could not connect to "postgresql://app:s3cr3t@db/app": connection refused',
            'could not connect to "postgresql://app:***@db/app": connection refused',
        ),
        (
            "primary postgresql://a:one@db1/app, replica postgresql://b:two@db2/app",
            "primary postgresql://a:***@db1/app, replica postgresql://b:***@db2/app",
        ),
        # Nothing to mask
        ("", ""),
        ("connection refused", "connection refused"),
        ("Error 111 connecting to 127.0.0.1:6379.", "Error 111 connecting to 127.0.0.1:6379."),
    ],
)
def test_url_passwords_are_masked(url: str, expected: str) -> None:
    assert mask_secrets(url) == expected


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        # URL passwords are masked with no secret given.
        (
            "cannot reach redis://:s3cr3t@cache:6379/0",
            (),
            "cannot reach redis://:***@cache:6379/0",
        ),
        # A secret is masked wherever it appears, not only inside a URL.
        (
            'password authentication failed: "s3cr3t-pw" rejected',
            ("s3cr3t-pw",),
            'password authentication failed: "***" rejected',
        ),
        # The percent-encoded secret of a URL is also masked in its decoded form.
        ("driver said: p@ss:w/rd is wrong", ("p%40ss%3Aw%2Frd",), "driver said: *** is wrong"),
        ("driver said: p%40ss is wrong", ("p%40ss",), "driver said: *** is wrong"),
        # Several secrets; missing or empty ones change nothing.
        ("one two three", ("one", None, "three"), "*** two ***"),
        ("one two three", (None,), "one two three"),
        ("one two three", ("",), "one two three"),
        # Text without URLs or secrets is left exactly as it is.
        (
            'connection to server at "127.0.0.1", port 5432 failed: Connection refused',
            (),
            'connection to server at "127.0.0.1", port 5432 failed: Connection refused',
        ),
        ("Timeout reading from socket", ("s3cr3t",), "Timeout reading from socket"),
        ("", ("s3cr3t",), ""),
    ],
)
def test_known_secrets_are_masked(
    text: str, secrets: tuple[Optional[str], ...], expected: str
) -> None:
    assert mask_secrets(text, *secrets) == expected


def test_both_forms_of_a_percent_encoded_password_are_masked() -> None:
    text = "postgresql://app:s3cr%40t@db/app failed for app:s3cr@t and s3cr%40t"

    scrubbed = mask_secrets(text, "s3cr%40t")

    assert "s3cr" not in scrubbed
    # The URL's password runs to the line's last '@': more is hidden than needed, never less.
    assert scrubbed == f"postgresql://app:{MASK} and {MASK}"


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("postgresql+pg8000://app:pa ss@db/app", "pa ss"),
        ("nosuchdb://app:my secret@db/app", "my secret"),
        ("http://:pa ss@cache:6379/0", "pa ss"),
    ],
)
def test_passwords_with_spaces_are_masked(url, password):
    assert password not in mask_secrets(url)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Query parameters that drivers read as passwords (psycopg, PyMySQL, redis-py).
        (
            "postgresql://app@db/app?password=s3cr3t",
            "postgresql://app@db/app?password=***",
        ),
        # In free text a value runs to the next space: the rest of the URL goes with it.
        (
            "mysql+pymysql://root@db/test?charset=utf8&passwd=s3cr3t&ssl=1 refused",
            "mysql+pymysql://root@db/test?charset=utf8&passwd=*** refused",
        ),
        ("redis://cache/0?password=s3cr3t#frag", "redis://cache/0?password=***"),
        # Every name of the contract, any case.
        *[
            (
                f"https://api.example.com/v1?{name}=s3cr3t&x=1",
                f"https://api.example.com/v1?{name}=***",
            )
            for name in (
                "password",
                "passwd",
                "pwd",
                "pass",
                "secret",
                "token",
                "access_token",
                "api_key",
                "apikey",
                "auth",
                "PASSWORD",
                "Api_Key",
            )
        ],
        # libpq's key=value strings, quoted or not.
        ("host=db password=s3cr3t user=app", "host=db password=*** user=app"),
        ("host=db password='s3 cr3t' user=app", "host=db password=*** user=app"),
        # libpq reads a password up to the next space: an '&' or a '#' is part of it.
        ("host=db password=ab&cd user=app", "host=db password=*** user=app"),
        ("host=db password=ab#cd user=app", "host=db password=*** user=app"),
        # A quoted value with an escaped quote, or more text after its closing quote.
        (r"host=db password='ab\' cd' user=app", "host=db password=*** user=app"),
        ("host=db password='ab'cd user=app", "host=db password=*** user=app"),
        # A name percent-encoded, or with a bracket part, is the same parameter.
        ("https://h/p?pass%77ord=s3cr3t x", "https://h/p?pass%77ord=*** x"),
        ("https://h/p?user[password]=s3cr3t x", "https://h/p?user[password]=*** x"),
        # A longer name is another parameter.
        ("db_password=visible&tokens=visible", "db_password=visible&tokens=visible"),
        # A raw '@' inside a password: redis-py reads up to the authority's last '@'.
        ("redis://:hun@ter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://default:a@b@c@cache/0", "redis://default:***@cache/0"),
        # ...and a user name holding one, as SQLAlchemy reads it.
        ("postgresql://app@corp:s3cr3t@db/app", "postgresql://app@corp:***@db/app"),
        # A password in the query that holds an '@': masked whole, never half.
        ("redis://cache:6379/0?password=pa55@word", "redis://cache:***"),
    ],
)
def test_secret_parameters_and_raw_at_signs_are_masked(text: str, expected: str) -> None:
    assert mask_secrets(text) == expected


def test_text_is_masked_before_it_is_cut() -> None:
    text = "cannot reach postgresql://app:" + "s" * 200 + "@db/app"

    cut = mask_secrets(text, limit=40)

    assert len(cut) == 40
    assert "s" * 3 not in cut.split("postgresql")[1]
    assert cut.startswith("cannot reach postgresql://app:***@db/app"[:37])


@pytest.mark.parametrize(
    "text",
    [
        "a" * 200_000 + "@",
        "redis://u:" + "a" * 200_000 + "@",
        "x://" * 50_000 + "@",
        "a=b&" * 50_000 + "@",
        "redis://:" + "://" * 50_000 + "@",
        "a://b:" * 40_000 + "@",
        "password=" * 50_000,
    ],
)
def test_masking_stays_linear_on_hostile_text(text: str) -> None:
    # A quadratic regex would take minutes here; each of these takes milliseconds.
    assert isinstance(mask_secrets(text), str)


_SECRET = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":/"),
    min_size=8,
    max_size=40,
).filter(lambda secret: "://" not in secret)
_AROUND = st.text(max_size=60)


@given(password=_SECRET, before=_AROUND, after=_AROUND, limit=st.integers(10, 120))
def test_a_url_password_never_survives_masking_or_cutting(password, before, after, limit):
    url = f"redis://default:{password}@cache.internal:6379/0"
    parts = [password, *(part for part in password.split("@") if len(part) >= 4)]
    assume(
        not any(
            part in f"{before} redis://default:@cache.internal:6379/0 {after}" for part in parts
        )
    )
    text = f"{before} {url} {after}"

    for masked in (mask_secrets(text), mask_secrets(text, limit=limit)):
        # Nor either side of an '@' in it.
        assert not [part for part in parts if part in masked]


@given(
    value=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="&#"),
        min_size=8,
        max_size=40,
    ),
    name=st.sampled_from(["password", "passwd", "pwd", "pass", "secret", "token", "auth"]),
    before=_AROUND,
)
def test_a_secret_query_value_never_survives_masking(value, name, before):
    text = f"{before} https://h/p?x=1&{name}={value}&y=2"
    # Only the value itself may hold it (not the name, as ``password=password`` would).
    assume(value not in text.replace(value, "", 1))

    assert value not in mask_secrets(text)


@pytest.mark.parametrize(
    ("querystring", "expected"),
    [
        ("q=dockerflow&access_token=s3cr3t&page=2", "q=dockerflow&access_token=***&page=2"),
        # A query string's values end at '&' only: a raw '#' or space was sent as part of one.
        ("password=ab#cd ef&page=2", "password=***&page=2"),
        ("password=ab%26cd&page=2", "password=***&page=2"),
        # Names as parsers read them: percent-decoded, any case, with bracket parts.
        ("pass%77ord=s3cr3t&page=2", "pass%77ord=***&page=2"),
        ("PASS%57ORD=s3cr3t", "PASS%57ORD=***"),
        ("%70%61%73%73%77%6f%72%64=s3cr3t", "%70%61%73%73%77%6f%72%64=***"),
        ("user[password]=s3cr3t&user[name]=ann", "user[password]=***&user[name]=ann"),
        ("password[]=s3cr3t&password[]=other", "password[]=***&password[]=***"),
        ("password[0][x]=s3cr3t", "password[0][x]=***"),
        ("a[b][api_key][]=s3cr3t", "a[b][api_key][]=***"),
        ("user%5Bpassword%5D=s3cr3t", "user%5Bpassword%5D=***"),
        ("user%5bToken%5d%5B%5D=s3cr3t", "user%5bToken%5d%5B%5D=***"),
        ("user[pass%77ord]=s3cr3t", "user[pass%77ord]=***"),
        # Other names, even holding a secret one, stay as they are; so does an empty value.
        ("db_password=a&tokens=b&password_hint=c&x%5Fpassword=d", None),
        ("passwords[]=a&user[passwords]=b&userpassword=c", None),
        ("password=&page=2", None),
        # A URL with its password in a parameter.
        ("next=redis://:s3cr3t@cache/0&page=2", "next=redis://:***@cache/0&page=2"),
    ],
)
def test_a_query_string_is_masked_by_its_parameters(
    querystring: str, expected: Optional[str]
) -> None:
    assert mask_query(querystring) == (querystring if expected is None else expected)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # Servers decode %3F to '?': what follows was meant as a query string. Decoding may
        # have made a value's own '&', '#' or space look like a separator: a secret value runs
        # to the end of the path.
        ("/login?password=hunter2", "/login?password=***"),
        ("/login?password=hun&ter#2 x&page=2", "/login?password=***"),
        ("/login?page=2&user[pass%77ord]=hunter2", "/login?page=2&user[pass%77ord]=***"),
        ("/a?b/c?token=hunter2", "/a?b/c?token=***"),
        ("/search?q=dockerflow", "/search?q=dockerflow"),
        # A URL's password anywhere in the path.
        ("/proxy/redis://:hunter2@cache/0", "/proxy/redis://:***@cache/0"),
        ("/proxy/redis://:hunter2@cache/0?x=1", "/proxy/redis://:***@cache/0?x=1"),
        # Before any '?', it is a path, not parameters.
        ("/users/password=visible/profile", "/users/password=visible/profile"),
    ],
)
def test_a_path_is_masked_from_its_question_mark_as_a_query_string(
    path: str, expected: str
) -> None:
    assert mask_path(path) == expected


@pytest.mark.parametrize(
    "text",
    [
        "password[" * 50_000,
        "password[a" * 50_000 + "=",
        "user%5Bpassword%5D%5B" * 20_000,
        "%70" * 100_000,
        "/?" + "password[" * 50_000,
    ],
)
def test_name_forms_keep_masking_linear(text: str) -> None:
    for mask in (mask_secrets, mask_query, mask_path):
        assert isinstance(mask(text), str)


def _percent_encoded(character: str, upper_hex: bool) -> str:
    code = f"%{ord(character):02x}"
    return code.upper() if upper_hex else code


@st.composite
def _secret_names(draw: st.DrawFn) -> str:
    """A secret parameter's name as a client may send it: any case, any of its characters
    percent-encoded (in either hex case), inside or before bracket parts (themselves encoded
    or not)."""
    name = ""
    for character in draw(st.sampled_from(SECRET_PARAMETERS)):
        character = draw(st.sampled_from([character.lower(), character.upper()]))
        if draw(st.booleans()):
            character = _percent_encoded(character, draw(st.booleans()))
        name += character
    before, after = draw(
        st.sampled_from([("", ""), ("", "[]"), ("", "[0]"), ("user[", "]"), ("a[b][", "][]")])
    )

    def brackets(text: str) -> str:
        return "".join(
            _percent_encoded(c, draw(st.booleans())) if draw(st.booleans()) else c for c in text
        )

    return brackets(before) + name + brackets(after)


_VALUE = st.text(min_size=6, max_size=30).filter(lambda value: value.strip())


@given(name=_secret_names(), value=_VALUE)
def test_a_secret_value_never_survives_in_a_query_string(name: str, value: str) -> None:
    sent = quote(value, safe="")
    querystring = f"q=dockerflow&{name}={sent}&page=2"
    assume(sent not in querystring.replace(sent, "", 1))

    assert sent not in mask_query(querystring)


@given(name=_secret_names(), value=_VALUE, before=st.sampled_from(["?", "?q=x&", "?a?b&"]))
def test_a_secret_value_never_survives_in_a_path(name: str, value: str, before: str) -> None:
    # The path as a server hands it over: decoded, so the value may hold anything.
    path = f"/login{before}{name}={value}"
    assume(value not in path.replace(value, "", 1))

    assert value not in mask_path(path)


@given(
    name=_secret_names(),
    value=st.text(alphabet=st.characters(exclude_categories=("Zs", "Zl", "Zp", "Cc")), min_size=6),
    before=st.sampled_from(["", "host=db ", "cannot reach https://h/p?x=1&", "'", "("]),
)
def test_a_secret_value_never_survives_in_free_text(name: str, value: str, before: str) -> None:
    text = f"{before}{name}={value} user=app"
    assume(value not in text.replace(value, "", 1))

    assert value not in mask_secrets(text)
