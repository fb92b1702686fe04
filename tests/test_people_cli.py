"""An administrator at the console adds departments and users and lists them."""

from __future__ import annotations

from sqlalchemy import select

from gridmgr.cli import main
from gridmgr.extensions import db
from gridmgr.people.models import User
from gridmgr.people.passwords import verify_password


def test_an_administrator_adds_a_department_and_its_staff(runner, app_ctx):
    added = runner.invoke(main, args=["departments", "add", "市政管理委员会", "--name-en",
                                "Municipal Administration"])
    assert added.exit_code == 0, added.output

    user = runner.invoke(main, args=["users", "add", "zhang", "--role", "department",
                               "--department", "Municipal Administration",
                               "--password", "pw-secret-123"])
    assert user.exit_code == 0, user.output

    zhang = db.session.scalar(select(User).where(User.username == "zhang"))
    assert zhang.role == "department" and zhang.department.name == "市政管理委员会"
    assert verify_password(zhang.password_hash, "pw-secret-123")
    assert "pw-secret-123" not in zhang.password_hash
    listed = runner.invoke(main, args=["users", "list"])
    assert "zhang\tdepartment\tcity\t市政管理委员会\tactive" in listed.output
    departments = runner.invoke(main, args=["departments", "list"])
    assert "市政管理委员会\tMunicipal Administration" in departments.output


def test_a_scoped_inspector_is_added_with_a_street_code(runner, make_user):
    make_user("admin", region_code="110105001")  # creates the street 110105001 in a test city

    result = runner.invoke(main, args=["users", "add", "wang", "--role", "inspector",
                                 "--region", "110105001", "--password", "pw-secret-123"])

    assert result.exit_code == 0, result.output
    listed = runner.invoke(main, args=["users", "list", "--role", "inspector"])
    assert listed.output.strip() == "wang\tinspector\t110105001\t-\tactive"


def test_bad_input_is_refused_with_a_sentence_and_nothing_is_written(runner, app_ctx):
    cases = [
        (["users", "add", "a1", "--role", "inspector", "--region", "999999001",
          "--password", "pw-secret-123"], "No region has the code '999999001'"),
        (["users", "add", "a2", "--role", "department", "--password", "pw-secret-123"],
         "Department staff need a department"),
        (["users", "add", "a3", "--role", "operator", "--password", "short"],
         "at least 8 characters"),
        (["users", "add", "a4", "--role", "mayor", "--password", "pw-secret-123"],
         "Invalid value for '--role'"),
    ]
    for args, message in cases:
        result = runner.invoke(main, args=args)
        assert result.exit_code != 0
        assert message in result.output

    assert db.session.scalar(select(User.id)) is None


def test_a_username_is_taken_only_once(runner, app_ctx):
    args = ["users", "add", "li", "--role", "operator", "--password", "pw-secret-123"]
    assert runner.invoke(main, args=args).exit_code == 0

    again = runner.invoke(main, args=args)

    assert again.exit_code != 0 and "The username li is taken" in again.output


def test_a_disabled_user_stays_listed_as_disabled(runner, make_user):
    make_user("operator", username="zhao")

    assert runner.invoke(main, args=["users", "disable", "zhao"]).exit_code == 0

    assert "zhao\toperator\tcity\t-\tdisabled" in runner.invoke(main, args=["users", "list"]).output
