"""An administrator gives an Open311 client an API key, lists keys and revokes one."""

from sqlalchemy import select

from gridmgr.cli import main
from gridmgr.extensions import db
from gridmgr.open311.keys import find_active_key
from gridmgr.open311.models import ApiKey


def test_a_new_key_is_printed_once_and_only_its_hash_is_stored(runner, app_ctx):
    result = runner.invoke(main, args=["open311", "keys", "add", "city-portal"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert "not shown again" in result.stderr
    assert len(key) >= 40
    stored = db.session.scalar(select(ApiKey).where(ApiKey.name == "city-portal"))
    assert stored.key_hash != key and key not in stored.key_hash
    assert find_active_key(key).name == "city-portal"

    listing = runner.invoke(main, args=["open311", "keys", "list"])
    assert "city-portal" in listing.output and "active" in listing.output
    assert key not in listing.output


def test_a_second_key_with_the_same_name_is_refused(runner, app_ctx):
    runner.invoke(main, args=["open311", "keys", "add", "app"])
    again = runner.invoke(main, args=["open311", "keys", "add", "app"])
    assert again.exit_code != 0
    assert "already exists" in again.output


def test_a_revoked_key_no_longer_opens_the_door(runner, app_ctx):
    key = runner.invoke(main, args=["open311", "keys", "add", "old-app"]).stdout.strip()
    result = runner.invoke(main, args=["open311", "keys", "revoke", "old-app"])
    assert result.exit_code == 0, result.output
    assert find_active_key(key) is None
    assert "revoked" in runner.invoke(main, args=["open311", "keys", "list"]).output
    assert runner.invoke(main, args=["open311", "keys", "revoke", "nobody"]).exit_code != 0
