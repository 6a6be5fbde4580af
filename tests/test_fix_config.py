"""The gateway's deployment file and password hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fix_gateway.config import load_config
from fix_gateway.passwords import hash_password, verify
from solver.config.fields import ScenarioError

EXAMPLE = Path(__file__).parent.parent / "examples" / "gateway" / "gateway.toml"


def test_passwords_are_stored_as_salted_hashes_and_checked() -> None:
    stored = hash_password("s3cret")
    assert "s3cret" not in stored and stored != hash_password("s3cret")
    assert verify("s3cret", stored) and not verify("s3cret ", stored)


def test_the_example_takes_its_hashes_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIX_ALICE_PASSWORD_HASH", hash_password("a"))
    monkeypatch.setenv("FIX_BOB_PASSWORD_HASH", hash_password("b"))
    config = load_config(EXAMPLE)
    assert [(a.name, a.comp_id) for a in config.fix.accounts] == [("alice", "ALICE"),
                                                                   ("bob", "BOB")]
    assert config.fix.test_session is None  # off unless enabled
    assert config.service is not None and config.service.exchange == "local:9876"
    assert config.fix.store == EXAMPLE.parent / "var" / "fix-store"


def test_a_missing_hash_names_the_variable_and_how_to_make_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIX_ALICE_PASSWORD_HASH", raising=False)
    with pytest.raises(ScenarioError, match=r"FIX_ALICE_PASSWORD_HASH is not set.*fix-password"):
        load_config(EXAMPLE)


@pytest.mark.parametrize(("text", "message"), [
    ('[fix]\nport = 1\ncomp_id = "S"\nstore = "s"\n[accounts.a]\ncomp_id = "A"\n'
     'password_hash = "plain"\n', "accounts.a.password_hash: expected scrypt"),
    ('[fix]\nport = 1\ncomp_id = "S"\nstore = "s"\n[accounts.a]\ncomp_id = "A"\n'
     'password_hash = "{h}"\n[accounts.b]\ncomp_id = "A"\npassword_hash = "{h}"\n',
     "each account needs its own comp_id"),
    ('[fix]\nport = 1\ncomp_id = "bad id"\nstore = "s"\n', "fix.comp_id"),
    ('[fix]\nport = 1\ncomp_id = "S"\nstore = "s"\ncolour = 1\n', "fix.colour: unknown key"),
    ('[fix]\nport = 1\ncomp_id = "S"\nstore = "s"\n[service]\nsetup = "x"\njournal = "j"\n'
     'exchange = "mainnet"\n', "service.exchange"),
])
def test_bad_configs_are_refused_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(text.replace("{h}", hash_password("x")))
    with pytest.raises(ScenarioError, match=message):
        load_config(path)
