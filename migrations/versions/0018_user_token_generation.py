"""users: a token generation, so a password change or a disabled account ends old tokens

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-27 10:00:00

Every token carries the generation of its user (``gen``) from when it was issued; changing
the password or disabling the account adds one, and a token of an older generation is refused
(``token_revoked``). Tokens issued before this migration carry none and count as generation 0.
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("ALTER TABLE users ADD COLUMN token_generation integer NOT NULL DEFAULT 0")


def downgrade():
    op.execute("ALTER TABLE users DROP COLUMN token_generation")
