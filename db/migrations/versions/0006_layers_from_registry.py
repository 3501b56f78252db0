"""Layer keys come from the registry alone: drop the CHECK that listed them again.

The initial schema wrote the five layer keys into ``CHECK (layer IN …)``, a
second copy of the registry that a new layer would have to edit. Keys are
checked where data enters (the ETL, the admin API and the OGC transactions
all take the layer from ``layers.registry``), so the table needs no list.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: The keys the initial schema listed (for a downgrade only).
_INITIAL_KEYS = ("service_office", "police_station", "pocket_park", "parking", "village_clinic")


def upgrade() -> None:
    op.execute("ALTER TABLE facility DROP CONSTRAINT IF EXISTS facility_layer_check")
    op.execute("ALTER TABLE facility ADD CONSTRAINT facility_layer_key CHECK (layer ~ '^[a-z][a-z_]*$')")


def downgrade() -> None:
    op.execute("ALTER TABLE facility DROP CONSTRAINT IF EXISTS facility_layer_key")
    keys = ", ".join(f"'{k}'" for k in _INITIAL_KEYS)
    op.execute(f"ALTER TABLE facility ADD CONSTRAINT facility_layer_check CHECK (layer IN ({keys})) NOT VALID")
