"""Token privacy: an opaque editor id in the public change log, token expiry.

* ``api_token.public_id``: an opaque id (``e`` + 12 hex digits) that names
  the token's holder in public. The label (often a name and a phone number)
  is for administrators only.
* ``api_token.expires_at``: when the token stops working. Tokens made before
  this migration have none (NULL: no expiry); ``flask admin create-token``
  always sets one.
* ``change_log.token_id``: the token that made an edit, so the admin view can
  show its label while the public history shows ``actor`` = role and opaque
  id. Existing rows, whose ``actor`` read ``token <id> (<role>: <label>)``,
  are rewritten to that form.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE api_token ADD COLUMN public_id text UNIQUE "
               "DEFAULT 'e' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 12)")
    op.execute("UPDATE api_token SET public_id = DEFAULT WHERE public_id IS NULL")
    op.execute("ALTER TABLE api_token ALTER COLUMN public_id SET NOT NULL")
    op.execute("ALTER TABLE api_token ADD COLUMN expires_at timestamptz")
    op.execute("ALTER TABLE change_log ADD COLUMN token_id bigint REFERENCES api_token (id)")
    op.execute("""
    UPDATE change_log c SET token_id = t.id, actor = t.role || ' ' || t.public_id
    FROM api_token t WHERE c.actor ~ '^token [0-9]+ \\(' AND t.id = substring(c.actor FROM '^token ([0-9]+) ')::bigint
    """)


def downgrade() -> None:
    op.execute("""
    UPDATE change_log c SET actor = 'token ' || t.id || ' (' || t.role
                                    || CASE WHEN t.label <> '' THEN ': ' || t.label ELSE '' END || ')'
    FROM api_token t WHERE c.token_id = t.id
    """)
    op.execute("ALTER TABLE change_log DROP COLUMN IF EXISTS token_id")
    op.execute("ALTER TABLE api_token DROP COLUMN IF EXISTS expires_at")
    op.execute("ALTER TABLE api_token DROP COLUMN IF EXISTS public_id")
