"""Summary scores as columns: analysis.texture / redness / pigmentation.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

The scores were only inside the ``result`` JSON; as columns they can be
listed and sorted without reading every result.  Existing rows are
backfilled from ``result["summary"]`` (non-numeric values stay NULL).
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

SCORES = ("texture", "redness", "pigmentation")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table('analysis', schema=None) as batch_op:
        for name in SCORES:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))
    analysis = sa.table('analysis', sa.column('id', sa.Integer), sa.column('result', JSON),
                        *(sa.column(n, sa.Float) for n in SCORES))
    conn = op.get_bind()
    rows = conn.execute(sa.select(analysis.c.id, analysis.c.result)
                        .where(analysis.c.result.is_not(None))).all()
    for row_id, result in rows:
        summary = (result or {}).get("summary") or {}
        values = {n: _number(summary.get(n)) for n in SCORES}
        if any(v is not None for v in values.values()):
            conn.execute(analysis.update().where(analysis.c.id == row_id).values(**values))


def downgrade() -> None:
    with op.batch_alter_table('analysis', schema=None) as batch_op:
        for name in reversed(SCORES):
            batch_op.drop_column(name)


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
